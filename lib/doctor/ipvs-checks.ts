// What goes wrong only in kube-proxy's IPVS mode, read from the ipvs state the node's Proxier
// programs (virtual servers, kube-ipvs0's addresses, ipsets, the iptables rules and sysctls):
// every service IP is a local address of the node, so it answers on every port unless
// KUBE-IPVS-FILTER rejects; without strictARP the node answers ARP for all of them; weight-0
// real servers keep taking connections whose client reuses a source port. And the mode is
// deprecated.
import type { IpvsState } from '../modes/index.js'
import type { Proxier } from '../modes/index.js'
import type { Finding } from './findings.js'
import type { Prober } from './probe.js'

/** The first port (from 1) that no virtual server of `address` uses for `protocol`. */
function unservedPort(state: IpvsState, address: string, protocol: string): number {
  const used = new Set(state.virtualServers.filter((v) => v.address === address && v.protocol === protocol).map((v) => v.port))
  let port = 1
  while (used.has(port)) port++
  return port
}

function nodeWide(node: string, f: Pick<Finding, 'code' | 'severity' | 'what' | 'why' | 'fix'> & Partial<Finding>): Finding {
  return { servicePort: '', service: '', protocol: '', nodes: [node], ...f }
}

function deprecation(node: string): Finding {
  return nodeWide(node, {
    code: 'ipvs-deprecated',
    severity: 'warning',
    what: 'this node runs kube-proxy in IPVS mode, which is deprecated from Kubernetes 1.35 (KEP-5495 plans its removal)',
    why: 'the IPVS proxier is no longer developed; nftables mode (GA since 1.33) gives the same O(1) Service lookup in the kernel, with sets and verdict maps instead of ipsets and IPVS tables',
    fix: 'move to nftables mode (mode: "nftables" in the KubeProxyConfiguration, or --proxy-mode=nftables); first see what changes for this cluster with `svcplane compare --cluster FILE --from ipvs --to nftables`',
  })
}

/** Service IPs on kube-ipvs0 answer on every port; KUBE-IPVS-FILTER is what rejects the unserved ones. */
function filterChain(node: string, state: IpvsState, probe: Prober): Finding | undefined {
  const vs = state.virtualServers.find((v) => v.protocol === 'TCP' && !v.address.includes(':') && state.interfaceAddresses.includes(v.address))
  if (vs === undefined) return undefined
  const rule = state.iptables.split('\n').find((l) => /^-A KUBE-IPVS-FILTER .*KUBE-IPVS-IPS.*-j REJECT/.test(l))
  const port = unservedPort(state, vs.address, 'TCP')
  const evidence = `${state.interfaceAddresses.length} service address(es) are bound to kube-ipvs0 (so local to the node), like ${vs.address}`
  const src = state.interfaceAddresses.includes('10.0.0.1') ? '10.0.0.2' : '10.0.0.1'
  const p = probe(node, { src, sport: 0, dst: vs.address, dport: port, protocol: 'TCP', hook: 'output' })
  if (rule === undefined) {
    return nodeWide(node, {
      code: 'ipvs-service-ip-any-port',
      severity: 'warning',
      what: `every service IP answers on every port: a process on the node listening on 0.0.0.0:${port} is reachable as ${vs.address}:${port}, a port no Service has`,
      why: `${evidence}, and the iptables rules have no KUBE-IPVS-FILTER REJECT for new connections to addresses in KUBE-IPVS-IPS`,
      fix: 'upgrade kube-proxy to a release whose IPVS proxier writes the KUBE-IPVS-FILTER chain, or reject new INPUT connections to kube-ipvs0 addresses on ports outside KUBE-CLUSTER-IP',
      probe: p,
    })
  }
  return nodeWide(node, {
    code: 'ipvs-service-ip-any-port',
    severity: 'info',
    what: `connections to a port no Service has on a service IP (${vs.address}:${port}) are refused by KUBE-IPVS-FILTER, not by the process that may listen on the node`,
    why: `${evidence}; without the filter a process listening on 0.0.0.0 would answer on every service IP; the rule: ${rule}`,
    fix: 'nothing: by design; a node running a kube-proxy release without the KUBE-IPVS-FILTER chain answers there instead',
    probe: p,
    details: { interfaceAddresses: state.interfaceAddresses.length, rule },
  })
}

/** Without strictARP the node answers ARP for every kube-ipvs0 address on every interface. */
function strictArp(node: string, state: IpvsState, external: ReadonlySet<string>): Finding | undefined {
  if (state.sysctls['net/ipv4/conf/all/arp_ignore'] === 1) return undefined
  const exposed = state.interfaceAddresses.filter((a) => external.has(a))
  const sample = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ` and ${xs.length - 5} more` : ''}`
  if (exposed.length === 0) {
    return nodeWide(node, {
      code: 'ipvs-strict-arp-off',
      severity: 'info',
      what: `the node answers ARP requests for its ${state.interfaceAddresses.length} kube-ipvs0 address(es) (the cluster IPs) on every interface`,
      why: 'strictARP is off: kube-proxy leaves net.ipv4.conf.all.arp_ignore=0 and arp_announce=0, so the kernel answers ARP for any local address, kube-ipvs0\'s included',
      fix: 'set ipvs.strictARP: true in the KubeProxyConfiguration before adding load-balancer or external IPs (MetalLB and kube-vip in layer-2 mode need it)',
      details: { interfaceAddresses: state.interfaceAddresses.length },
    })
  }
  return nodeWide(node, {
    code: 'ipvs-strict-arp-off',
    severity: 'warning',
    what: `every node answers ARP for the load-balancer / external IPs ${sample(exposed)}: the LAN sends their traffic to whichever node answered last, not to the one the load balancer announced`,
    why: `those addresses are bound to kube-ipvs0 on every node, and strictARP is off (net.ipv4.conf.all.arp_ignore=0, arp_announce=0), so each node answers ARP for them on every interface`,
    fix: 'set ipvs.strictARP: true in the KubeProxyConfiguration (kube-proxy then sets arp_ignore=1 and arp_announce=2); MetalLB and kube-vip in layer-2 mode require it',
    details: { exposed },
  })
}

/** Real servers at weight 0 still drain; on kernels before 5.9 reused source ports keep reaching them. */
function drainingServers(node: string, proxier: Proxier, state: IpvsState): Finding[] {
  const entries = proxier.ipvs!.entries()
  const out: Finding[] = []
  for (const vs of state.virtualServers) {
    const zero = vs.realServers.filter((r) => r.weight === 0)
    if (zero.length === 0) continue
    const entry = entries.find((e) => e.server.address === vs.address && e.server.port === vs.port && e.server.protocol === vs.protocol)
    const servicePort = entry?.origin.servicePort ?? ''
    const conns = (address: string, port: number) => {
      const d = entry?.dests.find((x) => x.address === address && x.port === port)
      return d === undefined ? '' : ` (${d.activeConns} active, ${d.inactiveConns} inactive connection(s))`
    }
    const listed = zero.map((r) => `${r.address}:${r.port}${conns(r.address, r.port)}`).join(', ')
    out.push({
      code: 'ipvs-weight-zero-reuse',
      severity: 'warning',
      servicePort,
      service: servicePort.split(':')[0] ?? '',
      protocol: vs.protocol,
      nodes: [node],
      what: `${vs.protocol} ${vs.address}:${vs.port} keeps terminating endpoint(s) as weight-0 real servers: ${listed}; clients that reuse the source port of one of their old connections are sent to them again`,
      why: 'kube-proxy keeps a terminating endpoint at weight 0 until its connections end (graceful termination); weight 0 stops the scheduler, but on kernels before 5.9 kube-proxy sets net.ipv4.vs.conn_reuse_mode=0, so a new SYN matching an old connection entry (TIME_WAIT included) reuses it and its real server',
      fix: 'run nodes on kernel 5.9 or later (kube-proxy then leaves conn_reuse_mode=1 and reschedules such SYNs; kubernetes#93297), give clients fresh source ports, or move to nftables mode, where conntrack alone pins flows',
      details: { virtualServer: `${vs.address}:${vs.port}/${vs.protocol}`, weightZero: zero },
    })
  }
  return out
}

/** The ipvs-only findings of a node whose Proxier runs mode 'ipvs' (none in another mode). */
export function ipvsFindings(node: string, proxier: Proxier, probe: Prober): Finding[] {
  if (proxier.ipvs === undefined) return []
  const state = proxier.ipvsState()
  const external = new Set<string>()
  for (const s of proxier.state.servicePorts()) {
    for (const ip of [...s.info.externalIPs, ...s.info.loadBalancerVIPs]) external.add(ip)
  }
  // Read the connection counters before the probe: its packet moves the Proxier's clock on.
  const draining = drainingServers(node, proxier, state)
  const out: Finding[] = [deprecation(node)]
  const filter = filterChain(node, state, probe)
  if (filter !== undefined) out.push(filter)
  const arp = strictArp(node, state, external)
  if (arp !== undefined) out.push(arp)
  out.push(...draining)
  return out
}

/**
 * The model's findings as an IPVS node sees them: under externalTrafficPolicy Local with no
 * local endpoint, IPVS mode forwards to the cluster's endpoints (kubernetes#97081) where the
 * other modes drop, so "dropped" becomes "forwarded elsewhere" when the probe shows it.
 */
export function reviseForIpvs(findings: readonly Finding[]): Finding[] {
  return findings.map((f) => {
    if (f.code !== 'no-local-endpoints-external' || f.probe?.result.action !== 'dnat') return f
    const to = f.probe.result.endpoint
    return {
      ...f,
      code: 'ipvs-local-policy-fallback',
      severity: 'warning',
      what: `external connections arriving at this node are forwarded to an endpoint on another node (${to}) although externalTrafficPolicy is Local`,
      why: 'with no endpoint on the node, kube-proxy\'s IPVS proxier gives the Local-policy virtual server the cluster\'s endpoints as real servers (kubernetes#97081) where the iptables and nftables modes drop; the health check node port still reports the node as having no endpoint',
      fix: 'send external traffic only to nodes that run an endpoint (a cloud load balancer does, through the health check); after moving to nftables or iptables mode these connections are dropped: `svcplane compare --from ipvs --to nftables` lists them',
    }
  })
}
