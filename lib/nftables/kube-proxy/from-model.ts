// The environment kube-proxy's nftables proxier runs in for one family, from the model and the
// Proxier options: the mark, the local-traffic detector's CIDR, the primary node IP, the
// NodePort addresses (--nodeport-addresses resolved against the node's addresses, as
// kube-proxy's NodePortAddresses does) and the service CIDRs of the family.
import type { ProxyModelView } from '../../proxy/model.js'
import { cidrContains, parseAddressInto, parseCidr } from '../../util/address.js'
import type { NftProxierConfig } from './proxier-sync.js'
import { SvcplaneTypeError } from '../../errors.js'

export type Family = 'IPv4' | 'IPv6'

const ofFamily = (family: Family) => (text: string) => text.includes(':') === (family === 'IPv6')

/** kube-proxy's NodePortAddresses.GetNodeIPs for the node's addresses, or 'all' (MatchAll). Loopback addresses are left out: the nftables mode has no localhost NodePorts. */
export function nodePortIPsFor(family: Family, nodeIPs: readonly string[], nodePortAddresses: readonly string[]): string[] | 'all' {
  const primary = nodeIPs.find(ofFamily(family))
  const cidrs = nodePortAddresses.flatMap((a) => {
    if (a === 'primary') return primary === undefined ? [] : [primary]
    return ofFamily(family)(a) ? [a] : []
  }).map((c) => parseCidr(c)!)
  if (cidrs.length === 0 || cidrs.some((c) => c.bits === (c.family === 4 ? 96 : 0))) return 'all'
  const b = new Uint8Array(16)
  const loopback = (ip: string) => ip === '::1' || ip.startsWith('127.')
  return nodeIPs.filter(ofFamily(family)).filter((ip) => !loopback(ip) && parseAddressInto(ip, b, 0) !== 0 && cidrs.some((c) => cidrContains(c, b, 0)))
}

export function nftConfigFor(
  model: ProxyModelView,
  family: Family,
  shared: { serviceCIDRs: readonly string[]; nodePortAddresses: readonly string[]; masqueradeMark: string },
): NftProxierConfig {
  const pod = model.detector.podCIDRs.filter(ofFamily(family))
  if (pod.length > 1) {
    throw new SvcplaneTypeError(`Proxier options: podCIDRs has ${pod.length} ${family} CIDRs (${pod.join(', ')}); kube-proxy's nftables mode detects pod traffic by one CIDR per family`)
  }
  const config: NftProxierConfig = {
    family,
    masqueradeMark: shared.masqueradeMark,
    masqueradeAll: model.options.masqueradeAll,
    nodePortIPs: nodePortIPsFor(family, model.node.ips, shared.nodePortAddresses),
    serviceCIDRs: shared.serviceCIDRs.filter(ofFamily(family)),
  }
  if (pod[0] !== undefined) config.podCIDR = pod[0]
  const primary = model.node.ips.find(ofFamily(family))
  if (primary !== undefined) config.nodeIP = primary
  return config
}
