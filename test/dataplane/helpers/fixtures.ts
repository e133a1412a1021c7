// Shared builders for the Dataplane tests: small fixed-seed instances, frontends, flows, and a
// full snapshot of every map so a refused call can be shown to have changed nothing.
import { seededRandom } from '../../../lib/util/random.js'
import { Dataplane } from '../../../lib/index.js'
import type { DataplaneOptions, Flow, FrontendSpec, Protocol, Scope } from '../../../lib/index.js'

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
