// Renders kube-proxy's (v1.31 iptables mode) iptables-restore input for a set
// of service ports: the same chains, rules, argument order, comments, chain
// name hashes and probability strings, so the text can be compared rule for
// rule with kube-proxy's own output and loaded with iptables-restore.

import {
  endpointChainName, isServiceChainName, serviceClusterChainName, serviceExternalChainName,
  serviceFirewallChainName, serviceLocalChainName,
} from './chain-names.js'
import { cidrContains, formatAddr, parseAddr, parseCidr } from '../../util/address-words.js'
import { joinHostPort } from '../../util/host-port.js'
import type { RenderEndpoint, RenderOptions, RenderServicePort } from './render-types.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

const KUBE_SERVICES = 'KUBE-SERVICES'
const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES'
const KUBE_NODEPORTS = 'KUBE-NODEPORTS'
const KUBE_POSTROUTING = 'KUBE-POSTROUTING'
const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ'
const KUBE_FORWARD = 'KUBE-FORWARD'
const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL'
const KUBE_FIREWALL = 'KUBE-FIREWALL'

const LOCALHOST_NODEPORT_COUNTER = 'localhost_nps_accepted_pkts'
const INVALID_DROP_COUNTER = 'ct_state_invalid_dropped_pkts'

/** Go's fmt "%#08x": zero-pads the digits to 8, then prefixes 0x. */
export function formatMasqueradeMark(bit: number): string {
  if (!Number.isInteger(bit) || bit < 0 || bit > 31) throw new SvcplaneRangeError(`masqueradeBit must be 0-31, got ${bit}`)
  return `0x${((1 << bit) >>> 0).toString(16).padStart(8, '0')}`
}

/**
 * kube-proxy's probability string for the i-th of n rules: 1/n as "%0.10f".
 * Computed on the exact fraction with round-half-even, as Go formats the
 * double (1/n is exact whenever it is a decimal tie, i.e. n a power of two).
 */
export function computeProbability(n: number): string {
  if (!Number.isInteger(n) || n < 1) throw new SvcplaneRangeError(`probability denominator must be a positive integer, got ${n}`)
  const scale = 10_000_000_000n
  const big = BigInt(n)
  let q = scale / big
  const r = scale % big
  if (2n * r > big || (2n * r === big && q % 2n === 1n)) q += 1n
  const s = q.toString().padStart(11, '0')
  return `${s.slice(0, -10)}.${s.slice(-10)}`
}

function canonicalIP(ip: string, what: string): string {
  const a = parseAddr(ip.trim())
  if (!a) throw new SvcplaneTypeError(`${what}: invalid IP ${JSON.stringify(ip)}`)
  return formatAddr(a)
}

function canonicalCidr(text: string, what: string): string {
  const c = parseCidr(text.trim())
  if (!c || c.bits < 0) throw new SvcplaneTypeError(`${what}: invalid CIDR ${JSON.stringify(text)}`)
  return `${formatAddr({ family: c.family, w: c.w })}/${c.bits}`
}

function endpointString(ep: RenderEndpoint): string {
  return joinHostPort(canonicalIP(ep.ip, 'endpoint'), ep.port)
}

/** Quotes an argument the way kube-proxy's fmt.Sprintf(`"%s ..."`) does. */
const q = (s: string): string => `"${s}"`

class Lines {
  readonly lines: string[] = []
  write(...parts: Array<string | string[]>): void {
    this.lines.push(parts.flat().join(' '))
  }
}

function namespacedName(servicePortName: string): string {
  const colon = servicePortName.indexOf(':')
  return colon < 0 ? servicePortName : servicePortName.slice(0, colon)
}

function validatePort(sp: RenderServicePort): void {
  if (typeof sp.name !== 'string' || !sp.name.includes('/')) throw new SvcplaneTypeError(`servicePort.name must be "ns/name[:port]", got ${JSON.stringify(sp.name)}`)
  if (!['TCP', 'UDP', 'SCTP'].includes(sp.protocol)) throw new SvcplaneTypeError(`${sp.name}: protocol must be TCP, UDP or SCTP, got ${JSON.stringify(sp.protocol)}`)
  for (const [field, v] of [['port', sp.port], ['nodePort', sp.nodePort ?? 0], ['healthCheckNodePort', sp.healthCheckNodePort ?? 0]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw new SvcplaneRangeError(`${sp.name}: ${field} must be 0-65535, got ${v}`)
  }
}

/**
 * kube-proxy's full-sync (or, with `changedServices`, partial-sync)
 * iptables-restore input for the given service ports.
 */
export function renderIptablesRestore(servicePorts: RenderServicePort[], options: RenderOptions = {}): string {
  return renderRestore(servicePorts, options).text
}

export interface RenderedRestore {
  text: string
  /** every per-service nat chain of the full state (also those a partial sync leaves out) */
  activeNatChains: Set<string>
  /** the large-cluster mode was on (comments dropped from SVC/SVL and SEP rules) */
  largeCluster: boolean
}

/** renderIptablesRestore, also returning the chains the state needs (for the next partial sync). */
export function renderRestore(servicePorts: RenderServicePort[], options: RenderOptions = {}): RenderedRestore {
  const family = options.ipFamily ?? 4
  const isIPv6 = family === 6
  const masqMark = options.masqueradeMark ?? formatMasqueradeMark(options.masqueradeBit ?? 14)
  const localhostNodePorts = !isIPv6 && (options.localhostNodePorts ?? true)
  const nfacct = options.nfacct ?? true
  const podCIDR = options.podCIDR !== undefined ? canonicalCidr(options.podCIDR, 'options.podCIDR') : undefined
  const ifLocal = podCIDR ? ['-s', podCIDR] : undefined
  const ifNotLocal = podCIDR ? ['!', '-s', podCIDR] : undefined
  const nodeIPs = (options.nodeIPs ?? []).map((ip) => parseAddr(ip)).filter((a) => a !== undefined)
  const changed = options.changedServices ? new Set(options.changedServices) : undefined

  const filterChains = new Lines()
  const filterRules = new Lines()
  const natChains = new Lines()
  const natRules = new Lines()
  const skipped = new Lines()

  for (const c of [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL]) filterChains.write(`:${c} - [0:0]`)
  for (const c of [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]) natChains.write(`:${c} - [0:0]`)

  natRules.write('-A', KUBE_POSTROUTING, '-m', 'mark', '!', '--mark', `${masqMark}/${masqMark}`, '-j', 'RETURN')
  natRules.write('-A', KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', masqMark)
  natRules.write('-A', KUBE_POSTROUTING, '-m', 'comment', '--comment', q('kubernetes service traffic requiring SNAT'), '-j', 'MASQUERADE', ...(options.randomFully ?? true ? ['--random-fully'] : []))
  natRules.write('-A', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', masqMark)

  if (localhostNodePorts) {
    filterChains.write(`:${KUBE_FIREWALL} - [0:0]`)
    filterRules.write('-A', KUBE_FIREWALL, '-m', 'comment', '--comment', q('block incoming localnet connections'),
      '-d', '127.0.0.0/8', '!', '-s', '127.0.0.0/8', '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-j', 'DROP')
  }

  const activeNatChains = new Set<string>()
  let totalEndpoints = 0
  for (const sp of servicePorts) {
    validatePort(sp)
    totalEndpoints += sp.endpointCount ?? reachable(sp).length
  }
  const largeCluster = totalEndpoints > (options.largeClusterEndpointsThreshold ?? 1000)
  const serviceComment = (args: string[], comment: string): string[] => (largeCluster ? args : [...args, '-m', 'comment', '--comment', comment])

  for (const sp of servicePorts) {
    const protocol = sp.protocol.toLowerCase()
    const name = sp.name
    const clusterIP = canonicalIP(sp.clusterIP, `${name} clusterIP`)
    const port = String(sp.port)
    const svcChain = serviceClusterChainName(name, protocol)
    const svlChain = serviceLocalChainName(name, protocol)
    const extChain = serviceExternalChainName(name, protocol)
    const fwChain = serviceFirewallChainName(name, protocol)
    const externalIPs = (sp.externalIPs ?? []).map((ip) => canonicalIP(ip, `${name} externalIPs`))
    const lbIPs = (sp.loadBalancerIPs ?? []).map((ip) => canonicalIP(ip, `${name} loadBalancerIPs`))
    const sourceRanges = (sp.loadBalancerSourceRanges ?? []).map((c) => canonicalCidr(c, `${name} loadBalancerSourceRanges`))
    const nodePort = sp.nodePort ?? 0
    const externallyAccessible = nodePort !== 0 || externalIPs.length > 0 || lbIPs.length > 0
    // as kube-proxy's ServicePort: the external policy only counts when there is external access
    const externalPolicyLocal = externallyAccessible && (sp.externalPolicyLocal ?? false)
    const internalPolicyLocal = sp.internalPolicyLocal ?? false
    // kube-proxy's UsesClusterEndpoints: external access needs the cluster chain even under a
    // Local policy, for the short-circuit of pod- and node-originated traffic.
    const usesClusterEndpoints = !internalPolicyLocal || externallyAccessible
    const usesLocalEndpoints = internalPolicyLocal || externalPolicyLocal

    const cluster = sp.clusterEndpoints
    const local = sp.localEndpoints
    const hasEndpoints = sp.hasEndpoints ?? (cluster.length > 0 || local.length > 0)
    const usesClusterPolicyChain = cluster.length > 0 && usesClusterEndpoints
    const usesLocalPolicyChain = local.length > 0 && usesLocalEndpoints

    const internalPolicyChain = internalPolicyLocal ? svlChain : svcChain
    const hasInternalEndpoints = hasEndpoints && !(internalPolicyLocal && local.length === 0)
    const externalPolicyChain = externalPolicyLocal ? svlChain : svcChain
    const hasExternalEndpoints = hasEndpoints && !(externalPolicyLocal && local.length === 0)
    const usesExternalTrafficChain = hasEndpoints && externallyAccessible
    const usesFWChain = hasEndpoints && lbIPs.length > 0 && sourceRanges.length > 0
    const loadBalancerTrafficChain = usesFWChain ? fwChain : extChain

    let internalFilterTarget = ''
    let internalFilterComment = ''
    let externalFilterTarget = ''
    let externalFilterComment = ''
    if (!hasEndpoints) {
      internalFilterTarget = externalFilterTarget = 'REJECT'
      internalFilterComment = externalFilterComment = q(`${name} has no endpoints`)
    } else {
      if (!hasInternalEndpoints) { internalFilterTarget = 'DROP'; internalFilterComment = q(`${name} has no local endpoints`) }
      if (!hasExternalEndpoints) { externalFilterTarget = 'DROP'; externalFilterComment = q(`${name} has no local endpoints`) }
    }
    const proto = ['-m', protocol, '-p', protocol]

    if (hasInternalEndpoints) {
      natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', q(`${name} cluster IP`), proto, '-d', clusterIP, '--dport', port, '-j', internalPolicyChain)
    } else {
      filterRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', internalFilterComment, proto, '-d', clusterIP, '--dport', port, '-j', internalFilterTarget)
    }
    for (const ip of externalIPs) {
      if (hasEndpoints) natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', q(`${name} external IP`), proto, '-d', ip, '--dport', port, '-j', extChain)
      if (!hasExternalEndpoints) filterRules.write('-A', KUBE_EXTERNAL_SERVICES, '-m', 'comment', '--comment', externalFilterComment, proto, '-d', ip, '--dport', port, '-j', externalFilterTarget)
    }
    for (const ip of lbIPs) {
      if (hasEndpoints) natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', q(`${name} loadbalancer IP`), proto, '-d', ip, '--dport', port, '-j', loadBalancerTrafficChain)
      if (usesFWChain) filterRules.write('-A', KUBE_PROXY_FIREWALL, '-m', 'comment', '--comment', q(`${name} traffic not accepted by ${fwChain}`), proto, '-d', ip, '--dport', port, '-j', 'DROP')
    }
    if (!hasExternalEndpoints) {
      for (const ip of lbIPs) filterRules.write('-A', KUBE_EXTERNAL_SERVICES, '-m', 'comment', '--comment', externalFilterComment, proto, '-d', ip, '--dport', port, '-j', externalFilterTarget)
    }
    if (nodePort !== 0) {
      if (hasEndpoints) {
        if (localhostNodePorts && nfacct) {
          natRules.write('-A', KUBE_NODEPORTS, '-m', 'comment', '--comment', name, proto, '-d', '127.0.0.0/8', '--dport', String(nodePort), '-m', 'nfacct', '--nfacct-name', LOCALHOST_NODEPORT_COUNTER, '-j', extChain)
        }
        natRules.write('-A', KUBE_NODEPORTS, '-m', 'comment', '--comment', name, proto, '--dport', String(nodePort), '-j', extChain)
      }
      if (!hasExternalEndpoints) {
        filterRules.write('-A', KUBE_EXTERNAL_SERVICES, '-m', 'comment', '--comment', externalFilterComment, '-m', 'addrtype', '--dst-type', 'LOCAL', proto, '--dport', String(nodePort), '-j', externalFilterTarget)
      }
    }
    if (sp.healthCheckNodePort) {
      filterRules.write('-A', KUBE_NODEPORTS, '-m', 'comment', '--comment', q(`${name} health check node port`), '-m', 'tcp', '-p', 'tcp', '--dport', String(sp.healthCheckNodePort), '-j', 'ACCEPT')
    }

    // Unchanged services keep their per-service chains in a partial sync.
    const write = !changed || changed.has(namespacedName(name))
    const chains = write ? natChains : skipped
    const rules = write ? natRules : skipped

    if (hasInternalEndpoints) {
      const args = ['-m', 'comment', '--comment', q(`${name} cluster IP`), ...proto, '-d', clusterIP, '--dport', port]
      if (options.masqueradeAll) rules.write('-A', internalPolicyChain, args, '-j', KUBE_MARK_MASQ)
      else if (ifNotLocal) rules.write('-A', internalPolicyChain, args, ifNotLocal, '-j', KUBE_MARK_MASQ)
    }
    if (usesExternalTrafficChain) {
      chains.write(`:${extChain} - [0:0]`)
      activeNatChains.add(extChain)
      if (!externalPolicyLocal) {
        rules.write('-A', extChain, '-m', 'comment', '--comment', q(`masquerade traffic for ${name} external destinations`), '-j', KUBE_MARK_MASQ)
      } else {
        if (ifLocal) rules.write('-A', extChain, '-m', 'comment', '--comment', q(`pod traffic for ${name} external destinations`), ifLocal, '-j', svcChain)
        rules.write('-A', extChain, '-m', 'comment', '--comment', q(`masquerade LOCAL traffic for ${name} external destinations`), '-m', 'addrtype', '--src-type', 'LOCAL', '-j', KUBE_MARK_MASQ)
        rules.write('-A', extChain, '-m', 'comment', '--comment', q(`route LOCAL traffic for ${name} external destinations`), '-m', 'addrtype', '--src-type', 'LOCAL', '-j', svcChain)
      }
      if (hasExternalEndpoints) rules.write('-A', extChain, '-j', externalPolicyChain)
    }
    if (usesFWChain) {
      chains.write(`:${fwChain} - [0:0]`)
      activeNatChains.add(fwChain)
      const args = ['-A', fwChain, '-m', 'comment', '--comment', q(`${name} loadbalancer IP`)]
      let allowFromNode = false
      for (const cidr of sourceRanges) {
        rules.write(args, '-s', cidr, '-j', extChain)
        const c = parseCidr(cidr)!
        if (nodeIPs.some((ip) => cidrContains(c, ip))) allowFromNode = true
      }
      if (allowFromNode) for (const ip of lbIPs) rules.write(args, '-s', ip, '-j', extChain)
      rules.write('-A', fwChain, '-m', 'comment', '--comment', q(`other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL`))
    }
    const writeToEndpoints = (chain: string, eps: RenderEndpoint[]) => {
      if (sp.sessionAffinityTimeoutSeconds !== undefined) {
        for (const ep of eps) {
          const epStr = endpointString(ep)
          const sep = endpointChainName(name, protocol, epStr)
          rules.write(serviceComment(['-A', chain], q(`${name} -> ${epStr}`)), '-m', 'recent', '--name', sep,
            '--rcheck', '--seconds', String(sp.sessionAffinityTimeoutSeconds), '--reap', '-j', sep)
        }
      }
      eps.forEach((ep, i) => {
        const epStr = endpointString(ep)
        const args = serviceComment(['-A', chain], q(`${name} -> ${epStr}`))
        if (i < eps.length - 1) args.push('-m', 'statistic', '--mode', 'random', '--probability', computeProbability(eps.length - i))
        rules.write(args, '-j', endpointChainName(name, protocol, epStr))
      })
    }
    if (usesClusterPolicyChain) {
      chains.write(`:${svcChain} - [0:0]`)
      activeNatChains.add(svcChain)
      writeToEndpoints(svcChain, cluster)
    }
    if (usesLocalPolicyChain) {
      chains.write(`:${svlChain} - [0:0]`)
      activeNatChains.add(svlChain)
      writeToEndpoints(svlChain, local)
    }
    for (const ep of reachableFor(sp, usesClusterEndpoints, usesLocalEndpoints)) {
      const epStr = endpointString(ep)
      const sep = endpointChainName(name, protocol, epStr)
      chains.write(`:${sep} - [0:0]`)
      activeNatChains.add(sep)
      const args = serviceComment(['-A', sep], name)
      rules.write(args, '-s', canonicalIP(ep.ip, 'endpoint'), '-j', KUBE_MARK_MASQ)
      const dnat = sp.sessionAffinityTimeoutSeconds !== undefined ? [...args, '-m', 'recent', '--name', sep, '--set'] : args
      rules.write(dnat, proto, '-j', 'DNAT', '--to-destination', epStr)
    }
  }

  for (const chain of options.existingNatChains ?? []) {
    if (activeNatChains.has(chain) || !isServiceChainName(chain)) continue
    natChains.write(`:${chain} - [0:0]`)
    natRules.write('-X', chain)
  }

  const nodeportsComment = q('kubernetes service nodeports; NOTE: this must be the last rule in this chain')
  if (options.nodePortAddresses === undefined) {
    const destinations = ['-m', 'addrtype', '--dst-type', 'LOCAL']
    if (isIPv6) destinations.push('!', '-d', '::1/128')
    else if (!localhostNodePorts) destinations.push('!', '-d', '127.0.0.0/8')
    natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', nodeportsComment, destinations, '-j', KUBE_NODEPORTS)
  } else {
    for (const ipText of options.nodePortAddresses) {
      const a = parseAddr(ipText)
      if (!a) throw new SvcplaneTypeError(`options.nodePortAddresses: invalid IP ${JSON.stringify(ipText)}`)
      const loopback = a.family === 4 ? a.w[0]! >>> 24 === 127 : formatAddr(a) === '::1'
      if (loopback && (isIPv6 || !localhostNodePorts)) continue
      natRules.write('-A', KUBE_SERVICES, '-m', 'comment', '--comment', nodeportsComment, '-d', formatAddr(a), '-j', KUBE_NODEPORTS)
    }
  }

  if (!options.conntrackTCPLiberal) {
    filterRules.write('-A', KUBE_FORWARD, '-m', 'conntrack', '--ctstate', 'INVALID', ...(nfacct ? ['-m', 'nfacct', '--nfacct-name', INVALID_DROP_COUNTER] : []), '-j', 'DROP')
  }
  filterRules.write('-A', KUBE_FORWARD, '-m', 'comment', '--comment', q('kubernetes forwarding rules'), '-m', 'mark', '--mark', `${masqMark}/${masqMark}`, '-j', 'ACCEPT')
  filterRules.write('-A', KUBE_FORWARD, '-m', 'comment', '--comment', q('kubernetes forwarding conntrack rule'), '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT')

  const text = [
    '*filter', ...filterChains.lines, ...filterRules.lines, 'COMMIT',
    '*nat', ...natChains.lines, ...natRules.lines, 'COMMIT', '',
  ].join('\n')
  return { text, activeNatChains, largeCluster }
}

function reachable(sp: RenderServicePort): RenderEndpoint[] {
  return reachableFor(sp, true, true)
}

/** kube-proxy's allLocallyReachableEndpoints: the union of the lists in use, deduplicated. */
function reachableFor(sp: RenderServicePort, usesCluster: boolean, usesLocal: boolean): RenderEndpoint[] {
  const seen = new Set<string>()
  const out: RenderEndpoint[] = []
  for (const list of [usesCluster ? sp.clusterEndpoints : [], usesLocal ? sp.localEndpoints : []]) {
    for (const ep of list) {
      const key = `${ep.ip}:${ep.port}`
      if (seen.has(key)) continue
      seen.add(key)
      out.push(ep)
    }
  }
  return out
}

/**
 * The jump rules kube-proxy (and kubelet) keep in the built-in chains with
 * `iptables -I` (EnsureRule prepends, so the last ensured comes first).
 */
export function renderJumpRules(options: Pick<RenderOptions, 'ipFamily' | 'localhostNodePorts'> = {}): { filter: string[]; nat: string[] } {
  const ctNew = ['-m', 'conntrack', '--ctstate', 'NEW']
  const jumps: Array<[table: 'filter' | 'nat', dst: string, src: string, comment: string, extra: string[]]> = [
    ['filter', KUBE_EXTERNAL_SERVICES, 'INPUT', 'kubernetes externally-visible service portals', ctNew],
    ['filter', KUBE_EXTERNAL_SERVICES, 'FORWARD', 'kubernetes externally-visible service portals', ctNew],
    ['filter', KUBE_NODEPORTS, 'INPUT', 'kubernetes health check service ports', []],
    ['filter', KUBE_SERVICES, 'FORWARD', 'kubernetes service portals', ctNew],
    ['filter', KUBE_SERVICES, 'OUTPUT', 'kubernetes service portals', ctNew],
    ['filter', KUBE_FORWARD, 'FORWARD', 'kubernetes forwarding rules', []],
    ['filter', KUBE_PROXY_FIREWALL, 'INPUT', 'kubernetes load balancer firewall', ctNew],
    ['filter', KUBE_PROXY_FIREWALL, 'OUTPUT', 'kubernetes load balancer firewall', ctNew],
    ['filter', KUBE_PROXY_FIREWALL, 'FORWARD', 'kubernetes load balancer firewall', ctNew],
    ['nat', KUBE_SERVICES, 'OUTPUT', 'kubernetes service portals', []],
    ['nat', KUBE_SERVICES, 'PREROUTING', 'kubernetes service portals', []],
    ['nat', KUBE_POSTROUTING, 'POSTROUTING', 'kubernetes postrouting rules', []],
  ]
  if ((options.ipFamily ?? 4) === 4 && (options.localhostNodePorts ?? true)) {
    jumps.push(['filter', KUBE_FIREWALL, 'INPUT', '', []], ['filter', KUBE_FIREWALL, 'OUTPUT', '', []])
  }
  const out = { filter: [] as string[], nat: [] as string[] }
  for (const [table, dst, src, comment, extra] of jumps) {
    const args = [...extra, ...(comment ? ['-m', 'comment', '--comment', q(comment)] : []), '-j', dst]
    out[table].unshift(['-A', src, ...args].join(' '))
  }
  return out
}

/**
 * A complete, evaluable ruleset: built-in chains with the jump rules plus the
 * restore text, as the tables look on a node after kube-proxy's first sync.
 */
export function renderNodeRuleset(servicePorts: RenderServicePort[], options: RenderOptions = {}): string {
  const restore = renderIptablesRestore(servicePorts, { ...options, changedServices: undefined })
  const jumps = renderJumpRules(options)
  const [filterPart, natPart] = restore.split('*nat\n') as [string, string]
  const filterBody = filterPart.replace(/^\*filter\n/, '').replace(/COMMIT\n$/, '')
  const natBody = natPart.replace(/COMMIT\n$/, '')
  const split = (body: string) => {
    const lines = body.split('\n').filter((l) => l !== '')
    return { chains: lines.filter((l) => l.startsWith(':')), rules: lines.filter((l) => !l.startsWith(':')) }
  }
  const f = split(filterBody)
  const n = split(natBody)
  return [
    '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...f.chains, ...jumps.filter, ...f.rules, 'COMMIT',
    '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ...n.chains, ...jumps.nat, ...n.rules, 'COMMIT', '',
  ].join('\n')
}
