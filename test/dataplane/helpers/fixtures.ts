// Shared builders for the Dataplane tests: small fixed-seed instances, frontends, flows, and a
// full snapshot of every map so a refused call can be shown to have changed nothing.
import { seededRandom } from '../../../lib/util/random.js'
import type { Test } from 'tap'
import { Dataplane, DecisionBatch, FlowBatch } from '../../../lib/index.js'
import type { DataplaneOptions, Decision, Flow, FrontendSpec, Protocol, Scope } from '../../../lib/index.js'

export const CLIENT = '192.168.1.10'
export const VIP = '172.30.0.10'

/** Small maps and fixed seeds: every test is deterministic and cheap to create. */
export function makeDataplane(options: DataplaneOptions = {}): Dataplane {
  return new Dataplane({
    seed: 0x1234n,
    rngSeed: 0x5678n,
    ...options,
    capacity: { services: 64, frontends: 256, backends: 1024, conntrack: 4096, affinity: 4096, ...(options.capacity ?? {}) },
  })
}

export function frontend(address: string, port = 80, protocol: Protocol = 'TCP', scope: Scope = 'external'): FrontendSpec {
  return { address, port, protocol, scope }
}

/** Backends 1..n at 10.1.0.<i>:8080 (addresses ascend with ids, so canonical order = id order). */
export function addBackends(dp: Dataplane, n: number, first = 1, weights?: number[]): number[] {
  const ids: number[] = []
  for (let k = 0; k < n; k++) {
    const id = first + k
    dp.upsertBackend({ id, address: `10.1.${id >> 8}.${id & 255}`, port: 8080, weight: weights?.[k] ?? 1 })
    ids.push(id)
  }
  return ids
}

/** A client packet towards the VIP (original direction). */
export function toVip(sport: number, extra: Partial<Flow> = {}): Flow {
  return { src: CLIENT, sport, dst: VIP, dport: 80, protocol: 'TCP', ...extra }
}

/** Decision i of a batch, as decide() would have returned it. */
export function fromBatch(out: DecisionBatch, i: number): Decision {
  const verdict = out.verdict(i)
  return {
    verdict,
    reason: out.reason(i),
    serviceId: out.serviceId(i),
    backendId: out.backendId(i),
    address: verdict === 'forward' || verdict === 'reply' ? out.address(i) : '',
    port: out.port(i),
    established: out.established(i),
    affinityHit: out.affinityHit(i),
  }
}

/** The flows a batch opened (new, forwarded), each with the reply tuple its backend answers with. */
export function openedFlows(flows: Flow[], decisions: Decision[]): Array<{ orig: Flow; reply: Flow }> {
  return flows.flatMap((f, i) => {
    const d = decisions[i]
    return d.verdict === 'forward' && !d.established ? [{ orig: f, reply: { src: d.address, sport: d.port, dst: f.src, dport: f.sport, protocol: f.protocol } }] : []
  })
}

/** '' when every decision equals the expected one, else where and how they first differ. */
function firstDifference(flows: Flow[], got: Decision[], expected: Decision[]): string {
  const i = got.findIndex((d, k) => JSON.stringify(d) !== JSON.stringify(expected[k]))
  return i < 0 ? '' : `first difference at ${i}: ${JSON.stringify(flows[i])} -> ${JSON.stringify(got[i])} vs ${JSON.stringify(expected[i])}`
}

/**
 * Decides `flows` one by one on `single` and as one batch on `batched` (an out batch `spare`
 * larger than needed), checks that the decisions and then the maps are the same, and returns
 * decide()'s decisions.
 */
export function decideBoth(t: Test, single: Dataplane, batched: Dataplane, flows: Flow[], now: number, spare = 0): Decision[] {
  const n = flows.length
  const expected = flows.map((f) => single.decide(f, now))
  const out = new DecisionBatch(n + spare)
  t.equal(batched.decideBatch(FlowBatch.from(flows), now, out), n, `n = ${n}: returns the count`)
  const got = flows.map((_, i) => fromBatch(out, i))
  t.equal(firstDifference(flows, got, expected), '', `n = ${n} at t = ${now}: every decision equal`)
  t.strictSame(snapshot(batched), snapshot(single), `n = ${n}: the maps are in the same state`)
  return expected
}

/** Everything observable about a dataplane's state. */
export function snapshot(dp: Dataplane) {
  return {
    services: dp.services(),
    backends: dp.backends(),
    frontends: dp.frontends(),
    revnat: dp.revnat(),
    affinity: dp.affinity(),
    flows: [...dp.flows()],
    maps: dp.maps(),
    counters: dp.counters(),
    timeouts: dp.getTimeouts(),
  }
}

export function countBy<T>(items: Iterable<T>): Map<T, number> {
  const m = new Map<T, number>()
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1)
  return m
}

/** A deterministic PRNG for generating test inputs (the library's mulberry32). */
export const prng = seededRandom
