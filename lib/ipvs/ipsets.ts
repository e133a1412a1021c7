// The ipsets kube-proxy's ipvs proxier keeps (pkg/proxy/ipvs/ipset.go), with its set types,
// comments and entry strings (utilipset.Entry.String()): the iptables rules IPVS mode writes
// match on these instead of listing every service.
import { cidrContains, parseAddressInto, parseCidr } from '../util/address.js'
import type { ProxyModelView } from '../proxy/model.js'
import type { Family } from './node-port-addresses.js'

export type IpsetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port'

export interface IpsetInfo {
  /** The IPv4 name; IPv6 sets are named "KUBE-6-..." (ipsetName()). */
  name: string
  type: IpsetType
  comment: string
}

/** kube-proxy's ipsetInfo, in its order. */
export const IPSET_INFO: readonly IpsetInfo[] = [
  { name: 'KUBE-LOOP-BACK', type: 'hash:ip,port,ip', comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose' },
  { name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', comment: 'Kubernetes service cluster ip + port for masquerade purpose' },
  { name: 'KUBE-EXTERNAL-IP', type: 'hash:ip,port', comment: 'Kubernetes service external ip + port for masquerade and filter purpose' },
  { name: 'KUBE-EXTERNAL-IP-LOCAL', type: 'hash:ip,port', comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local' },
  { name: 'KUBE-LOAD-BALANCER', type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  { name: 'KUBE-LOAD-BALANCER-FW', type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange' },
  { name: 'KUBE-LOAD-BALANCER-LOCAL', type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local' },
  { name: 'KUBE-LOAD-BALANCER-SOURCE-IP', type: 'hash:ip,port,ip', comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose' },
  { name: 'KUBE-LOAD-BALANCER-SOURCE-CIDR', type: 'hash:ip,port,net', comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose' },
  { name: 'KUBE-NODE-PORT-TCP', type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port for masquerade purpose' },
  { name: 'KUBE-NODE-PORT-LOCAL-TCP', type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local' },
  { name: 'KUBE-NODE-PORT-UDP', type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port for masquerade purpose' },
  { name: 'KUBE-NODE-PORT-LOCAL-UDP', type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local' },
  { name: 'KUBE-NODE-PORT-SCTP-HASH', type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" },
  { name: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH', type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" },
  { name: 'KUBE-HEALTH-CHECK-NODE-PORT', type: 'bitmap:port', comment: 'Kubernetes health check node port' },
  { name: 'KUBE-IPVS-IPS', type: 'hash:ip', comment: 'Addresses on the ipvs interface' },
]

export type IpsetName = (typeof IPSET_INFO)[number]['name']

/** kube-proxy keeps the IPv4 names and prefixes IPv6 ones "KUBE-6-" (at most 31 characters). */
export function ipsetName(name: string, family: Family): string {
  if (family === 'IPv4' || !name.startsWith('KUBE-')) return name
  return `KUBE-6-${name.slice(5)}`.slice(0, 31)
}

/** An LB frontend whose source ranges leave out the node: KUBE-IPVS-OUT-FILTER drops the node's own access. */
export interface NoNodeAccessEntry {
  ip: string
  /** Lower case, as in the ipset entry ("tcp"). */
  protocol: string
  port: number
}

export interface FamilyIpsets {
  family: Family
  /** By IPv4 name (IPSET_INFO order), entries in `ipset save` order. */
  entries: Map<string, string[]>
  noNodeAccess: NoNodeAccessEntry[]
}

function containsAddress(cidr: string, address: string | undefined): boolean {
  if (address === undefined) return false
  const c = parseCidr(cidr)
  const b = new Uint8Array(16)
  return c !== undefined && parseAddressInto(address, b, 0) !== 0 && cidrContains(c, b, 0)
}

/** bitmap:port sets list ports in order; hash sets in kube-proxy's sorted string order. */
function sortEntries(type: IpsetType, entries: Iterable<string>): string[] {
  const list = [...entries]
  if (type === 'bitmap:port') return list.sort((a, b) => Number(a) - Number(b))
  return list.sort()
}

export interface IpsetConfig {
  family: Family
  /** The addresses NodePort virtual servers listen on (SCTP NodePort entries name each). */
  nodePortIPs: readonly string[]
  /** kube-ipvs0's addresses (KUBE-IPVS-IPS). */
  bound: Iterable<string>
}

/** The entries of every set for one family, from the model, as syncProxyRules fills them. */
export function desiredIpsets(model: ProxyModelView, config: IpsetConfig): FamilyIpsets {
  const sets = new Map<string, Set<string>>(IPSET_INFO.map((i) => [i.name, new Set<string>()]))
  const put = (name: IpsetName, entry: string) => sets.get(name)!.add(entry)
  const noNodeAccess: NoNodeAccessEntry[] = []
  const primaryNodeIP = model.node.ips.find((ip) => ip.includes(':') === (config.family === 'IPv6'))
  for (const s of model.servicePorts()) {
    const { info } = s
    if (info.family !== config.family) continue
    const proto = info.protocol.toLowerCase()
    // Hairpin: a local endpoint reaching itself through a service is masqueraded.
    for (const e of s.endpoints) if (e.isLocal) put('KUBE-LOOP-BACK', `${e.ip},${proto}:${e.port},${e.ip}`)
    put('KUBE-CLUSTER-IP', `${info.clusterIP},${proto}:${info.port}`)
    for (const ip of info.externalIPs) {
      put(info.externalPolicyLocal ? 'KUBE-EXTERNAL-IP-LOCAL' : 'KUBE-EXTERNAL-IP', `${ip},${proto}:${info.port}`)
    }
    for (const vip of info.loadBalancerVIPs) {
      const entry = `${vip},${proto}:${info.port}`
      put('KUBE-LOAD-BALANCER', entry)
      if (info.externalPolicyLocal) put('KUBE-LOAD-BALANCER-LOCAL', entry)
      if (info.loadBalancerSourceRanges.length === 0) continue
      put('KUBE-LOAD-BALANCER-FW', entry)
      let allowFromNode = false
      for (const cidr of info.loadBalancerSourceRanges) {
        put('KUBE-LOAD-BALANCER-SOURCE-CIDR', `${entry},${cidr}`)
        if (containsAddress(cidr, primaryNodeIP)) allowFromNode = true
      }
      // The node reaching its own LB VIP uses the VIP as source (it is bound on kube-ipvs0).
      if (allowFromNode) put('KUBE-LOAD-BALANCER-SOURCE-IP', `${entry},${vip}`)
      else noNodeAccess.push({ ip: vip, protocol: proto, port: info.port })
    }
    if (info.nodePort !== 0 && config.nodePortIPs.length > 0) {
      const entries = info.protocol === 'SCTP'
        ? config.nodePortIPs.map((ip) => `${ip},sctp:${info.nodePort}`)
        : [String(info.nodePort)]
      const all = { TCP: 'KUBE-NODE-PORT-TCP', UDP: 'KUBE-NODE-PORT-UDP', SCTP: 'KUBE-NODE-PORT-SCTP-HASH' } as const
      const local = { TCP: 'KUBE-NODE-PORT-LOCAL-TCP', UDP: 'KUBE-NODE-PORT-LOCAL-UDP', SCTP: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH' } as const
      for (const e of entries) put(all[info.protocol], e)
      if (info.externalPolicyLocal) for (const e of entries) put(local[info.protocol], e)
    }
    if (info.healthCheckNodePort !== 0) put('KUBE-HEALTH-CHECK-NODE-PORT', String(info.healthCheckNodePort))
  }
  for (const ip of config.bound) put('KUBE-IPVS-IPS', ip)
  const entries = new Map<string, string[]>()
  for (const i of IPSET_INFO) entries.set(i.name, sortEntries(i.type, sets.get(i.name)!))
  return { family: config.family, entries, noNodeAccess }
}
