// Validation and normalisation of a Service: defaults applied the way the API server applies
// them, addresses in canonical form, and a TypeError/RangeError naming the field otherwise.
import { describeObject, invalidField } from './invalid.js'
import {
  cidr,
  integerIn,
  ipAddress,
  isRecord,
  oneOf,
  optionalArray,
  optionalString,
  protocol,
  requiredString,
} from './fields.js'
import type { IPFamily, K8sProtocol } from './types.js'
import { SvcplaneTypeError } from '../errors.js'

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName'
export type TrafficPolicy = 'Cluster' | 'Local'

/** kube-proxy's default for sessionAffinityConfig.clientIP.timeoutSeconds (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800
/** The API server's upper bound for the affinity timeout (one day). */
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400

export interface ValidServicePort {
  /** "" when unnamed. */
  name: string
  protocol: K8sProtocol
  port: number
  /** 0 when the port has none. */
  nodePort: number
}

export interface ValidService {
  namespace: string
  name: string
  /** "ns/name" */
  key: string
  type: ServiceType
  /** Cluster IP per family, resolved like kube-proxy's GetClusterIPByFamily. Empty for headless. */
  clusterIPs: Partial<Record<IPFamily, string>>
  /** `clusterIP: None`. */
  headless: boolean
  ports: ValidServicePort[]
  externalIPs: string[]
  /** Canonical CIDRs, both families. */
  loadBalancerSourceRanges: string[]
  /** Load-balancer ingress IPs kube-proxy programs: non-empty `ip`, `ipMode` not `Proxy`. */
  loadBalancerIPs: string[]
  /** Ingress entries kube-proxy programs nothing for: hostnames (a DNS-named load balancer sends to NodePorts) and ipMode Proxy IPs. */
  loadBalancerHostnames: string[]
  loadBalancerProxyIPs: string[]
  externalTrafficPolicy: TrafficPolicy
  internalTrafficPolicy: TrafficPolicy
  healthCheckNodePort: number
  /** 0 when sessionAffinity is None. */
  affinityTimeoutSeconds: number
  annotations: Record<string, string>
}

function familyOf(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4'
}

function parseClusterIPs(obj: string, spec: Record<string, unknown>): { byFamily: Partial<Record<IPFamily, string>>; headless: boolean } {
  const single = optionalString(obj, 'spec.clusterIP', spec.clusterIP) ?? ''
  const many = optionalArray(obj, 'spec.clusterIPs', spec.clusterIPs).map((v, i) => {
    if (v === 'None') return 'None'
    return ipAddress(obj, `spec.clusterIPs[${i}]`, v).ip
  })
  const families = optionalArray(obj, 'spec.ipFamilies', spec.ipFamilies).map((v, i) =>
    oneOf<IPFamily>(obj, `spec.ipFamilies[${i}]`, v, ['IPv4', 'IPv6'], 'IPv4'),
  )
  const headless = single === 'None' || many[0] === 'None'
  const byFamily: Partial<Record<IPFamily, string>> = {}
  if (headless) return { byFamily, headless }
  const first = single === '' ? undefined : ipAddress(obj, 'spec.clusterIP', single).ip
  if (families.length === 0) {
    // Objects from before dual-stack: only spec.clusterIP counts.
    if (first !== undefined) byFamily[familyOf(first)] = first
    return { byFamily, headless }
  }
  families.forEach((family, i) => {
    const ip = many[i] ?? (i === 0 ? first : undefined)
    if (ip === undefined) return
    if (familyOf(ip) !== family) {
      throw invalidField(obj, `spec.clusterIPs[${i}]`, `an ${family} address (spec.ipFamilies[${i}])`, ip)
    }
    byFamily[family] = ip
  })
  return { byFamily, headless }
}

export function parseService(input: unknown): ValidService {
  if (!isRecord(input)) throw new SvcplaneTypeError(`Service must be an object, got ${input === null ? 'null' : typeof input}`)
  const meta = isRecord(input.metadata) ? input.metadata : {}
  const obj = describeObject('Service', meta.namespace, meta.name)
  if (!isRecord(input.metadata)) throw invalidField(obj, 'metadata', 'an object', input.metadata)
  const namespace = requiredString(obj, 'metadata.namespace', meta.namespace)
  const name = requiredString(obj, 'metadata.name', meta.name)
  if (!isRecord(input.spec)) throw invalidField(obj, 'spec', 'an object', input.spec)
  const spec = input.spec
  const type = oneOf<ServiceType>(obj, 'spec.type', spec.type, ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'], 'ClusterIP')
  const { byFamily, headless } = type === 'ExternalName' ? { byFamily: {}, headless: false } : parseClusterIPs(obj, spec)

  const ports = optionalArray(obj, 'spec.ports', spec.ports).map((p, i): ValidServicePort => {
    const f = `spec.ports[${i}]`
    if (!isRecord(p)) throw invalidField(obj, f, 'an object', p)
    return {
      name: optionalString(obj, `${f}.name`, p.name) ?? '',
      protocol: protocol(obj, `${f}.protocol`, p.protocol),
      port: integerIn(obj, `${f}.port`, p.port, 1, 65535),
      nodePort: integerIn(obj, `${f}.nodePort`, p.nodePort, 0, 65535, 0),
    }
  })
  const seen = new Set<string>()
  ports.forEach((p, i) => {
    const id = `${p.name}/${p.protocol}`
    if (seen.has(id)) throw invalidField(obj, `spec.ports[${i}].name`, 'unique per protocol', p.name)
    seen.add(id)
  })

  const externalIPs = optionalArray(obj, 'spec.externalIPs', spec.externalIPs).map(
    (v, i) => ipAddress(obj, `spec.externalIPs[${i}]`, v).ip,
  )
  const loadBalancerSourceRanges = optionalArray(obj, 'spec.loadBalancerSourceRanges', spec.loadBalancerSourceRanges).map(
    (v, i) => cidr(obj, `spec.loadBalancerSourceRanges[${i}]`, v).cidr,
  )

  const status = isRecord(input.status) ? input.status : {}
  const lb = isRecord(status.loadBalancer) ? status.loadBalancer : {}
  const loadBalancerIPs: string[] = []
  const loadBalancerHostnames: string[] = []
  const loadBalancerProxyIPs: string[] = []
  optionalArray(obj, 'status.loadBalancer.ingress', lb.ingress).forEach((ing, i) => {
    const f = `status.loadBalancer.ingress[${i}]`
    if (!isRecord(ing)) throw invalidField(obj, f, 'an object', ing)
    const ip = optionalString(obj, `${f}.ip`, ing.ip) ?? ''
    const mode = oneOf(obj, `${f}.ipMode`, ing.ipMode, ['VIP', 'Proxy'], 'VIP')
    const hostname = optionalString(obj, `${f}.hostname`, ing.hostname) ?? ''
    if (ip === '') {
      if (hostname !== '') loadBalancerHostnames.push(hostname)
      return
    }
    const parsed = ipAddress(obj, `${f}.ip`, ip).ip
    // ipMode Proxy: the load balancer terminates traffic itself and sends it to the node.
    if (mode === 'Proxy') return void loadBalancerProxyIPs.push(parsed)
    loadBalancerIPs.push(parsed)
  })

  const policy = (field: string, v: unknown) => oneOf<TrafficPolicy>(obj, field, v, ['Cluster', 'Local'], 'Cluster')
  const affinity = oneOf(obj, 'spec.sessionAffinity', spec.sessionAffinity, ['None', 'ClientIP'], 'None')
  let affinityTimeoutSeconds = 0
  if (affinity === 'ClientIP') {
    const cfg = isRecord(spec.sessionAffinityConfig) ? spec.sessionAffinityConfig : {}
    const clientIP = isRecord(cfg.clientIP) ? cfg.clientIP : {}
    affinityTimeoutSeconds = integerIn(
      obj,
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
      clientIP.timeoutSeconds,
      1,
      MAX_AFFINITY_TIMEOUT_SECONDS,
      DEFAULT_AFFINITY_TIMEOUT_SECONDS,
    )
  }

  const annotations: Record<string, string> = {}
  if (isRecord(meta.annotations)) {
    for (const [k, v] of Object.entries(meta.annotations)) if (typeof v === 'string') annotations[k] = v
  }

  return {
    namespace,
    name,
    key: `${namespace}/${name}`,
    type,
    clusterIPs: byFamily,
    headless,
    ports,
    externalIPs,
    loadBalancerSourceRanges,
    loadBalancerIPs,
    loadBalancerHostnames,
    loadBalancerProxyIPs,
    externalTrafficPolicy: policy('spec.externalTrafficPolicy', spec.externalTrafficPolicy),
    internalTrafficPolicy: policy('spec.internalTrafficPolicy', spec.internalTrafficPolicy),
    healthCheckNodePort: integerIn(obj, 'spec.healthCheckNodePort', spec.healthCheckNodePort, 0, 65535, 0),
    affinityTimeoutSeconds,
    annotations,
  }
}
