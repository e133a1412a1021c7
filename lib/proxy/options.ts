// Proxier options, checked and normalised once (the equivalent of kube-proxy's flags).
import { canonicalAddress, parseCidr } from '../util/address.js'
import { show } from '../util/show.js'
import type { ConntrackTimeouts } from '../dataplane/types.js'
import type { IPFamily } from '../k8s/types.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../errors.js'

/** The iptables options the model itself needs (the iptables mode has more, in lib/modes). */
export interface ModelIptablesOptions {
  /** Bit of the masquerade mark (0..31, default 14 = 0x4000). */
  masqueradeBit?: number
  /** Accept NodePorts on 127.0.0.1 (IPv4 only, as kube-proxy). Default true. */
  localhostNodePorts?: boolean
}

/**
 * Options every mode shares, as at the top of a KubeProxyConfiguration. Mode-specific options
 * sit under the mode's name (`iptables: {...}`, `native: {...}`); lib/modes adds their types.
 */
export interface CommonProxierOptions {
  /** Like kube-proxy's --proxy-mode (the names lib/modes knows). */
  mode: string
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
  /** --masquerade-all: masquerade all traffic to cluster IPs. */
  masqueradeAll?: boolean
  /** Conntrack timeouts of the modes that track flows (kube-proxy's conntrack.*). */
  timeouts?: Partial<ConntrackTimeouts>
  /** Hash and scheduler seed; fix it in tests. */
  seed?: number | bigint
  /** Seconds of a monotonic clock, used when route() is given no `now`. */
  clock?: () => number
  /** iptables options; the model reads masqueradeBit and localhostNodePorts in every mode. */
  iptables?: ModelIptablesOptions
}

/** The top-level keys of CommonProxierOptions (a mode's section names come on top). */
export const COMMON_OPTION_KEYS: readonly string[] = [
  'mode', 'nodeName', 'nodeIPs', 'podCIDRs', 'serviceCIDRs', 'nodePortAddresses', 'zone', 'ipFamily',
  'masqueradeAll', 'timeouts', 'seed', 'clock',
]

export interface NodeInfo {
  name: string
  /** Canonical node IPs. */
  ips: string[]
  zone: string | undefined
  families: IPFamily[]
}

export interface ResolvedOptions {
  mode: string
  node: NodeInfo
  podCIDRs: string[]
  /** Canonical CIDR text ("10.96.0.0/12"). */
  serviceCIDRs: string[]
  /** Canonical CIDR text or "primary"; empty = every local address (kube-proxy's default). */
  nodePortAddresses: string[]
  masqueradeBit: number
  masqueradeAll: boolean
  localhostNodePorts: boolean
  timeouts: Partial<ConntrackTimeouts>
  seed: number | bigint | undefined
  clock: () => number
}

function bad(field: string, expected: string, got: unknown): TypeError {
  return new SvcplaneTypeError(`Proxier options: ${field} must be ${expected}, got ${show(got)}`)
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

/** Checks and normalises the shared options; the mode name and sections are lib/modes' to check. */
export function resolveOptions(o: CommonProxierOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw new SvcplaneTypeError('Proxier options must be an object')
  if (typeof o.mode !== 'string') throw bad('mode', 'a proxy mode name', o.mode)
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
  const ipt = o.iptables ?? {}
  if (typeof ipt !== 'object' || ipt === null) throw bad('iptables', 'an object', ipt)
  const masqueradeBit = ipt.masqueradeBit ?? 14
  if (!Number.isInteger(masqueradeBit) || masqueradeBit < 0 || masqueradeBit > 31) {
    throw new SvcplaneRangeError(`Proxier options: iptables.masqueradeBit must be an integer 0..31, got ${show(ipt.masqueradeBit)}`)
  }
  if (o.masqueradeAll !== undefined && typeof o.masqueradeAll !== 'boolean') throw bad('masqueradeAll', 'a boolean', o.masqueradeAll)
  if (ipt.localhostNodePorts !== undefined && typeof ipt.localhostNodePorts !== 'boolean') {
    throw bad('iptables.localhostNodePorts', 'a boolean', ipt.localhostNodePorts)
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
    localhostNodePorts: ipt.localhostNodePorts ?? true,
    timeouts: o.timeouts ?? {},
    seed: o.seed,
    clock: o.clock ?? monotonicSeconds,
  }
}
