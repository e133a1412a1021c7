// Proxier options, checked and normalised once (the equivalent of kube-proxy's flags).
import { canonicalAddress, parseCidr } from '../dataplane/address.js'
import type { ConntrackTimeouts, DataplaneCapacity, SchedulerName } from '../dataplane/types.js'
import type { IPFamily } from '../k8s/types.js'

export type ProxyMode = 'native' | 'iptables'

export interface ProxierOptions {
  /** Like kube-proxy's --proxy-mode. */
  mode: ProxyMode
  /** Endpoints whose nodeName equals this are local. */
  nodeName: string
  /** This node's addresses: NodePorts listen on each; sources among them are node traffic. */
  nodeIPs: string[]
  /** kube-proxy's local-traffic detector (--cluster-cidr). Empty: no detector. */
  podCIDRs?: string[]
  /**
   * The cluster's service CIDRs (kube-proxy's ServiceCIDR objects / --service-cluster-ip-range).
   * The nftables mode drops traffic to addresses in them that no Service holds.
   */
  serviceCIDRs?: string[]
  /**
   * --nodeport-addresses: CIDRs of the node addresses that accept NodePorts, or "primary" (the
   * node's primary IP of each family). Default: every local address.
   */
  nodePortAddresses?: string[]
  /** This node's topology.kubernetes.io/zone, for topology hints. */
  zone?: string
  /** Families served; default: every family among nodeIPs. */
  ipFamily?: IPFamily | 'dual'
  /** Bit of the masquerade mark (0..31, default 14 = 0x4000). */
  masqueradeBit?: number
  /** --masquerade-all: masquerade all traffic to cluster IPs. */
  masqueradeAll?: boolean
  /** Accept NodePorts on 127.0.0.1 (IPv4 only, as kube-proxy). Default true. */
  localhostNodePorts?: boolean
  /** Backend selection for new flows (native mode). Default 'random', what iptables does. */
  scheduler?: SchedulerName
  /** Native dataplane sizing. */
  capacity?: DataplaneCapacity
  timeouts?: Partial<ConntrackTimeouts>
  /** Hash and scheduler seed; fix it in tests. */
  seed?: number | bigint
  /** Seconds of a monotonic clock, used when route() is given no `now`. */
  clock?: () => number
}

export interface NodeInfo {
  name: string
  /** Canonical node IPs. */
  ips: string[]
  zone: string | undefined
  families: IPFamily[]
}

export interface ResolvedOptions {
  mode: ProxyMode
  node: NodeInfo
  podCIDRs: string[]
  /** Canonical CIDR text ("10.96.0.0/12"). */
  serviceCIDRs: string[]
  /** Canonical CIDR text or "primary"; empty = every local address (kube-proxy's default). */
  nodePortAddresses: string[]
  masqueradeBit: number
  masqueradeAll: boolean
  localhostNodePorts: boolean
  scheduler: SchedulerName
  capacity: DataplaneCapacity
  timeouts: Partial<ConntrackTimeouts>
  seed: number | bigint | undefined
  clock: () => number
}

const SCHEDULERS: readonly SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']

function bad(field: string, expected: string, got: unknown): TypeError {
  return new TypeError(`Proxier options: ${field} must be ${expected}, got ${JSON.stringify(got)}`)
}

function cidrList(field: string, value: unknown, primaryAllowed: boolean): string[] {
  if (value === undefined) return []
  const expected = primaryAllowed ? 'an array of CIDRs or "primary"' : 'an array of CIDRs'
  if (!Array.isArray(value)) throw bad(field, expected, value)
  return value.map((v, i) => {
    if (primaryAllowed && v === 'primary') return 'primary'
    const c = typeof v === 'string' && v.includes('/') ? parseCidr(v) : undefined
    if (c === undefined) throw bad(`${field}[${i}]`, primaryAllowed ? 'a CIDR or "primary"' : 'a CIDR', v)
    return c.text
  })
}

const monotonicSeconds = () => Number(process.hrtime.bigint()) / 1e9

export function resolveOptions(o: ProxierOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw new TypeError('Proxier options must be an object')
  if (o.mode !== 'native' && o.mode !== 'iptables') throw bad('mode', '"native" or "iptables"', o.mode)
  if (typeof o.nodeName !== 'string' || o.nodeName === '') throw bad('nodeName', 'a non-empty string', o.nodeName)
  if (!Array.isArray(o.nodeIPs) || o.nodeIPs.length === 0) throw bad('nodeIPs', 'a non-empty array of IP addresses', o.nodeIPs)
  const ips = o.nodeIPs.map((ip, i) => {
    const c = typeof ip === 'string' ? canonicalAddress(ip) : undefined
    if (c === undefined) throw bad(`nodeIPs[${i}]`, 'an IP address', ip)
    return c
  })
  const present = (['IPv4', 'IPv6'] as IPFamily[]).filter((f) => ips.some((ip) => ip.includes(':') === (f === 'IPv6')))
  let families: IPFamily[]
  if (o.ipFamily === undefined) families = present
  else if (o.ipFamily === 'dual') families = ['IPv4', 'IPv6']
  else if (o.ipFamily === 'IPv4' || o.ipFamily === 'IPv6') families = [o.ipFamily]
  else throw bad('ipFamily', '"IPv4", "IPv6" or "dual"', o.ipFamily)
  if (o.podCIDRs !== undefined && !Array.isArray(o.podCIDRs)) throw bad('podCIDRs', 'an array of CIDRs', o.podCIDRs)
  const serviceCIDRs = cidrList('serviceCIDRs', o.serviceCIDRs, false)
  const nodePortAddresses = cidrList('nodePortAddresses', o.nodePortAddresses, true)
  if (o.zone !== undefined && typeof o.zone !== 'string') throw bad('zone', 'a string', o.zone)
  const masqueradeBit = o.masqueradeBit ?? 14
  if (!Number.isInteger(masqueradeBit) || masqueradeBit < 0 || masqueradeBit > 31) {
    throw new RangeError(`Proxier options: masqueradeBit must be an integer 0..31, got ${JSON.stringify(o.masqueradeBit)}`)
  }
  const scheduler = o.scheduler ?? 'random'
  if (!SCHEDULERS.includes(scheduler)) throw bad('scheduler', `one of ${SCHEDULERS.join(', ')}`, o.scheduler)
  for (const flag of ['masqueradeAll', 'localhostNodePorts'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw bad(flag, 'a boolean', o[flag])
  }
  if (o.clock !== undefined && typeof o.clock !== 'function') throw bad('clock', 'a function', o.clock)
  return {
    mode: o.mode,
    node: { name: o.nodeName, ips, zone: o.zone, families },
    podCIDRs: o.podCIDRs ?? [],
    serviceCIDRs,
    nodePortAddresses,
    masqueradeBit,
    masqueradeAll: o.masqueradeAll ?? false,
    localhostNodePorts: o.localhostNodePorts ?? true,
    scheduler,
    capacity: o.capacity ?? {},
    timeouts: o.timeouts ?? {},
    seed: o.seed,
    clock: o.clock ?? monotonicSeconds,
  }
}
