// Structural types for the Kubernetes objects svcplane reads. They match `kubectl get -o json`
// output and @kubernetes/client-node's V1Service / V1EndpointSlice (whose metadata may hold
// Date objects instead of RFC 3339 strings); only the fields kube-proxy looks at are typed,
// everything else passes through untouched.

export type IPFamily = 'IPv4' | 'IPv6'
export type K8sProtocol = 'TCP' | 'UDP' | 'SCTP'

export interface ObjectMeta {
  name?: string
  namespace?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  uid?: string
  resourceVersion?: string
  creationTimestamp?: string | Date
  [field: string]: unknown
}

export interface ServicePort {
  name?: string
  protocol?: K8sProtocol
  port: number
  targetPort?: number | string
  nodePort?: number
  appProtocol?: string
}

export interface ClientIPConfig {
  timeoutSeconds?: number
}

export interface ServiceSpec {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName'
  clusterIP?: string
  clusterIPs?: string[]
  ipFamilies?: IPFamily[]
  ipFamilyPolicy?: string
  ports?: ServicePort[]
  selector?: Record<string, string>
  externalIPs?: string[]
  externalName?: string
  loadBalancerIP?: string
  loadBalancerSourceRanges?: string[]
  externalTrafficPolicy?: 'Cluster' | 'Local'
  internalTrafficPolicy?: 'Cluster' | 'Local'
  healthCheckNodePort?: number
  sessionAffinity?: 'None' | 'ClientIP'
  sessionAffinityConfig?: { clientIP?: ClientIPConfig }
  trafficDistribution?: string
  [field: string]: unknown
}

export interface LoadBalancerIngress {
  ip?: string
  hostname?: string
  /** `Proxy`: the load balancer delivers to the node itself, so kube-proxy skips the IP. */
  ipMode?: 'VIP' | 'Proxy'
  [field: string]: unknown
}

export interface ServiceStatus {
  loadBalancer?: { ingress?: LoadBalancerIngress[] }
  [field: string]: unknown
}

export interface Service {
  apiVersion?: string
  kind?: string
  metadata: ObjectMeta
  spec: ServiceSpec
  status?: ServiceStatus
}

export interface EndpointConditions {
  ready?: boolean | null
  serving?: boolean | null
  terminating?: boolean | null
}

export interface Endpoint {
  addresses: string[]
  conditions?: EndpointConditions
  hints?: { forZones?: { name: string }[] }
  nodeName?: string | null
  zone?: string | null
  targetRef?: Record<string, unknown>
  [field: string]: unknown
}

export interface EndpointPort {
  /** Unset (not "") makes kube-proxy ignore the port, as it does. */
  name?: string | null
  port?: number | null
  protocol?: K8sProtocol | null
  appProtocol?: string
}

export interface EndpointSlice {
  apiVersion?: string
  kind?: string
  metadata: ObjectMeta
  addressType: 'IPv4' | 'IPv6' | 'FQDN'
  endpoints?: Endpoint[] | null
  ports?: EndpointPort[] | null
}

export interface List {
  apiVersion?: string
  kind: string
  items: unknown[]
  metadata?: Record<string, unknown>
}

/** Label naming the Service an EndpointSlice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name'
