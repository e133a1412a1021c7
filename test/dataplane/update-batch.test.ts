// Dataplane.upsertBatch: many upserts in one native call, the same result as the single
// upserts in the same order, and all or nothing (each refusal as the single upsert says it).
import t from 'tap'
import type { BackendSpec, Dataplane, ServiceSpec } from '../../lib/index.js'
import { CLIENT, VIP, frontend, makeDataplane, snapshot, toVip } from './helpers/fixtures.js'

function backend(id: number, extra: Partial<BackendSpec> = {}): BackendSpec {
  return { id, address: `10.1.${id >> 8}.${id & 255}`, port: 8080, ...extra }
}

/** n services of two backends each, service i on 172.30.x.y:80, the last one with the usual VIP. */
function cluster(n: number): { backends: BackendSpec[]; services: ServiceSpec[] } {
  const backends: BackendSpec[] = []
  const services: ServiceSpec[] = []
  for (let i = 1; i <= n; i++) {
    backends.push(backend(2 * i - 1, { zone: i % 2 ? 'a' : 'b' }), backend(2 * i, { state: i % 3 ? 'active' : 'terminating', nodeLocal: true }))
    services.push({
      id: i,
      frontends: [frontend(i === n ? VIP : `172.31.${i >> 8}.${i & 255}`), frontend(`192.0.${i >> 8}.${i & 255}`, 30000 + i, 'UDP', 'internal')],
      backends: [2 * i - 1, 2 * i],
      scheduler: i % 2 ? 'rr' : 'maglev',
      affinityTimeout: i % 4 === 0 ? 30 : 0,
      sourceRanges: i % 5 === 0 ? ['198.51.100.0/24', '2001:db8::/32'] : [],
      emptyVerdict: i % 2 ? 'reject' : 'drop',
    })
  }
  return { backends, services }
}

/** The service state of the maps (capacities differ: a batch sizes them once). */
const state = (dp: Dataplane) => {
  const s = snapshot(dp)
  return { services: s.services, backends: s.backends, frontends: s.frontends, revnat: s.revnat }
}

t.test('a batch programs what the single upserts program, in the same order', async (t) => {
  const { backends, services } = cluster(300)
  const one = makeDataplane({ rngSeed: 7, capacity: { services: 512, frontends: 1024, backends: 1024 } })
  const many = makeDataplane({ rngSeed: 7, capacity: { services: 512, frontends: 1024, backends: 1024 } })
  t.teardown(() => (one.destroy(), many.destroy()))
  for (const b of backends) one.upsertBackend(b)
  for (const s of services) one.upsertService(s)
  many.upsertBatch({ backends, services })
  t.strictSame(state(many), state(one))
  for (let sport = 1000; sport < 1020; sport++) t.strictSame(many.decide(toVip(sport), 1), one.decide(toVip(sport), 1), `flow ${sport} decided alike`)
  t.strictSame(many.maglevTable(2), one.maglevTable(2))
})

t.test('a batch updates what it names and leaves the rest', async (t) => {
  const dp = makeDataplane()
  t.teardown(() => dp.destroy())
  const { backends, services } = cluster(3)
  dp.upsertBatch({ backends, services })
  // Service 3 moves to backend 1 only; backend 6 becomes terminating.
  dp.upsertBatch({ backends: [backend(6, { state: 'terminating' })], services: [{ ...services[2], backends: [1] }] })
  t.strictSame(dp.services().find((s) => s.id === 3)?.backends, [1])
  t.equal(dp.backends().find((b) => b.id === 6)?.state, 'terminating')
  t.equal(dp.services().length, 3)
  t.equal(dp.decide({ src: CLIENT, sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId, 1)
  dp.upsertBatch({})
  t.equal(dp.services().length, 3, 'an empty batch changes nothing')
})

t.test('a frontend given up earlier in the batch is free for the services after it', async (t) => {
  const dp = makeDataplane()
  t.teardown(() => dp.destroy())
  dp.upsertBatch({ backends: [backend(1)], services: [{ id: 1, frontends: [frontend(VIP)], backends: [1] }] })
  dp.upsertBatch({ services: [{ id: 1, frontends: [], backends: [1] }, { id: 2, frontends: [frontend(VIP)], backends: [1] }] })
  t.strictSame(dp.frontends().map((f) => [f.address, f.serviceId]), [[VIP, 2]])
  // The other order is the single upserts' CONFLICT, and changes nothing.
  const before = snapshot(dp)
  t.throws(() => dp.upsertBatch({ services: [{ id: 1, frontends: [frontend(VIP)], backends: [1] }, { id: 2, frontends: [], backends: [1] }] }), {
    code: 'CONFLICT',
    message: 'service 1: frontends[0] is already a frontend of service 2',
  })
  t.strictSame(snapshot(dp), before)
})

t.test('all or nothing: a refused update anywhere leaves every map as it was', async (t) => {
  const dp = makeDataplane({ capacity: { services: 4, frontends: 64, backends: 64 } })
  t.teardown(() => dp.destroy())
  const { backends, services } = cluster(3)
  dp.upsertBatch({ backends, services })
  const before = snapshot(dp)
  const more = cluster(5)
  const cases: [string, () => void, { code?: string; name?: string; message: string }][] = [
    ['a service over capacity', () => dp.upsertBatch(more), { code: 'FULL', message: 'service 5: services map is full (capacity 4); raise capacity.services' }],
    [
      'an unknown backend id',
      () => dp.upsertBatch({ backends: [backend(40)], services: [{ id: 1, frontends: [frontend('172.31.0.1')], backends: [40, 41] }] }),
      { code: 'NOT_FOUND', message: 'service 1: backend 41 does not exist' },
    ],
    [
      'a repeated frontend',
      () => dp.upsertBatch({ services: [services[0], { id: 9, frontends: [frontend('203.0.113.1'), frontend('203.0.113.1')], backends: [] }] }),
      { code: 'INVALID', message: 'service 9: frontends[1] repeats frontends[0]' },
    ],
    [
      'a bad spec, checked before the call',
      () => dp.upsertBatch({ backends: [backend(50), { ...backend(51), weight: 0 }] }),
      { name: 'RangeError', message: 'backend 51: weight must be 1..65535, got 0' },
    ],
    [
      'a bad frontend',
      () => dp.upsertBatch({ backends: [backend(52)], services: [{ id: 1, frontends: [{ ...frontend(VIP), protocol: 'ICMP' as never }], backends: [52] }] }),
      { name: 'TypeError', message: "service 1: frontends[0].protocol must be TCP, UDP or SCTP, got \"ICMP\"" },
    ],
  ]
  for (const [what, call, error] of cases) {
    t.throws(call, error, what)
    t.strictSame(snapshot(dp), before, `${what}: nothing changed`)
  }
  t.throws(() => dp.upsertBatch({ backends: {} as never }), { name: 'TypeError', message: /backends must be an array/ })
  t.throws(() => dp.upsertBatch({ extra: 1 } as never), { name: 'TypeError' })
})

t.test('a full backends map refuses the batch as upsertBackend would', async (t) => {
  const dp = makeDataplane({ capacity: { backends: 3 } })
  t.teardown(() => dp.destroy())
  const before = snapshot(dp)
  t.throws(() => dp.upsertBatch({ backends: [backend(1), backend(2), backend(3), backend(4)] }), {
    code: 'FULL',
    message: 'backend 4: backends map is full (capacity 3); raise capacity.backends',
  })
  t.strictSame(snapshot(dp), before)
  dp.upsertBatch({ backends: [backend(1), backend(2), backend(3), backend(3, { port: 9090 })] })
  t.equal(dp.backends().length, 3, 'an id repeated in the batch is one backend')
})
