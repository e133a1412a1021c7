// The iptables rules kube-proxy's userspace mode wrote (pkg/proxy/userspace, Kubernetes <=
// 1.25): per ServicePort, "portal" rules in nat that send its cluster IP, external IPs and
// load-balancer IPs to the ServicePort's proxy port (KUBE-PORTALS-CONTAINER from PREROUTING,
// KUBE-PORTALS-HOST from OUTPUT), NodePort rules matched on any local destination
// (KUBE-NODEPORT-CONTAINER / -HOST), and a filter rule that accepts new connections to the
// proxy port (KUBE-NODEPORT-NON-LOCAL). The same rule objects are rendered as
// iptables-restore text and walked by route(), so what explain() says is what the text does.
import { joinHostPort } from '../../util/host-port.js'
import type { FrontendKind } from '../../proxy/frontends.js'

export const PORTALS_CONTAINER = 'KUBE-PORTALS-CONTAINER'
export const PORTALS_HOST = 'KUBE-PORTALS-HOST'
export const NODEPORT_CONTAINER = 'KUBE-NODEPORT-CONTAINER'
export const NODEPORT_HOST = 'KUBE-NODEPORT-HOST'
export const NODEPORT_NON_LOCAL = 'KUBE-NODEPORT-NON-LOCAL'

export type PortalChain = typeof PORTALS_CONTAINER | typeof PORTALS_HOST | typeof NODEPORT_CONTAINER | typeof NODEPORT_HOST | typeof NODEPORT_NON_LOCAL

export interface PortalRule {
  chain: PortalChain
  servicePort: string
  /** The frontend this rule catches ('proxyPort' for the filter rule). */
  kind: FrontendKind | 'proxyPort'
  protocol: 'TCP' | 'UDP'
  /** -d ADDRESS/32 (/128); undefined: any destination (NodePorts, the filter rule). */
  destination: string | undefined
  dport: number
  /** -m physdev ! --physdev-is-in: not arriving from a bridge port (a local pod). */
  notFromBridge: boolean
  /** -m addrtype --dst-type LOCAL. */
  dstLocal: boolean
  target: { kind: 'REDIRECT'; toPort: number } | { kind: 'DNAT'; address: string; port: number } | { kind: 'ACCEPT' }
}

export interface PortalService {
  servicePort: string
  protocol: 'TCP' | 'UDP'
  clusterIP: string
  port: number
  externalIPs: readonly string[]
  loadBalancerIPs: readonly string[]
  /** 0 when none. */
  nodePort: number
  proxyPort: number
}

export interface PortalTarget {
  /** --bind-address of the proxy sockets. */
  bindAddress: string
  /** The node address host rules DNAT to when the proxy listens on every address. */
  hostIP: string
}

const isAny = (address: string) => address === '0.0.0.0' || address === '::'

/** The rules of one ServicePort, in the order kube-proxy's openPortal appended them. */
export function portalRules(s: PortalService, at: PortalTarget): PortalRule[] {
  const any = isAny(at.bindAddress)
  const hostAddress = any ? at.hostIP : at.bindAddress
  // From containers: REDIRECT reaches a proxy bound to every address; a proxy bound to one
  // address must be DNATed to it. From the host: always DNAT (REDIRECT of local traffic
  // answers from the wrong address).
  const container: PortalRule['target'] = any ? { kind: 'REDIRECT', toPort: s.proxyPort } : { kind: 'DNAT', address: at.bindAddress, port: s.proxyPort }
  const host: PortalRule['target'] = { kind: 'DNAT', address: hostAddress, port: s.proxyPort }
  const base = { servicePort: s.servicePort, protocol: s.protocol, notFromBridge: false, dstLocal: false }
  const rules: PortalRule[] = []
  const portal = (kind: FrontendKind, address: string, external: boolean) => {
    rules.push({ ...base, chain: PORTALS_CONTAINER, kind, destination: address, dport: s.port, notFromBridge: external, target: container })
    if (external) {
      // An external IP from a local pod is proxied only when it is this node's own address.
      rules.push({ ...base, chain: PORTALS_CONTAINER, kind, destination: address, dport: s.port, dstLocal: true, target: container })
    }
    rules.push({ ...base, chain: PORTALS_HOST, kind, destination: address, dport: s.port, dstLocal: external, target: host })
  }
  portal('clusterIP', s.clusterIP, false)
  for (const ip of s.externalIPs) portal('externalIP', ip, true)
  for (const ip of s.loadBalancerIPs) portal('loadBalancer', ip, false)
  if (s.nodePort !== 0) {
    rules.push({ ...base, chain: NODEPORT_CONTAINER, kind: 'nodePort', destination: undefined, dport: s.nodePort, target: container })
    rules.push({ ...base, chain: NODEPORT_HOST, kind: 'nodePort', destination: undefined, dport: s.nodePort, target: host })
    rules.push({ ...base, chain: NODEPORT_NON_LOCAL, kind: 'proxyPort', destination: undefined, dport: s.proxyPort, target: { kind: 'ACCEPT' } })
  }
  return rules
}

const hostCidr = (address: string) => (address.includes(':') ? `${address}/128` : `${address}/32`)

/** One rule as iptables-save prints it. */
export function formatPortalRule(r: PortalRule): string {
  const proto = r.protocol.toLowerCase()
  const out = ['-A', r.chain]
  if (r.destination !== undefined) out.push('-d', hostCidr(r.destination))
  out.push('-p', proto, '-m', 'comment', '--comment', `"${r.servicePort}"`, '-m', proto, '--dport', String(r.dport))
  if (r.notFromBridge) out.push('-m', 'physdev', '!', '--physdev-is-in')
  if (r.dstLocal) out.push('-m', 'addrtype', '--dst-type', 'LOCAL')
  if (r.target.kind === 'REDIRECT') out.push('-j', 'REDIRECT', '--to-ports', String(r.target.toPort))
  else if (r.target.kind === 'DNAT') out.push('-j', 'DNAT', '--to-destination', joinHostPort(r.target.address, r.target.port))
  else out.push('-m', 'state', '--state', 'NEW', '-j', 'ACCEPT')
  return out.join(' ')
}

/** The jumps from the built-in chains kube-proxy's iptablesInit ensured (-I: first, -A: last). */
export function portalJumpRules(): { nat: string[]; filter: string[] } {
  const portals = '-m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules"'
  const nodePorts = '-m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain"'
  return {
    nat: [
      `-I PREROUTING ${portals} -j ${PORTALS_CONTAINER}`,
      `-I OUTPUT ${portals} -j ${PORTALS_HOST}`,
      `-A PREROUTING ${nodePorts} -j ${NODEPORT_CONTAINER}`,
      `-A OUTPUT ${nodePorts} -j ${NODEPORT_HOST}`,
    ],
    filter: [`-I INPUT -m comment --comment "Ensure that non-local NodePort traffic can flow" -j ${NODEPORT_NON_LOCAL}`],
  }
}

/**
 * iptables-restore input that (re)writes the userspace chains: every chain declared (so a
 * restore flushes it) and its rules. Load it with `iptables-restore --noflush`; the jumps from
 * the built-in chains are portalJumpRules(), installed once.
 */
export function renderPortalRestore(rules: readonly PortalRule[]): string {
  const lines: string[] = ['*nat']
  for (const chain of [PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST]) lines.push(`:${chain} - [0:0]`)
  for (const chain of [PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST]) {
    for (const r of rules) if (r.chain === chain) lines.push(formatPortalRule(r))
  }
  lines.push('COMMIT', '*filter', `:${NODEPORT_NON_LOCAL} - [0:0]`)
  for (const r of rules) if (r.chain === NODEPORT_NON_LOCAL) lines.push(formatPortalRule(r))
  lines.push('COMMIT')
  return lines.join('\n') + '\n'
}
