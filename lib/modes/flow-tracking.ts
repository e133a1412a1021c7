// Conntrack in front of a rule-walking mode (iptables, nftables), as the kernel has it: an
// established flow keeps its endpoint without walking the rules; a new flow is tracked with
// the endpoint the rules chose; kube-proxy's UDP cleanup runs when a Service changes.
import { Conntrack, flowKey } from '../iptables/netfilter/conntrack.js'
import type { ServiceDiff } from '../proxy/model.js'
import { dnatResult, type CheckedPacket } from '../proxy/packet.js'
import { joinHostPort } from '../util/host-port.js'
import type { ModeDecision } from '../proxy/proxy-mode.js'
import type { KubeProxyTrace } from '../proxy/trace.js'

/** kube-proxy's conntrack reconciler: UDP flows whose endpoint stopped serving (or whose port went) are removed. */
export function removeUnservedUdpFlows(conntrack: Conntrack, diff: ServiceDiff): number {
  let removed = 0
  for (const { after } of diff.changed) {
    if (after.info.protocol !== 'UDP') continue
    const serving = new Set(after.endpoints.filter((e) => e.serving).map((e) => e.endpoint))
    removed += conntrack.removeForServicePort(after.info.key, (f) => !serving.has(f.endpoint))
  }
  for (const before of diff.removed) {
    if (before.info.protocol === 'UDP') removed += conntrack.removeForServicePort(before.info.key, () => true)
  }
  return removed
}

/** The decision for a packet of a tracked flow, or undefined for a new one. `rules` names what a new flow walks. */
export function trackedDecision(conntrack: Conntrack, p: CheckedPacket, now: number, rules: string): ModeDecision | undefined {
  const hit = conntrack.lookup(flowKey(p.protocol, p.src, p.sport, p.dst, p.dport), now)
  if (hit === undefined) return undefined
  const f = hit.flow
  conntrack.update(f, hit.reply, p.tcpFlags ?? 0, now)
  if (hit.reply) {
    return { result: { action: 'accept' }, steps: [{ kind: 'conntrack', text: `reply of a tracked flow, source rewritten to ${f.frontend}` }] }
  }
  return {
    result: dnatResult(f.servicePort, f.endpointAddress, f.endpointPort, f.masquerade),
    steps: [{ kind: 'conntrack', text: `established flow: keeps ${f.endpoint} (conntrack; ${rules} see only a connection's first packet)` }],
  }
}

/** Tracks a new flow DNATed to address:port. */
export function trackNewFlow(
  conntrack: Conntrack, p: CheckedPacket, now: number, trace: KubeProxyTrace,
  chosen: { servicePort: string; address: string; port: number; masquerade: boolean },
): void {
  const family = p.src.includes(':') ? 'IPv6' : 'IPv4'
  const state = trace.state?.info.name === chosen.servicePort ? trace.state : undefined
  conntrack.create({
    orig: flowKey(p.protocol, p.src, p.sport, p.dst, p.dport),
    reply: flowKey(p.protocol, chosen.address, chosen.port, p.src, p.sport),
    protocol: p.protocol,
    servicePortKey: state?.info.key ?? `${chosen.servicePort}/${p.protocol}/${family}`,
    servicePort: chosen.servicePort,
    frontend: joinHostPort(p.dst, p.dport),
    endpoint: joinHostPort(chosen.address, chosen.port),
    endpointAddress: chosen.address,
    endpointPort: chosen.port,
    masquerade: chosen.masquerade,
  }, p.tcpFlags ?? 0, now)
}
