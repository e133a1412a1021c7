// Backend selection, statistically over many flows with fixed seeds: random and Maglev spread
// evenly and honour weights; Maglev is consistent (small remaps on removal, one table for every
// instance with the same backends); the IPVS schedulers follow their definitions.
import t from 'tap'
import type { Test } from 'tap'
import { Dataplane } from '../../lib/index.js'
import type { DataplaneOptions, SchedulerName } from '../../lib/index.js'
import { VIP, addBackends, countBy, frontend, makeDataplane } from './helpers/fixtures.js'

const M = 16381

/** A distinct client address per index. */
const client = (i: number) => `10.${100 + ((i >> 16) & 127)}.${(i >> 8) & 255}.${i & 255}`

function service(scheduler: SchedulerName, n: number, options: DataplaneOptions = {}, weights?: number[]): Dataplane {
  const dp = makeDataplane({ capacity: { conntrack: 65536 }, ...options })
  const ids = addBackends(dp, n, 1, weights)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: ids, scheduler })
  return dp
}

/** Backend ids chosen for `count` new flows (distinct clients and ports). */
function spread(dp: Dataplane, count: number, now = 1): Map<number, number> {
  const picks: number[] = []
  for (let i = 0; i < count; i++) {
    const d = dp.decide({ src: client(i), sport: 1024 + (i % 50000), dst: VIP, dport: 80, protocol: 'TCP' }, now)
    if (d.verdict !== 'forward') throw new Error(`flow ${i}: ${d.verdict} ${d.reason}`)
    picks.push(d.backendId)
  }
  return countBy(picks)
}

/** Every share within `tolerance` (relative) of weight / sum(weights). */
function assertShares(t: Test, counts: Map<number, number>, weights: number[], tolerance: number, what: string) {
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  const sum = weights.reduce((a, b) => a + b, 0)
  weights.forEach((w, i) => {
    const expected = (total * w) / sum
    const got = counts.get(i + 1) ?? 0
    t.ok(Math.abs(got - expected) <= expected * tolerance, `${what}: backend ${i + 1} got ${got}, expected ${expected.toFixed(0)} ± ${(tolerance * 100).toFixed(0)}%`)
  })
  t.equal(counts.size, weights.length, `${what}: no other backend chosen`)
}

const tableCounts = (table: Uint32Array) => countBy(table)

t.test('random spreads new flows evenly', async (t) => {
  assertShares(t, spread(service('random', 4), 40000), [1, 1, 1, 1], 0.03, 'random, 4 backends')
  assertShares(t, spread(service('random', 10), 50000), Array(10).fill(1), 0.05, 'random, 10 backends')
})

t.test('random honours weights', async (t) => {
  assertShares(t, spread(service('random', 4, {}, [1, 2, 3, 4]), 40000), [1, 2, 3, 4], 0.04, 'random, weights 1:2:3:4')
  assertShares(t, spread(service('random', 2, {}, [1, 9]), 20000), [1, 9], 0.05, 'random, weights 1:9')
})

t.test('random depends on rngSeed, and only on it', async (t) => {
  const picks = (rngSeed: bigint, seed: bigint) => {
    const dp = service('random', 8, { rngSeed, seed })
    return Array.from({ length: 200 }, (_, i) => dp.decide({ src: client(i), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  }
  t.strictSame(picks(7n, 1n), picks(7n, 2n), 'same rngSeed: same choices')
  t.notSame(picks(7n, 1n), picks(8n, 1n), 'another rngSeed: other choices')
})

t.test('Maglev: every backend owns M/N table slots (M = 16381, N <= 100)', async (t) => {
  for (const n of [3, 10, 100]) {
    const dp = service('maglev', n, { maglevTableSize: M })
    const table = dp.maglevTable(1)!
    t.equal(table.length, M)
    const counts = tableCounts(table)
    t.equal(counts.size, n, `${n} backends all present`)
    const lo = Math.floor(M / n)
    for (const [id, c] of counts) t.ok(c === lo || c === lo + 1, `${n} backends: backend ${id} owns ${c} slots (${lo} or ${lo + 1})`)
  }
})

t.test('Maglev spreads flows evenly', async (t) => {
  assertShares(t, spread(service('maglev', 10, { maglevTableSize: M }), 50000), Array(10).fill(1), 0.05, 'maglev, 10 backends')
})

t.test('Maglev honours weights, in the table and in the flows', async (t) => {
  const weights = [1, 2, 3, 4]
  const dp = service('maglev', 4, { maglevTableSize: M }, weights)
  const counts = tableCounts(dp.maglevTable(1)!)
  weights.forEach((w, i) => t.ok(Math.abs(counts.get(i + 1)! - (M * w) / 10) <= 2, `backend ${i + 1} owns ${counts.get(i + 1)} slots of ${M}`))
  assertShares(t, spread(dp, 40000), weights, 0.04, 'maglev, weights 1:2:3:4')
})

t.test('Maglev: removing one of N backends remaps about 1/N of the slots and almost none of the others', async (t) => {
  for (const n of [10, 100]) {
    const dp = service('maglev', n, { maglevTableSize: M })
    const before = dp.maglevTable(1)!
    const gone = 3
    dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: Array.from({ length: n }, (_, i) => i + 1).filter((id) => id !== gone), scheduler: 'maglev' })
    const after = dp.maglevTable(1)!
    let changed = 0
    let survivors = 0
    let survivorsMoved = 0
    for (let i = 0; i < M; i++) {
      if (before[i] !== after[i]) changed++
      if (before[i] !== gone) {
        survivors++
        if (before[i] !== after[i]) survivorsMoved++
      }
    }
    t.notOk(after.includes(gone), `${n}: the removed backend owns no slot`)
    t.ok(changed / M >= 1 / n && changed / M <= 1 / n + 0.015, `${n}: ${((100 * changed) / M).toFixed(2)}% of slots changed (1/N = ${(100 / n).toFixed(1)}%)`)
    t.ok(survivorsMoved / survivors < 0.015, `${n}: ${((100 * survivorsMoved) / survivors).toFixed(2)}% of the survivors' slots moved`)
  }
})

t.test('Maglev: flows of surviving backends stay put when one backend goes (across instances)', async (t) => {
  // Two nodes: one still has backend 3, the other already removed it. Same maglevSeed (the
  // default), different hash and RNG seeds.
  const a = service('maglev', 10, { seed: 11n, rngSeed: 12n, maglevTableSize: M })
  const b = makeDataplane({ seed: 21n, rngSeed: 22n, maglevTableSize: M, capacity: { conntrack: 65536 } })
  addBackends(b, 10)
  b.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 4, 5, 6, 7, 8, 9, 10], scheduler: 'maglev' })
  let kept = 0
  let moved = 0
  let ofGone = 0
  for (let i = 0; i < 10000; i++) {
    const f = { src: client(i), sport: 20000 + i, dst: VIP, dport: 80, protocol: 'TCP' as const }
    const da = a.decide(f, 1)
    const db = b.decide(f, 1)
    if (da.backendId === 3) ofGone++
    else if (da.backendId === db.backendId) kept++
    else moved++
  }
  t.ok(ofGone > 800 && ofGone < 1200, `about 1/10 of the flows were on the removed backend (${ofGone})`)
  t.ok(moved / (kept + moved) < 0.015, `${moved} of ${kept + moved} flows of surviving backends moved`)
})

t.test('Maglev: two instances with the same backends build the same table', async (t) => {
  const build = (seed: bigint, order: number[], maglevSeed?: bigint) => {
    const dp = new Dataplane({ seed, rngSeed: seed + 1n, maglevTableSize: M, ...(maglevSeed !== undefined ? { maglevSeed } : {}) })
    // Backends upserted in a different order, listed in a different order; same id <-> address.
    for (const id of order) dp.upsertBackend({ id, address: `10.2.${id}.${(id * 7) % 256}`, port: 8000 + (id % 3), weight: 1 + (id % 4) })
    dp.upsertService({ id: 9, frontends: [frontend(VIP)], backends: order, scheduler: 'maglev' })
    const byId = new Map(dp.backends().map((b) => [b.id, `${b.address}:${b.port}`]))
    return { dp, table: [...dp.maglevTable(9)!].map((id) => byId.get(id)!) }
  }
  const ids = Array.from({ length: 40 }, (_, i) => i + 1)
  const a = build(1n, ids)
  const b = build(2n, [...ids].reverse())
  const c = build(3n, [...ids.slice(20), ...ids.slice(0, 20)])
  t.equal(a.table.length, M)
  t.ok(a.table.every((x, i) => x === b.table[i]), 'seed 1 and seed 2 (reversed order): identical tables')
  t.ok(a.table.every((x, i) => x === c.table[i]), 'seed 1 and seed 3 (rotated order): identical tables')
  // The comparison can tell tables apart: another maglevSeed builds another table.
  const other = build(1n, ids, 0x1234567n)
  const differ = other.table.filter((x, i) => x !== a.table[i]).length
  t.ok(differ > M / 2, `another maglevSeed changes ${differ} of ${M} slots`)
  // And the same flows reach the same backend address on both instances.
  for (let i = 0; i < 2000; i++) {
    const f = { src: client(i), sport: 3000 + i, dst: VIP, dport: 80, protocol: 'TCP' as const }
    const da = a.dp.decide(f, 1)
    const db = b.dp.decide(f, 1)
    if (da.address !== db.address || da.port !== db.port) {
      t.fail(`flow ${i}: ${da.address}:${da.port} vs ${db.address}:${db.port}`)
      return
    }
  }
  t.pass('2000 flows: same backend address on both instances')
})

t.test('Maglev: instances that number the same backends differently still agree on every flow', async (t) => {
  const build = (seed: bigint, idOf: (k: number) => number) => {
    const dp = new Dataplane({ seed, rngSeed: seed, maglevTableSize: 1009 })
    const ids: number[] = []
    for (let k = 0; k < 6; k++) {
      dp.upsertBackend({ id: idOf(k), address: `10.3.0.${10 + k}`, port: 8080, weight: k + 1 })
      ids.push(idOf(k))
    }
    dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: ids, scheduler: 'maglev' })
    return dp
  }
  const a = build(1n, (k) => k + 1)
  const b = build(2n, (k) => 100 - k) // ids descend while addresses ascend
  for (let i = 0; i < 3000; i++) {
    const f = { src: client(i), sport: 4000 + i, dst: VIP, dport: 80, protocol: 'TCP' as const }
    const da = a.decide(f, 1)
    const db = b.decide(f, 1)
    if (da.address !== db.address) {
      t.fail(`flow ${i}: ${da.address} vs ${db.address}`)
      return
    }
  }
  t.pass('3000 flows agree')
})

t.test('maglevTable() names the backends that own the slots, whatever the id order', async (t) => {
  // Ids descend while addresses ascend: the table is built in address order, the dump must
  // still name each slot's backend by id.
  const dp = new Dataplane({ seed: 1, rngSeed: 1, maglevTableSize: 1009 })
  dp.upsertBackend({ id: 1, address: '10.0.0.2', port: 8080, weight: 3 })
  dp.upsertBackend({ id: 2, address: '10.0.0.1', port: 8080, weight: 1 })
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2], scheduler: 'maglev' })
  const slots = tableCounts(dp.maglevTable(1)!)
  const flows = spread(dp, 4000)
  t.ok(flows.get(1)! > 2 * flows.get(2)!, `the weight-3 backend takes most flows (${flows.get(1)} vs ${flows.get(2)})`)
  t.ok(Math.abs(slots.get(1)! - (1009 * 3) / 4) <= 2, `... and the table says it owns 3/4 of the slots (${slots.get(1)} of 1009)`)
  t.equal(dp.maglevTable(1)!.length, 1009)
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [1, 2], scheduler: 'random' })
  t.equal(dp.maglevTable(2), null, 'null for a scheduler without a table')
  t.equal(dp.maglevTable(3), null, 'null for an unknown service')
})

t.test('rr takes the backends in turn, ignoring weights', async (t) => {
  const dp = service('rr', 3, {}, [4, 3, 2])
  const seq = Array.from({ length: 9 }, (_, i) => dp.decide({ src: client(i), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  t.strictSame(seq, [1, 2, 3, 1, 2, 3, 1, 2, 3])
})

t.test('wrr follows IPVS interleaving', async (t) => {
  const dp = service('wrr', 3, {}, [4, 3, 2])
  const seq = Array.from({ length: 18 }, (_, i) => dp.decide({ src: client(i), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  t.strictSame(seq, [1, 1, 2, 1, 2, 3, 1, 2, 3, 1, 1, 2, 1, 2, 3, 1, 2, 3], 'weights 4,3,2: A A B A B C A B C, repeated')
  const counts = spread(service('wrr', 3, {}, [4, 3, 2]), 900)
  t.strictSame([counts.get(1), counts.get(2), counts.get(3)], [400, 300, 200], 'exactly in proportion over whole cycles')
  const two = service('wrr', 2, {}, [4, 2])
  const seq2 = Array.from({ length: 6 }, (_, i) => two.decide({ src: client(i), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  t.strictSame(seq2, [1, 1, 2, 1, 1, 2], 'weights 4,2 (gcd 2): 2:1')
  const equal = service('wrr', 3, {}, [5, 5, 5])
  const seq3 = Array.from({ length: 6 }, (_, i) => equal.decide({ src: client(i), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  t.strictSame(seq3, [1, 2, 3, 1, 2, 3], 'equal weights: plain round robin')
})

t.test('lc picks the backend with the fewest active connections', async (t) => {
  const dp = service('lc', 3)
  let port = 0
  const open = () => dp.decide({ src: client(0), sport: ++port, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId
  t.strictSame([open(), open(), open(), open(), open(), open()], [1, 2, 3, 1, 2, 3], 'ties go to the first')
  t.strictSame(dp.backends().map((b) => b.activeConnections), [2, 2, 2])
  dp.deleteFlowsByBackend(2)
  t.strictSame([open(), open(), open()], [2, 2, 1], 'the emptied backend fills up first')
  // Load backend 1 through another service: connections count per backend, whatever the service.
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [1], scheduler: 'lc' })
  for (let i = 0; i < 5; i++) dp.decide({ src: client(1), sport: 100 + i, dst: '172.30.0.11', dport: 80, protocol: 'TCP' }, 1)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [8, 2, 2])
  t.strictSame([open(), open(), open(), open()], [2, 3, 2, 3])
  // Flows that expire stop counting.
  t.equal(dp.gc(1 + 120, 100000).flows, 16)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [0, 0, 0])
  t.equal(open(), 1)
})

t.test('wlc picks the smallest connections / weight', async (t) => {
  const weights = [1, 2, 3]
  const dp = service('wlc', 3, {}, weights)
  // Reference: ip_vs_wlc_schedule (first of the least; compared by cross multiplication).
  const conns = [0, 0, 0]
  const expected: number[] = []
  for (let k = 0; k < 60; k++) {
    let least = 0
    for (let i = 1; i < 3; i++) if (conns[least] * weights[i] > conns[i] * weights[least]) least = i
    conns[least]++
    expected.push(least + 1)
  }
  const got = Array.from({ length: 60 }, (_, k) => dp.decide({ src: client(k), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  t.strictSame(got, expected)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [10, 20, 30])
  t.strictSame(expected.slice(0, 6), [1, 2, 3, 3, 2, 3], 'the first picks, worked by hand')
  // Steer: empty the heaviest backend and it takes the next flows.
  dp.deleteFlowsByBackend(3)
  const next = Array.from({ length: 30 }, (_, k) => dp.decide({ src: client(100 + k), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId)
  t.strictSame(countBy(next).get(3), 30, 'until it is level with the others')
})

t.test('sh keeps a source on one backend and spreads sources', async (t) => {
  const dp = service('sh', 4)
  const perClient = new Map<string, Set<number>>()
  for (let i = 0; i < 400; i++)
    for (let p = 0; p < 5; p++) {
      const src = client(i)
      const d = dp.decide({ src, sport: 30000 + p, dst: VIP, dport: 80 + 0, protocol: 'TCP' }, 1)
      if (!perClient.has(src)) perClient.set(src, new Set())
      perClient.get(src)!.add(d.backendId)
    }
  t.ok([...perClient.values()].every((s) => s.size === 1), 'every client on one backend for all its ports')
  const counts = countBy([...perClient.values()].map((s) => [...s][0]))
  t.equal(counts.size, 4)
  for (const [id, c] of counts) t.ok(c > 50 && c < 150, `backend ${id}: ${c} of 400 clients`)
  t.equal(dp.maglevTable(1)!.length, 256, 'IPVS sh: 256 buckets')
  // Weights are bucket counts: 1 and 3 give 64 and 192 buckets.
  const w = service('sh', 2, {}, [1, 3])
  t.strictSame([...countBy(w.maglevTable(1)!)].sort(), [[1, 64], [2, 192]])
  const wc = spread(w, 4000)
  assertShares(t, wc, [1, 3], 0.15, 'sh, weights 1:3')
})

t.test('dh keeps a destination on one backend', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 4)
  const vips = Array.from({ length: 32 }, (_, i) => `172.30.1.${i + 1}`)
  dp.upsertService({ id: 1, frontends: vips.map((v) => frontend(v)), backends: [1, 2, 3, 4], scheduler: 'dh' })
  const perVip = vips.map((dst) => new Set(Array.from({ length: 20 }, (_, i) => dp.decide({ src: client(i), sport: 5000 + i, dst, dport: 80, protocol: 'TCP' }, 1).backendId)))
  t.ok(perVip.every((s) => s.size === 1), 'every destination on one backend, whatever the client')
  t.ok(new Set(perVip.map((s) => [...s][0])).size >= 3, 'different destinations use different backends')
})

t.test('no scheduler sends a new flow to a terminating backend', async (t) => {
  for (const scheduler of ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh'] as SchedulerName[]) {
    const dp = service(scheduler, 4, { maglevTableSize: 1009 })
    dp.upsertBackend({ id: 2, address: '10.1.0.2', port: 8080, state: 'terminating' })
    dp.upsertBackend({ id: 4, address: '10.1.0.4', port: 8080, state: 'quarantined' })
    const counts = spread(dp, 500)
    t.strictSame([counts.has(2), counts.has(4)], [false, false], `${scheduler}: terminating and quarantined backends get nothing`)
    if (scheduler !== 'dh') t.strictSame([counts.has(1), counts.has(3)], [true, true], `${scheduler}: the active ones take the flows`)
  }
})

// Regressions: bugs found by the test author, fixed; each test reproduces its bug.
t.test('regressions', async (t) => {
  t.test('rr keeps its place when the backend set is rebuilt (IPVS ip_vs_rr_del_dest)', async (t) => {
    const dp = service('rr', 3)
    const pick = (i: number) => dp.decide({ src: client(i), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId
    t.strictSame([pick(0), pick(1)], [1, 2])
    dp.upsertBackend({ id: 3, address: '10.1.0.3', port: 8080, weight: 2 }) // a weight change rebuilds the set
    t.equal(pick(2), 3, 'continues after backend 2')
  })
})
