// Probe packets: the doctor asks the model what happens to a packet from a pod, from the node
// itself and from outside, to a frontend. On a Proxier the doctor built for itself, probes are
// real decisions (explain()); on someone else's running Proxier they are the model's trace of
// a first packet, which tracks nothing (a probe must not leave flows in a live conntrack).
import { parseCidr } from '../util/address.js'
import type { ProxyModelView } from '../proxy/model.js'
import { joinHostPort } from '../util/host-port.js'
import { checkPacket, dnatResult, type Packet, type RouteResult } from '../proxy/packet.js'
import type { Proxier } from '../modes/index.js'
import { classifySource, traceKubeProxy } from '../proxy/trace.js'
import type { Probe } from './findings.js'

/** Documentation addresses (RFC 5737 / RFC 3849): an external client nobody owns. */
export const DEFAULT_EXTERNAL_CLIENT = { IPv4: '203.0.113.10', IPv6: '2001:db8:ffff::10' }

export type Prober = (node: string, packet: Packet) => Probe

/** Probes through explain() on a Proxier owned by the doctor: flows and affinity are recorded there. */
export function ownedProber(proxier: Proxier): Prober {
  let sport = 40000
  return (node, packet) => {
    const p = { ...packet, sport: packet.sport === 0 ? sport++ : packet.sport }
    const e = proxier.explain(p)
    return { node, packet: p, result: e.result, steps: e.steps.map((s) => `[${s.kind}] ${s.text}`) }
  }
}

/** Probes through the model's trace only: nothing is tracked in the Proxier's conntrack. */
export function tracingProber(model: ProxyModelView): Prober {
  return (node, packet) => {
    const p = { ...packet, sport: packet.sport === 0 ? 40000 : packet.sport }
    const checked = checkPacket(p)
    const trace = traceKubeProxy(model, checked, classifySource(model, checked))
    let result: RouteResult
    const name = trace.state?.info.name ?? ''
    if (trace.action === 'dnat') {
      const first = trace.candidates[0]
      result = first ? dnatResult(name, first.ip, first.port, trace.masquerade) : { action: 'dnat', servicePort: name, endpoint: '', address: '', port: 0, masquerade: trace.masquerade }
    } else if (trace.action === 'accept') {
      result = { action: 'accept' }
    } else {
      result = { action: trace.action, servicePort: name, reason: trace.reason ?? 'no-endpoints' }
    }
    const steps = trace.steps.map((s) => `[${s.kind}] ${s.text}`)
    return { node, packet: p, result, steps }
  }
}

/**
 * An address inside `cidr` that is none of `avoid` (a pod that is not an endpoint): the
 * network address plus 200, 201, ... (or plus 1, 2, ... in small networks).
 */
export function addressInCidr(cidr: string, avoid: ReadonlySet<string>): string | undefined {
  const c = parseCidr(cidr)
  if (c === undefined) return undefined
  const hostBits = 128 - c.bits
  const start = hostBits >= 8 ? 200 : 1
  const limit = hostBits >= 31 ? 2 ** 30 : 2 ** hostBits - 1
  for (let offset = start; offset < Math.min(limit, start + 1000); offset++) {
    const b = new Uint8Array(c.bytes)
    let carry = offset
    for (let i = 15; i >= 0 && carry > 0; i--) {
      const v = b[i] + (carry & 0xff)
      b[i] = v & 0xff
      carry = (carry >>> 8) + (v >> 8)
    }
    const text = formatBytes(b, c.family)
    if (!avoid.has(text)) return text
  }
  return undefined
}

function formatBytes(b: Uint8Array, family: 4 | 6): string {
  if (family === 4) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16))
  // Compress the longest run of zero groups, as canonical IPv6 text does.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i]
    i = j
  }
  if (best === -1) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}



export function describeProbe(p: Probe): string {
  const pk = p.packet
  const r = p.result
  let verdict: string
  if (r.action === 'dnat') verdict = `DNAT to ${r.endpoint}${r.masquerade ? ', masqueraded' : ''}`
  else if (r.action === 'accept') verdict = 'ACCEPT (no service answers there)'
  else verdict = `${r.action.toUpperCase()} (${r.reason})`
  return `${pk.protocol} ${joinHostPort(pk.src, pk.sport)} -> ${joinHostPort(pk.dst, pk.dport)}${pk.hook === 'output' ? ' (from the node)' : ''} on ${p.node}: ${verdict}`
}
