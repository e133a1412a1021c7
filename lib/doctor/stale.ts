// Stale flows: tracked connections whose endpoint no longer takes new connections, because it
// is terminating or was deleted (after a rolling update, long-lived connections keep going to
// the old pods; kube-proxy clears only UDP flows). Found in a running Proxier's conntrack (either
// mode) or in a `conntrack -L` listing, and cleared.
import type { ProxyModelView, ServicePortState } from '../proxy/model.js'
import type { Proxier } from '../modes/index.js'
import { joinHostPort } from '../util/host-port.js'
import { SvcplaneTypeError } from '../errors.js'

export type StaleWhy = 'terminating' | 'deleted' | 'not-in-set'

export interface StaleFlow {
  servicePort: string
  protocol: string
  /** Client address and port. */
  src: string
  sport: number
  /** The service address and port the client connected to. */
  dst: string
  dport: number
  /** The endpoint the flow is pinned to, "IP:port", and its parts. */
  endpoint: string
  endpointAddress: string
  endpointPort: number
  /** terminating: still listed, but terminating; deleted: no longer listed; not-in-set: listed, but not in the set new connections use (not ready). */
  why: StaleWhy
  state: string
  /** Seconds left before the flow expires. */
  expiresIn: number
}

/** One flow of a conntrack table, whatever holds it. */
export interface TrackedFlow {
  protocol: string
  src: string
  sport: number
  dst: string
  dport: number
  /** Reply source: the endpoint the flow was DNATed to. */
  endpointAddress: string
  endpointPort: number
  state: string
  expiresIn: number
}

/** Classifies one flow against the model: undefined when it is fine (or not service traffic). */
export function classifyFlow(model: ProxyModelView, f: TrackedFlow): StaleFlow | undefined {
  const hit = model.lookupFrontend(f.dst, f.dport, f.protocol.toUpperCase())
  if (hit === undefined) return undefined
  const endpoint = joinHostPort(f.endpointAddress, f.endpointPort)
  const why = staleness(hit.state, endpoint)
  if (why === undefined) return undefined
  return {
    servicePort: hit.state.info.name,
    protocol: hit.state.info.protocol,
    src: f.src,
    sport: f.sport,
    dst: f.dst,
    dport: f.dport,
    endpoint,
    endpointAddress: f.endpointAddress,
    endpointPort: f.endpointPort,
    why,
    state: f.state,
    expiresIn: f.expiresIn,
  }
}

function staleness(s: ServicePortState, endpoint: string): StaleWhy | undefined {
  const listed = s.endpoints.find((e) => e.endpoint === endpoint)
  if (listed === undefined) return 'deleted'
  if (s.categorized.allReachable.some((e) => e.endpoint === endpoint)) return undefined
  return listed.terminating ? 'terminating' : 'not-in-set'
}

/** Every flow in a Proxier's conntrack (native dataplane or the iptables mode's table). */
export function trackedFlows(proxier: Proxier, now = proxier.options.clock()): TrackedFlow[] {
  const dp = proxier.dataplane
  if (dp !== undefined) {
    return [...dp.flows()].map((f) => ({
      protocol: f.protocol.toUpperCase(),
      src: f.src,
      sport: f.sport,
      dst: f.dst,
      dport: f.dport,
      endpointAddress: f.backendAddress,
      endpointPort: f.backendPort,
      state: f.state,
      expiresIn: Math.max(0, Math.floor(f.expires - now)),
    }))
  }
  const ipt = proxier.iptables
  if (ipt === undefined) return []
  return ipt.flows().map((f) => {
    const [protocol, src, sport, dst, dport] = f.orig.split('|')
    return {
      protocol,
      src,
      sport: Number(sport),
      dst,
      dport: Number(dport),
      endpointAddress: f.endpointAddress,
      endpointPort: f.endpointPort,
      state: f.state,
      expiresIn: Math.max(0, Math.floor(f.expires - now)),
    }
  })
}

/** Flows of `proxier` pinned to endpoints that take no new connections. */
export function staleFlows(proxier: Proxier, now = proxier.options.clock()): StaleFlow[] {
  return trackedFlows(proxier, now)
    .map((f) => classifyFlow(proxier.state, f))
    .filter((f): f is StaleFlow => f !== undefined)
}

export interface ClearResult {
  /** The stale flows found (before clearing). */
  flows: StaleFlow[]
  /** Conntrack entries removed. */
  cleared: number
}

/**
 * Removes the stale flows of a running Proxier (those `select` keeps, by default all), so the
 * clients' next packets open new connections to current endpoints. This cuts those connections:
 * the clients see a reset or a timeout and must reconnect.
 */
export function clearStaleFlows(proxier: Proxier, select: (f: StaleFlow) => boolean = () => true, now = proxier.options.clock()): ClearResult {
  const flows = staleFlows(proxier, now).filter(select)
  const key = (p: string, src: string, sport: number, dst: string, dport: number) => `${p.toUpperCase()}|${src}|${sport}|${dst}|${dport}`
  const doomed = new Set(flows.map((f) => key(f.protocol, f.src, f.sport, f.dst, f.dport)))
  let cleared = 0
  const dp = proxier.dataplane
  if (dp !== undefined) {
    // The dataplane deletes flows per backend: a backend is cleared when every one of its
    // flows is stale, which is the case for a terminating backend (it is stale as a whole).
    const byBackend = new Map<number, { stale: number; all: number }>()
    for (const f of dp.flows()) {
      let c = byBackend.get(f.backendId)
      if (c === undefined) byBackend.set(f.backendId, (c = { stale: 0, all: 0 }))
      c.all++
      if (doomed.has(key(f.protocol, f.src, f.sport, f.dst, f.dport))) c.stale++
    }
    for (const [id, c] of byBackend) if (c.stale > 0 && c.stale === c.all) cleared += dp.deleteFlowsByBackend(id)
  } else if (proxier.iptables !== undefined) {
    cleared = proxier.iptables.conntrack.removeWhere((f) => doomed.has(f.orig))
  }
  return { flows, cleared }
}

/** kube-proxy-style `conntrack -D` commands that clear the flows on a real node, one per (service address, endpoint). */
export function conntrackDeleteCommands(flows: readonly StaleFlow[]): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const f of flows) {
    const cmd = `conntrack -D -p ${f.protocol.toLowerCase()} --orig-dst ${f.dst} --orig-port-dst ${f.dport} --dst-nat ${f.endpointAddress}`
    if (!seen.has(cmd)) {
      seen.add(cmd)
      out.push(cmd)
    }
  }
  return out
}

/**
 * Parses `conntrack -L` output (also `svcplane dump --format conntrack`): per line the protocol,
 * the original tuple, the reply tuple (whose source is the endpoint after DNAT) and the timeout.
 * Lines that are not flows are skipped.
 */
export function parseConntrackList(text: string): TrackedFlow[] {
  if (typeof text !== 'string') throw new SvcplaneTypeError(`a conntrack listing must be text, got ${typeof text}`)
  const out: TrackedFlow[] = []
  let firstOther: string | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('conntrack ') || line.includes('flow entries')) continue
    firstOther ??= line
    const words = line.split(/\s+/)
    // "ipv4 2 tcp 6 ..." (/proc/net/nf_conntrack) or "tcp 6 ..." (conntrack -L).
    const start = words[0] === 'ipv4' || words[0] === 'ipv6' ? 2 : 0
    const protocol = words[start]?.toUpperCase()
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') continue
    const timeout = Number(words[start + 2])
    const state = /^[A-Z_]+$/.test(words[start + 3] ?? '') ? words[start + 3] : protocol
    const kv: Record<string, string[]> = {}
    for (const w of words) {
      const eq = w.indexOf('=')
      if (eq <= 0) continue
      const k = w.slice(0, eq)
      ;(kv[k] ??= []).push(w.slice(eq + 1))
    }
    if (!kv.src || kv.src.length < 2 || !kv.dst || !kv.sport || kv.sport.length < 2 || !kv.dport) continue
    out.push({
      protocol,
      src: kv.src[0],
      sport: Number(kv.sport[0]),
      dst: kv.dst[0],
      dport: Number(kv.dport[0]),
      endpointAddress: kv.src[1],
      endpointPort: Number(kv.sport[1]),
      state,
      expiresIn: Number.isFinite(timeout) ? timeout : 0,
    })
  }
  // Text with lines and not one flow in it is something else (a wrong file), not an empty table.
  if (out.length === 0 && firstOther !== undefined) {
    const shown = firstOther.length > 60 ? `${firstOther.slice(0, 60)}...` : firstOther
    throw Object.assign(new SvcplaneTypeError(`not a conntrack -L listing: no line is a TCP/UDP/SCTP flow (the first reads ${JSON.stringify(shown)})`), { code: 'INVALID' })
  }
  return out
}
