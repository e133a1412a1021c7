// The iptables rules kube-proxy's ipvs proxier still writes (writeIptablesRules and
// createAndLinkKubeChain): a constant set of chains whose rules match the ipsets, so their
// number does not grow with the Services. iptables-restore input, rule for rule.
import { IPSET_INFO, ipsetName, type FamilyIpsets, type NoNodeAccessEntry } from './ipsets.js'
import type { Family } from './node-port-addresses.js'

export interface IpvsIptablesOptions {
  /** kube-proxy's masqueradeMark, "%#08x" of 1 << masqueradeBit ("0x00004000"). */
  masqueradeMark: string
  masqueradeAll: boolean
  /** The local-traffic detector's CIDR for this family; undefined: no detector. */
  podCIDR: string | undefined
  /** iptables supports MASQUERADE --random-fully. */
  randomFully: boolean
}

const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-NODE-PORT', 'KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ']
const FILTER_CHAINS = ['KUBE-FORWARD', 'KUBE-NODE-PORT', 'KUBE-PROXY-FIREWALL', 'KUBE-SOURCE-RANGES-FIREWALL', 'KUBE-IPVS-FILTER', 'KUBE-IPVS-OUT-FILTER']

/** The jumps kube-proxy ensures from the built-in chains (iptablesJumpChain). */
export const IPVS_JUMP_CHAINS: readonly { table: 'nat' | 'filter'; from: string; to: string; comment: string }[] = [
  { table: 'nat', from: 'OUTPUT', to: 'KUBE-SERVICES', comment: 'kubernetes service portals' },
  { table: 'nat', from: 'PREROUTING', to: 'KUBE-SERVICES', comment: 'kubernetes service portals' },
  { table: 'nat', from: 'POSTROUTING', to: 'KUBE-POSTROUTING', comment: 'kubernetes postrouting rules' },
  { table: 'filter', from: 'FORWARD', to: 'KUBE-FORWARD', comment: 'kubernetes forwarding rules' },
  { table: 'filter', from: 'INPUT', to: 'KUBE-NODE-PORT', comment: 'kubernetes health check rules' },
  { table: 'filter', from: 'INPUT', to: 'KUBE-PROXY-FIREWALL', comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'FORWARD', to: 'KUBE-PROXY-FIREWALL', comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'INPUT', to: 'KUBE-IPVS-FILTER', comment: 'kubernetes ipvs access filter' },
  { table: 'filter', from: 'OUTPUT', to: 'KUBE-IPVS-OUT-FILTER', comment: 'kubernetes ipvs access filter' },
]

/** ipsetWithIptablesChain: sets whose single rule only depends on the set being non-empty. */
const SET_RULES: readonly { set: string; table: 'nat' | 'filter'; from: string; to: string; match: string; protocol?: string }[] = [
  { set: 'KUBE-LOOP-BACK', table: 'nat', from: 'KUBE-POSTROUTING', to: 'MASQUERADE', match: 'dst,dst,src' },
  { set: 'KUBE-LOAD-BALANCER', table: 'nat', from: 'KUBE-SERVICES', to: 'KUBE-LOAD-BALANCER', match: 'dst,dst' },
  { set: 'KUBE-LOAD-BALANCER-LOCAL', table: 'nat', from: 'KUBE-LOAD-BALANCER', to: 'RETURN', match: 'dst,dst' },
  { set: 'KUBE-NODE-PORT-LOCAL-TCP', table: 'nat', from: 'KUBE-NODE-PORT', to: 'RETURN', match: 'dst', protocol: 'tcp' },
  { set: 'KUBE-NODE-PORT-TCP', table: 'nat', from: 'KUBE-NODE-PORT', to: 'KUBE-MARK-MASQ', match: 'dst', protocol: 'tcp' },
  { set: 'KUBE-NODE-PORT-LOCAL-UDP', table: 'nat', from: 'KUBE-NODE-PORT', to: 'RETURN', match: 'dst', protocol: 'udp' },
  { set: 'KUBE-NODE-PORT-UDP', table: 'nat', from: 'KUBE-NODE-PORT', to: 'KUBE-MARK-MASQ', match: 'dst', protocol: 'udp' },
  { set: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH', table: 'nat', from: 'KUBE-NODE-PORT', to: 'RETURN', match: 'dst,dst', protocol: 'sctp' },
  { set: 'KUBE-NODE-PORT-SCTP-HASH', table: 'nat', from: 'KUBE-NODE-PORT', to: 'KUBE-MARK-MASQ', match: 'dst,dst', protocol: 'sctp' },
  { set: 'KUBE-LOAD-BALANCER-FW', table: 'filter', from: 'KUBE-PROXY-FIREWALL', to: 'KUBE-SOURCE-RANGES-FIREWALL', match: 'dst,dst' },
  { set: 'KUBE-LOAD-BALANCER-SOURCE-CIDR', table: 'filter', from: 'KUBE-SOURCE-RANGES-FIREWALL', to: 'RETURN', match: 'dst,dst,src' },
  { set: 'KUBE-LOAD-BALANCER-SOURCE-IP', table: 'filter', from: 'KUBE-SOURCE-RANGES-FIREWALL', to: 'RETURN', match: 'dst,dst,src' },
]

const COMMENTS = new Map(IPSET_INFO.map((i) => [i.name, i.comment]))

/** What the rules depend on: which sets have entries, and the LB frontends closed to the node. */
export interface IpsetSummary {
  family: Family
  nonEmpty(set: string): boolean
  noNodeAccess: readonly NoNodeAccessEntry[]
}

function summary(sets: FamilyIpsets | IpsetSummary): IpsetSummary {
  if (!('entries' in sets)) return sets
  return { family: sets.family, nonEmpty: (set) => (sets.entries.get(set)?.length ?? 0) > 0, noNodeAccess: sets.noNodeAccess }
}

/** kube-proxy's iptables-restore input for one family in ipvs mode (NoFlushTables: only its chains). */
export function renderIpvsIptables(given: FamilyIpsets | IpsetSummary, options: IpvsIptablesOptions): string {
  const sets = summary(given)
  const family = sets.family
  const name = (set: string) => ipsetName(set, family)
  const has = (set: string) => sets.nonEmpty(set)
  const comment = (set: string) => `-m comment --comment "${COMMENTS.get(set)}"`
  const matchSet = (set: string, match: string) => `-m set --match-set ${name(set)} ${match}`
  const nat: string[] = []
  const filter: string[] = []
  const mark = options.masqueradeMark

  nat.push(`-A KUBE-SERVICES -s ${family === 'IPv6' ? '::1/128' : '127.0.0.0/8'} -j RETURN`)
  for (const r of SET_RULES) {
    if (!has(r.set)) continue
    const proto = r.protocol === undefined ? '' : `-p ${r.protocol} `
    ;(r.table === 'nat' ? nat : filter).push(`-A ${r.from} ${proto}${comment(r.set)} ${matchSet(r.set, r.match)} -j ${r.to}`)
  }
  if (has('KUBE-CLUSTER-IP')) {
    const rule = `-A KUBE-SERVICES ${comment('KUBE-CLUSTER-IP')} -m set --match-set ${name('KUBE-CLUSTER-IP')}`
    if (options.masqueradeAll) nat.push(`${rule} dst,dst -j KUBE-MARK-MASQ`)
    else if (options.podCIDR !== undefined) nat.push(`${rule} dst,dst ! -s ${options.podCIDR} -j KUBE-MARK-MASQ`)
    // Without a detector: node traffic that picked a VIP on kube-ipvs0 as its source.
    else nat.push(`${rule} src,dst -j KUBE-MARK-MASQ`)
  }
  // Off-machine traffic to external IPs, and traffic to external IPs that are local, stays in the chain's ACCEPT.
  const externalAccepts = (set: string) => {
    const rule = `-A KUBE-SERVICES ${comment(set)} ${matchSet(set, 'dst,dst')}`
    nat.push(`${rule} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`)
    nat.push(`${rule} -m addrtype --dst-type LOCAL -j ACCEPT`)
  }
  if (has('KUBE-EXTERNAL-IP')) {
    nat.push(`-A KUBE-SERVICES ${comment('KUBE-EXTERNAL-IP')} ${matchSet('KUBE-EXTERNAL-IP', 'dst,dst')} -j KUBE-MARK-MASQ`)
    externalAccepts('KUBE-EXTERNAL-IP')
  }
  if (has('KUBE-EXTERNAL-IP-LOCAL')) externalAccepts('KUBE-EXTERNAL-IP-LOCAL')
  nat.push('-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT')
  nat.push('-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ')
  filter.push('-A KUBE-SOURCE-RANGES-FIREWALL -j DROP')
  for (const e of sets.noNodeAccess) {
    filter.push(`-A KUBE-IPVS-OUT-FILTER -s ${e.ip} -m ipvs --vaddr ${e.ip} --vproto ${e.protocol} --vport ${e.port} -j DROP`)
  }
  // Accept what IPVS will take, in case later rules of the node would block it.
  for (const set of ['KUBE-CLUSTER-IP', 'KUBE-LOAD-BALANCER']) {
    if (has(set)) nat.push(`-A KUBE-SERVICES ${matchSet(set, 'dst,dst')} -j ACCEPT`)
  }
  filter.push(`-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`)
  filter.push('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')
  filter.push(`-A KUBE-NODE-PORT ${comment('KUBE-HEALTH-CHECK-NODE-PORT')} ${matchSet('KUBE-HEALTH-CHECK-NODE-PORT', 'dst')} -j ACCEPT`)
  // kubernetes#72236: a VIP on kube-ipvs0 must not expose the node's own ports.
  for (const set of ['KUBE-LOAD-BALANCER', 'KUBE-CLUSTER-IP', 'KUBE-EXTERNAL-IP', 'KUBE-EXTERNAL-IP-LOCAL']) {
    filter.push(`-A KUBE-IPVS-FILTER ${matchSet(set, 'dst,dst')} -j RETURN`)
  }
  filter.push(`-A KUBE-IPVS-FILTER ${matchSet('KUBE-HEALTH-CHECK-NODE-PORT', 'dst')} -j RETURN`)
  filter.push(`-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW ${matchSet('KUBE-IPVS-IPS', 'dst')} -j REJECT`)
  nat.push(`-A KUBE-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`)
  nat.push(`-A KUBE-POSTROUTING -j MARK --xor-mark ${mark}`)
  nat.push(`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${options.randomFully ? ' --random-fully' : ''}`)
  nat.push(`-A KUBE-MARK-MASQ -j MARK --or-mark ${mark}`)

  return [
    '*nat', ...NAT_CHAINS.map((c) => `:${c} - [0:0]`), ...nat, 'COMMIT',
    '*filter', ...FILTER_CHAINS.map((c) => `:${c} - [0:0]`), ...filter, 'COMMIT',
    '',
  ].join('\n')
}

/**
 * The restore text as iptables-save would show it on the node: with the built-in chains and
 * the jumps kube-proxy ensures into its chains outside the restore (IPVS_JUMP_CHAINS), so an
 * evaluator walks it from the hooks.
 */
export function withJumpChains(text: string): string {
  const out: string[] = []
  for (const line of text.split('\n')) {
    out.push(line)
    const table = line === '*nat' ? 'nat' : line === '*filter' ? 'filter' : undefined
    if (table === undefined) continue
    const jumps = IPVS_JUMP_CHAINS.filter((j) => j.table === table)
    for (const from of new Set(jumps.map((j) => j.from))) out.push(`:${from} ACCEPT [0:0]`)
    for (const j of jumps) out.push(`-A ${j.from} -m comment --comment "${j.comment}" -j ${j.to}`)
  }
  return out.join('\n')
}
