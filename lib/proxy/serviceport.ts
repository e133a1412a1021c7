// kube-proxy's ServicePort: one per entry of spec.ports, per IP family, with everything the
// dataplane needs to know about that port. Plain data, shared by every proxy mode.
import type { IPFamily, K8sProtocol } from '../k8s/types.js'
import type { ValidService, ServiceType } from '../k8s/service.js'

export interface ServicePortInfo {
  /** Unique id inside a Proxier: "ns/name:port/PROTO/family". */
  key: string
  /** kube-proxy's ServicePortName string: "ns/name:port", or "ns/name" when the port is unnamed. */
  name: string
  /** "ns/name" of the Service. */
  service: string
  namespace: string
  serviceName: string
  /** spec.ports[].name, "" when unnamed. */
  portName: string
  family: IPFamily
  type: ServiceType
  protocol: K8sProtocol
  clusterIP: string
  port: number
  /** 0 when none. */
  nodePort: number
  externalIPs: string[]
  loadBalancerVIPs: string[]
  /** Canonical CIDRs of this family. */
  loadBalancerSourceRanges: string[]
  /** 0 when sessionAffinity is None, else the ClientIP timeout in seconds. */
  affinityTimeoutSeconds: number
  externalPolicyLocal: boolean
  internalPolicyLocal: boolean
  /** 0 unless the Service is a LoadBalancer with externalTrafficPolicy Local. */
  healthCheckNodePort: number
}

/** NodePort, external IPs or load-balancer IPs: reachable from outside the cluster network. */
export function externallyAccessible(sp: ServicePortInfo): boolean {
  return sp.nodePort !== 0 || sp.externalIPs.length > 0 || sp.loadBalancerVIPs.length > 0
}

/** Cluster endpoints are needed for internal Cluster policy, and for any external traffic (the short-circuit needs them too). */
export function usesClusterEndpoints(sp: ServicePortInfo): boolean {
  return !sp.internalPolicyLocal || externallyAccessible(sp)
}

export function usesLocalEndpoints(sp: ServicePortInfo): boolean {
  return sp.internalPolicyLocal || (sp.externalPolicyLocal && externallyAccessible(sp))
}

export function servicePortName(service: string, portName: string): string {
  return portName === '' ? service : `${service}:${portName}`
}

export function servicePortKey(service: string, portName: string, protocol: K8sProtocol, family: IPFamily): string {
  return `${servicePortName(service, portName)}/${protocol}/${family}`
}

/** Shared by every ServicePort without such addresses (most of them): never mutated. */
const NONE: string[] = Object.freeze([]) as unknown as string[]

function ofFamily(family: IPFamily, addresses: string[]): string[] {
  if (addresses.length === 0) return NONE
  return addresses.filter((a) => a.includes(':') === (family === 'IPv6'))
}

/**
 * The ServicePorts kube-proxy builds for `svc` in `family`: none for ExternalName, headless,
 * or a Service without a cluster IP of that family.
 */
export function buildServicePorts(svc: ValidService, family: IPFamily): ServicePortInfo[] {
  if (svc.type === 'ExternalName' || svc.headless) return []
  const clusterIP = svc.clusterIPs[family]
  if (clusterIP === undefined) return []
  const accessible = svc.type === 'LoadBalancer' || svc.type === 'NodePort' || svc.externalIPs.length > 0
  const externalPolicyLocal = accessible && svc.externalTrafficPolicy === 'Local'
  const needsHealthCheck = svc.type === 'LoadBalancer' && externalPolicyLocal
  return svc.ports.map((p) => ({
    key: servicePortKey(svc.key, p.name, p.protocol, family),
    name: servicePortName(svc.key, p.name),
    service: svc.key,
    namespace: svc.namespace,
    serviceName: svc.name,
    portName: p.name,
    family,
    type: svc.type,
    protocol: p.protocol,
    clusterIP,
    port: p.port,
    nodePort: p.nodePort,
    externalIPs: ofFamily(family, svc.externalIPs),
    loadBalancerVIPs: ofFamily(family, svc.loadBalancerIPs),
    loadBalancerSourceRanges: ofFamily(family, svc.loadBalancerSourceRanges),
    affinityTimeoutSeconds: svc.affinityTimeoutSeconds,
    externalPolicyLocal,
    internalPolicyLocal: svc.internalTrafficPolicy === 'Local',
    healthCheckNodePort: needsHealthCheck ? svc.healthCheckNodePort : 0,
  }))
}

/** Field-by-field equality (the info is plain data: primitives and string arrays). */
export function sameServicePort(a: ServicePortInfo, b: ServicePortInfo): boolean {
  for (const k of Object.keys(a) as (keyof ServicePortInfo)[]) {
    const x = a[k]
    const y = b[k]
    if (x === y) continue
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  }
  return Object.keys(a).length === Object.keys(b).length
}
