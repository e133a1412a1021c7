// Two proxy modes side by side on one cluster: the same objects programmed into a Proxier of
// each mode, the same probe packets sent to both, and every probe they decide differently,
// with each mode's own reason. What a user leaving IPVS or iptables needs to know before switching.
import { Proxier, PROXY_MODE_NAMES, isProxyMode, type ProxierOptions, type ProxyMode } from '../modes/index.js'
import type { Packet, RouteResult } from '../proxy/packet.js'
import type { Step } from '../proxy/trace.js'
import { show } from '../util/show.js'
import { probesFor, type ProbeClass } from './probes.js'
import { SvcplaneTypeError } from '../errors.js'

export interface CompareOptions {
  from: ProxyMode
  to: ProxyMode
  /** The Proxier options both modes share (mode sections included); `mode` is set per side. */
  proxier: Omit<ProxierOptions, 'mode'>
  /** Virtual time of the probes (seconds). Default 1. */
  now?: number
}

export interface ModeAnswer {
  result: RouteResult
  /** The mode's last steps, its own words for the decision. */
  why: string
}

export interface ModeDifference {
  probe: ProbeClass
  servicePort: string
  target: string
  packet: Packet
  from: ModeAnswer
  to: ModeAnswer
}

export interface ModeComparison {
  from: ProxyMode
  to: ProxyMode
  servicePorts: number
  probes: number
  /** Probes per class. */
  classes: Partial<Record<ProbeClass, number>>
  differences: ModeDifference[]
}

/** Same verdict, service port, masquerading and refusal reason. The endpoint is a random pick in every mode, so it is not compared. */
function sameDecision(a: RouteResult, b: RouteResult): boolean {
  if (a.action !== b.action) return false
  if (a.action === 'dnat' && b.action === 'dnat') return a.servicePort === b.servicePort && a.masquerade === b.masquerade
  if ((a.action === 'reject' || a.action === 'drop') && (b.action === 'reject' || b.action === 'drop')) return a.servicePort === b.servicePort && a.reason === b.reason
  return true
}

function why(steps: Step[]): string {
  return steps.slice(-2).map((s) => s.text).join('; ')
}

function checkMode(field: string, v: unknown): ProxyMode {
  if (!isProxyMode(v)) throw new SvcplaneTypeError(`compareModes: ${field} must be one of ${PROXY_MODE_NAMES.map((m) => JSON.stringify(m)).join(', ')}, got ${show(v)}`)
  return v
}

/**
 * Programs `objects` (anything Proxier.applyList takes) into a Proxier of each mode and sends
 * both the probes of every service port; returns where they decide differently.
 */
export function compareModes(objects: unknown, options: CompareOptions): ModeComparison {
  if (typeof options !== 'object' || options === null) throw new SvcplaneTypeError(`compareModes: options must be an object, got ${show(options)}`)
  const from = checkMode('from', options.from)
  const to = checkMode('to', options.to)
  const now = options.now ?? 1
  const sides = [from, to].map((mode) => {
    const p = new Proxier({ ...options.proxier, mode } as ProxierOptions)
    p.applyList(objects)
    const summary = p.sync()
    if (summary.errors.length > 0) throw summary.errors[0]!.error
    return p
  })
  const [a, b] = sides as [Proxier, Proxier]
  const probes = probesFor(a.state, { podCIDRs: a.options.podCIDRs, serviceCIDRs: a.options.serviceCIDRs })
  const classes: Partial<Record<ProbeClass, number>> = {}
  const differences: ModeDifference[] = []
  let sport = 20000
  try {
    for (const probe of probes) {
      classes[probe.probe] = (classes[probe.probe] ?? 0) + 1
      // A fresh source port per probe: every probe is a new connection in both modes.
      const packet: Packet = { ...probe.packet, sport: sport++, now }
      if (sport > 65000) sport = 20000
      const ea = a.explain(packet)
      const eb = b.explain(packet)
      if (sameDecision(ea.result, eb.result)) continue
      differences.push({
        probe: probe.probe,
        servicePort: probe.servicePort,
        target: probe.target,
        packet,
        from: { result: ea.result, why: why(ea.steps) },
        to: { result: eb.result, why: why(eb.steps) },
      })
    }
  } finally {
    for (const p of sides) p.dataplane?.destroy()
  }
  return { from, to, servicePorts: a.state.servicePorts().length, probes: probes.length, classes, differences }
}
