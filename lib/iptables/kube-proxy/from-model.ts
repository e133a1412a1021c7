// The kube-proxy model (lib/proxy) as the renderer's plain input: one RenderServicePort per
// ServicePort of a family, with the endpoint sets categorizeEndpoints chose, and the render
// options kube-proxy's iptables proxier for that family would run with.
import type { ProxyModelView, ServicePortState } from '../../proxy/model.js'
import type { RenderOptions, RenderServicePort } from './render-types.js'

export type Family = 'IPv4' | 'IPv6'

/** Options of the iptables mode beyond the Proxier's own (kube-proxy's environment). */
export interface IptablesExtraOptions {
  /** The nfacct counters exist: newer kube-proxy writes `-m nfacct` on two rules. Default true. */
  nfacct?: boolean
  /** iptables supports MASQUERADE --random-fully. Default true. */
  randomFully?: boolean
  /** The mark text; kube-proxy formats 1 << masqueradeBit as %#08x ("0x00004000"). */
  masqueradeMark?: string
  /** nf_conntrack_tcp_be_liberal is set: kube-proxy writes no INVALID drop rule. Default false. */
  conntrackTCPLiberal?: boolean
  /** Endpoints above which comments are dropped from SVC/SVL and SEP rules. Default 1000. */
  largeClusterEndpointsThreshold?: number
}

export function renderServicePort(s: ServicePortState): RenderServicePort {
  const { info, categorized } = s
  const out: RenderServicePort = {
    name: info.name,
    protocol: info.protocol,
    clusterIP: info.clusterIP,
    port: info.port,
    nodePort: info.nodePort,
    externalIPs: info.externalIPs,
    loadBalancerIPs: info.loadBalancerVIPs,
    loadBalancerSourceRanges: info.loadBalancerSourceRanges,
    healthCheckNodePort: info.healthCheckNodePort,
    externalPolicyLocal: info.externalPolicyLocal,
    internalPolicyLocal: info.internalPolicyLocal,
    clusterEndpoints: categorized.cluster.map((e) => ({ ip: e.ip, port: e.port })),
    localEndpoints: categorized.local.map((e) => ({ ip: e.ip, port: e.port })),
    hasEndpoints: categorized.hasAnyEndpoints,
    // kube-proxy counts every endpoint of its endpoints map, ready or not.
    endpointCount: s.endpoints.length,
  }
  if (info.affinityTimeoutSeconds > 0) out.sessionAffinityTimeoutSeconds = info.affinityTimeoutSeconds
  return out
}

export function renderServicePorts(model: ProxyModelView, family: Family): RenderServicePort[] {
  return model.servicePorts().filter((s) => s.info.family === family).map(renderServicePort)
}

const isV6 = (a: string) => a.includes(':')

/** The pod CIDR of the family kube-proxy's local-traffic detector uses (it takes one per family). */
export function podCIDROf(model: ProxyModelView, family: Family): string | undefined {
  return model.detector.podCIDRs.find((c) => isV6(c) === (family === 'IPv6'))
}

export function renderOptionsFor(model: ProxyModelView, family: Family, extra: IptablesExtraOptions = {}): RenderOptions {
  const primary = model.node.ips.find((ip) => isV6(ip) === (family === 'IPv6'))
  const o: RenderOptions = {
    ipFamily: family === 'IPv6' ? 6 : 4,
    masqueradeBit: model.options.masqueradeBit,
    masqueradeAll: model.options.masqueradeAll,
    localhostNodePorts: model.options.localhostNodePorts,
    nfacct: extra.nfacct ?? true,
    randomFully: extra.randomFully ?? true,
    conntrackTCPLiberal: extra.conntrackTCPLiberal ?? false,
    // kube-proxy checks the source ranges against its primary node IP only.
    nodeIPs: primary === undefined ? [] : [primary],
  }
  const podCIDR = podCIDROf(model, family)
  if (podCIDR !== undefined) o.podCIDR = podCIDR
  if (extra.masqueradeMark !== undefined) o.masqueradeMark = extra.masqueradeMark
  if (extra.largeClusterEndpointsThreshold !== undefined) o.largeClusterEndpointsThreshold = extra.largeClusterEndpointsThreshold
  return o
}
