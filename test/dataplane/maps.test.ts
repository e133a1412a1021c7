// Every map operation through the Dataplane API: upserts and deletes, the dumps of every map,
// map sizes, capacities and counters, conntrack lookup and iteration, and refused updates
// that must leave every map exactly as it was.
import t from 'tap'
import { Dataplane, canonicalAddress } from '../../lib/index.js'
import type { MapStats } from '../../lib/index.js'
import { CLIENT, VIP, addBackends, frontend, makeDataplane, snapshot, toVip } from './helpers/fixtures.js'

const ZERO: MapStats = { hits: 0, misses: 0, inserts: 0, updates: 0, deletes: 0, evictions: 0, refusals: 0, expirations: 0 }
const stats = (dp: Dataplane, name: string): MapStats => dp.map(name).stats

t.test('backends: insert, update, dump every field', async (t) => {
  const dp = makeDataplane()
  dp.upsertBackend({ id: 7, address: '10.0.0.7', port: 8080, weight: 3, nodeLocal: true, zone: 'zone-a' })
  dp.upsertBackend({ id: 9, address: '2001:DB8::9', port: 443 })
  t.strictSame(dp.backends(), [
    { id: 7, address: '10.0.0.7', port: 8080, state: 'active', weight: 3, nodeLocal: true, zone: 'zone-a', activeConnections: 0, services: [] },
    { id: 9, address: '2001:db8::9', port: 443, state: 'active', weight: 1, nodeLocal: false, zone: '', activeConnections: 0, services: [] },
  ])
  t.strictSame(stats(dp, 'backends'), { ...ZERO, inserts: 2 })
  dp.upsertBackend({ id: 7, address: '10.0.0.7', port: 8080, state: 'terminating', weight: 5, zone: 'zone-b' })
  const b7 = dp.backends().find((b) => b.id === 7)!
  t.strictSame([b7.state, b7.weight, b7.zone, b7.nodeLocal], ['terminating', 5, 'zone-b', false], 'an upsert replaces every field')
  t.strictSame(stats(dp, 'backends'), { ...ZERO, inserts: 2, updates: 1 })
  t.equal(dp.map('backends').size, 2)
  dp.deleteBackend(9)
  t.strictSame(dp.backends().map((b) => b.id), [7])
  t.strictSame(stats(dp, 'backends'), { ...ZERO, inserts: 2, updates: 1, deletes: 1 })
  t.throws(() => dp.deleteBackend(9), { name: 'RangeError', message: /backend 9 does not exist/ })
})

t.test('services, frontends and revnat: insert, dump, update, delete', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 3)
  dp.upsertService({
    id: 5,
    frontends: [
      frontend(VIP, 80, 'TCP', 'internal'),
      { address: '2001:db8::10', port: 53, protocol: 'UDP', scope: 'external', checkSourceRanges: true },
      frontend('203.0.113.5', 8443, 'SCTP', 'external'),
    ],
    backends: [3, 1, 2, 1],
    scheduler: 'maglev',
    affinityTimeout: 30,
    sourceRanges: ['10.9.8.7/8', ' 2001:db8::/32 '],
    emptyVerdict: 'drop',
  })
  t.strictSame(dp.services(), [
    {
      id: 5,
      scheduler: 'maglev',
      affinityTimeout: 30,
      emptyVerdict: 'drop',
      backends: [1, 2, 3],
      activeBackends: [1, 2, 3],
      frontends: [
        { address: VIP, port: 80, protocol: 'TCP', scope: 'internal' },
        { address: '2001:db8::10', port: 53, protocol: 'UDP', scope: 'external' },
        { address: '203.0.113.5', port: 8443, protocol: 'SCTP', scope: 'external' },
      ],
      sourceRanges: ['10.0.0.0/8', '2001:db8::/32'],
    },
  ], 'backend ids deduplicated and sorted; source ranges canonical')
  const fes = dp.frontends()
  t.equal(fes.length, 3)
  for (const f of fes) t.equal(f.serviceId, 5)
  t.strictSame(
    fes.map((f) => [f.address, f.port, f.protocol, f.scope, f.checkSourceRanges]).sort(),
    [
      ['172.30.0.10', 80, 'TCP', 'internal', false],
      ['2001:db8::10', 53, 'UDP', 'external', true],
      ['203.0.113.5', 8443, 'SCTP', 'external', false],
    ].sort(),
  )
  // Every frontend has its own revnat entry holding its address and port.
  const revnat = new Map(dp.revnat().map((r) => [r.id, r]))
  t.equal(revnat.size, 3)
  for (const f of fes) t.strictSame(revnat.get(f.revNatId), { id: f.revNatId, address: f.address, port: f.port })
  t.strictSame(dp.backends().map((b) => b.services), [[5], [5], [5]])
  t.strictSame(stats(dp, 'services'), { ...ZERO, inserts: 1 })
  t.strictSame(stats(dp, 'frontends'), { ...ZERO, inserts: 3 })
  t.strictSame(stats(dp, 'revnat'), { ...ZERO, inserts: 3 })

  // Update: keep one frontend (its revnat id stays), drop two, add one; new backend set.
  const kept = fes.find((f) => f.port === 80)!
  dp.upsertService({ id: 5, frontends: [frontend(VIP, 80, 'TCP', 'internal'), frontend(VIP, 81)], backends: [2] })
  const svc = dp.services()[0]
  t.strictSame([svc.scheduler, svc.affinityTimeout, svc.emptyVerdict, svc.backends, svc.sourceRanges], ['random', 0, 'reject', [2], []], 'an upsert replaces every field')
  t.equal(dp.frontends().find((f) => f.port === 80)!.revNatId, kept.revNatId, 'a kept frontend keeps its revnat id')
  t.equal(dp.map('frontends').size, 2)
  t.equal(dp.map('revnat').size, 2)
  t.strictSame(dp.backends().map((b) => b.services), [[], [5], []], 'backends no longer listed forget the service')
  t.strictSame(stats(dp, 'services'), { ...ZERO, inserts: 1, updates: 1 })
  t.strictSame(stats(dp, 'frontends'), { ...ZERO, inserts: 4, updates: 1, deletes: 2 })
  t.strictSame(stats(dp, 'revnat'), { ...ZERO, inserts: 4, deletes: 2 })

  dp.deleteService(5)
  t.strictSame(dp.services(), [])
  t.strictSame(dp.frontends(), [])
  t.strictSame(dp.revnat(), [])
  t.strictSame(dp.backends().map((b) => b.services), [[], [], []])
  t.strictSame(stats(dp, 'services'), { ...ZERO, inserts: 1, updates: 1, deletes: 1 })
  t.throws(() => dp.deleteService(5), { name: 'RangeError', message: /service 5 does not exist/ })
})

t.test('deleteService removes the service\'s flows and affinity entries, and only those', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 2)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1], affinityTimeout: 100 })
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [2], affinityTimeout: 100 })
  dp.decide(toVip(1000), 1)
  dp.decide(toVip(1001), 1)
  dp.decide({ ...toVip(1002), dst: '172.30.0.11' }, 1)
  t.equal(dp.map('conntrack').size, 3)
  t.equal(dp.affinity().length, 2)
  dp.deleteService(1)
  t.strictSame([...dp.flows()].map((f) => f.serviceId), [2])
  t.strictSame(dp.affinity().map((a) => a.serviceId), [2])
  t.strictSame(dp.backends().map((b) => b.activeConnections), [0, 1])
  const d = dp.decide(toVip(1000), 2)
  t.strictSame([d.verdict, d.reason], ['pass', 'no-frontend'], 'the frontend is gone too')
})

t.test('deleteBackend is refused while a service lists the backend', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 2)
  dp.upsertService({ id: 42, frontends: [frontend(VIP)], backends: [1, 2] })
  dp.decide(toVip(1000), 1)
  const before = snapshot(dp)
  t.throws(() => dp.deleteBackend(1), { message: /backend 1 is still listed by service 42/ })
  t.strictSame(snapshot(dp), before, 'nothing changed')
  dp.upsertService({ id: 42, frontends: [frontend(VIP)], backends: [2] })
  dp.deleteBackend(1)
  t.strictSame(dp.backends().map((b) => b.id), [2])
  t.strictSame([...dp.flows()].filter((f) => f.backendId === 1), [], 'its flows went with it')
})

t.test('a frontend owned by another service is refused', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 2)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
  const before = snapshot(dp)
  t.throws(() => dp.upsertService({ id: 2, frontends: [frontend('172.30.0.99'), frontend(VIP)], backends: [2] }), {
    message: /service 2: frontends\[1\] is already a frontend of service 1/,
  })
  t.strictSame(snapshot(dp), before, 'nothing changed, not even the first frontend')
  // The same address with another port, protocol or scope is another frontend.
  dp.upsertService({ id: 2, frontends: [frontend(VIP, 81), frontend(VIP, 80, 'UDP'), frontend(VIP, 80, 'TCP', 'internal')], backends: [2] })
  t.equal(dp.frontends().length, 4)
})

t.test('a refused upsertService leaves every map exactly as before', async (t) => {
  const setup = () => {
    const dp = makeDataplane({ capacity: { frontends: 4 } })
    addBackends(dp, 3)
    dp.upsertService({ id: 1, frontends: [frontend(VIP), frontend(VIP, 443)], backends: [1, 2], affinityTimeout: 60 })
    dp.upsertService({ id: 2, frontends: [frontend('172.30.0.20')], backends: [3] })
    dp.decide(toVip(1000), 1)
    dp.decide({ ...toVip(1001), dst: '172.30.0.20' }, 1)
    return dp
  }
  const cases: Array<[string, Parameters<Dataplane['upsertService']>[0], RegExp]> = [
    ['unknown backend id on an update', { id: 1, frontends: [frontend(VIP, 8080)], backends: [1, 99] }, /backend 99 does not exist/],
    ['unknown backend id on an insert', { id: 3, frontends: [frontend('172.30.0.30')], backends: [99] }, /backend 99 does not exist/],
    ['a full frontends map', { id: 3, frontends: [frontend('172.30.0.30'), frontend('172.30.0.31')], backends: [3] }, /frontends map is full \(capacity 4\)/],
    ['an update that would outgrow the frontends map', { id: 1, frontends: [frontend(VIP), frontend(VIP, 443), frontend(VIP, 1), frontend(VIP, 2)], backends: [1] }, /frontends map is full/],
    ['a conflicting frontend', { id: 1, frontends: [frontend(VIP, 9), frontend('172.30.0.20')], backends: [1] }, /frontends\[1\] is already a frontend of service 2/],
    ['a repeated frontend', { id: 1, frontends: [frontend(VIP, 9), frontend(VIP, 9)], backends: [1] }, /frontends\[1\] repeats frontends\[0\]/],
  ]
  for (const [name, spec, message] of cases) {
    const dp = setup()
    const before = snapshot(dp)
    t.throws(() => dp.upsertService(spec), { message }, name)
    t.strictSame(snapshot(dp), before, `${name}: every map unchanged`)
    t.equal(dp.decide(toVip(1000), 2).backendId, before.flows.find((f) => f.sport === 1000)!.backendId, `${name}: still forwarding`)
  }
  // An update within capacity that swaps frontends is fine (2 dropped, 2 added, map full).
  const dp = setup()
  dp.upsertService({ id: 1, frontends: [frontend(VIP, 1), frontend(VIP, 2), frontend(VIP, 3)], backends: [1] })
  t.equal(dp.map('frontends').size, 4)
})

t.test('maps(): names, sizes, capacities, bytes', async (t) => {
  const dp = new Dataplane({ seed: 1, capacity: { services: 10, frontends: 20, backends: 30, conntrack: 40, affinity: 50 } })
  const maps = dp.maps()
  t.strictSame(maps.map((m) => m.name), ['services', 'frontends', 'backends', 'revnat', 'affinity', 'conntrack'])
  t.strictSame(maps.map((m) => m.capacity), [10, 20, 30, 20, 50, 40], 'revnat is sized like frontends')
  t.strictSame(maps.map((m) => m.size), [0, 0, 0, 0, 0, 0])
  for (const m of maps) {
    t.ok(m.bytes > 0, `${m.name} holds memory`)
    t.strictSame(m.stats, ZERO, `${m.name} counters start at zero`)
  }
  // Memory is allocated once: it does not change as entries come and go.
  const bytes = maps.map((m) => m.bytes)
  addBackends(dp, 3)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3], affinityTimeout: 5 })
  for (let p = 1; p <= 10; p++) dp.decide(toVip(p), 1)
  t.strictSame(dp.maps().map((m) => m.bytes), bytes)
  t.strictSame(dp.maps().map((m) => m.size), [1, 1, 3, 1, 1, 10])
  t.strictSame(dp.map('conntrack'), dp.maps()[5])
  // A bigger table holds more bytes.
  const big = new Dataplane({ seed: 1, capacity: { conntrack: 4000 } })
  t.ok(big.map('conntrack').bytes > dp.map('conntrack').bytes * 50)
  t.throws(() => dp.map('lru'), { name: 'TypeError', message: /no map named "lru"/ })
})

t.test('packet-path counters: hits and misses', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 1)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
  const d = dp.decide(toVip(1000, { tcpFlags: 0x02 }), 1)
  t.strictSame(stats(dp, 'conntrack'), { ...ZERO, misses: 1, inserts: 1 })
  t.strictSame(stats(dp, 'frontends'), { ...ZERO, inserts: 1, hits: 1 })
  dp.decide(toVip(1000, { tcpFlags: 0x10 }), 2)
  t.strictSame(stats(dp, 'conntrack'), { ...ZERO, misses: 1, inserts: 1, hits: 1 }, 'an established packet hits conntrack')
  t.strictSame(stats(dp, 'frontends'), { ...ZERO, inserts: 1, hits: 1 }, '... and never looks at frontends')
  // A reply: conntrack hit in the reply direction, revnat hit for the rewrite.
  const r = dp.decide({ src: d.address, sport: d.port, dst: CLIENT, dport: 1000, protocol: 'TCP', tcpFlags: 0x12 }, 3)
  t.equal(r.verdict, 'reply')
  t.equal(stats(dp, 'conntrack').hits, 2)
  t.equal(stats(dp, 'revnat').hits, 1)
  // Not a service: a conntrack miss and a frontend miss in each scope.
  const p = dp.decide({ ...toVip(1), dst: '172.30.0.99' }, 4)
  t.strictSame([p.verdict, p.reason, p.serviceId], ['pass', 'no-frontend', 0])
  t.equal(stats(dp, 'conntrack').misses, 2)
  t.strictSame([stats(dp, 'frontends').hits, stats(dp, 'frontends').misses], [1, 2])
  // The internal scope is tried first, then the external frontend matches.
  dp.decide(toVip(2000, { scope: 'internal' }), 5)
  t.strictSame([stats(dp, 'frontends').hits, stats(dp, 'frontends').misses], [2, 3])
  t.strictSame(dp.counters(), {
    packets: 5,
    verdicts: { pass: 1, forward: 3, reply: 1, reject: 0, drop: 0 },
    reasons: { none: 2, 'no-frontend': 1, 'no-backends': 0, 'source-range': 0, 'conntrack-full': 0, 'affinity-full': 0 },
  })
})

t.test('lookupFlow finds a flow from either direction without touching it', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 1)
  dp.upsertService({ id: 3, frontends: [frontend(VIP)], backends: [1] })
  dp.decide(toVip(40000, { tcpFlags: 0x02, bytes: 60 }), 10)
  const before = dp.maps()
  const f = dp.lookupFlow(toVip(40000))!
  t.strictSame(f, {
    src: CLIENT, sport: 40000, dst: VIP, dport: 80, protocol: 'TCP',
    backendAddress: '10.1.0.1', backendPort: 8080, serviceId: 3, backendId: 1, revNatId: dp.frontends()[0].revNatId,
    state: 'syn-sent', created: 10, lastSeen: 10, expires: 130,
    packets: 1, bytes: 60, replyPackets: 0, replyBytes: 0, direction: 'original',
  })
  const r = dp.lookupFlow({ src: '10.1.0.1', sport: 8080, dst: CLIENT, dport: 40000, protocol: 'TCP' })!
  t.strictSame(r, { ...f, direction: 'reply' }, 'the reply tuple finds the same flow')
  t.equal(dp.lookupFlow(toVip(40001)), null)
  t.equal(dp.lookupFlow({ ...toVip(40000), protocol: 'UDP' }), null, 'the protocol is part of the tuple')
  t.equal(dp.lookupFlow({ src: '10.1.0.1', sport: 8080, dst: CLIENT, dport: 40000, protocol: 'UDP' }), null)
  t.strictSame(dp.maps(), before, 'lookups are not counted and change nothing')
  // lookupFlow ignores expiry: it shows the entry as stored until gc or a packet removes it.
  t.equal(dp.lookupFlow(toVip(40000))!.expires, 130)
})

t.test('flows() iterates every flow exactly once, in pages of any size', async (t) => {
  const dp = makeDataplane({ capacity: { conntrack: 64 } })
  addBackends(dp, 3)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3], scheduler: 'rr' })
  for (let p = 1; p <= 25; p++) dp.decide(toVip(p), p)
  dp.deleteFlowsByBackend(2) // leave holes in the slab
  const all = [...dp.flows()]
  t.equal(all.length, dp.map('conntrack').size)
  t.strictSame(all.map((f) => f.sport).sort((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i + 1).filter((p) => p % 3 !== 2))
  for (const f of all) {
    t.equal(f.created, f.sport, 'created at the time it was first seen')
    t.equal(f.backendId % 3, f.sport % 3, 'rr assigned backends in turn')
    t.notOk('direction' in f, 'iteration has no direction')
  }
  for (const page of [1, 2, 7, 64, 1000]) t.strictSame([...dp.flows(page)], all, `page size ${page}`)
  t.strictSame([...makeDataplane().flows()], [], 'an empty table yields nothing')
})

t.test('deleteFlowsByBackend, deleteFlowsByService, flushConntrack', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 3)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3], scheduler: 'rr' })
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [1, 2, 3], scheduler: 'rr' })
  for (let p = 1; p <= 9; p++) dp.decide(toVip(p), 1)
  for (let p = 1; p <= 6; p++) dp.decide({ ...toVip(p), dst: '172.30.0.11' }, 1)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [5, 5, 5])
  t.equal(dp.deleteFlowsByBackend(1), 5)
  t.equal(dp.deleteFlowsByBackend(1), 0)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [0, 5, 5])
  t.equal(dp.deleteFlowsByService(2), 4)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [0, 3, 3])
  t.strictSame([...dp.flows()].every((f) => f.serviceId === 1 && f.backendId !== 1), true)
  t.equal(dp.deleteFlowsByService(77), 0, 'an unknown service has no flows')
  t.equal(dp.flushConntrack(), 6)
  t.equal(dp.flushConntrack(), 0)
  t.strictSame([...dp.flows()], [])
  t.strictSame(dp.backends().map((b) => b.activeConnections), [0, 0, 0])
  t.strictSame(stats(dp, 'conntrack'), { ...ZERO, misses: 15, inserts: 15, deletes: 15 })
  // A flushed flow is a new flow again.
  t.equal(dp.decide(toVip(1), 2).established, false)
})

t.test('frontend scope: the preferred scope first, then the other', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 2)
  dp.upsertService({ id: 1, frontends: [frontend(VIP, 80, 'TCP', 'internal')], backends: [1] })
  dp.upsertService({ id: 2, frontends: [frontend(VIP, 80, 'TCP', 'external')], backends: [2] })
  t.equal(dp.decide(toVip(1, { scope: 'internal' }), 1).serviceId, 1)
  t.equal(dp.decide(toVip(2, { scope: 'external' }), 1).serviceId, 2)
  t.equal(dp.decide(toVip(3), 1).serviceId, 2, 'external by default')
  dp.deleteService(2)
  t.equal(dp.decide(toVip(4, { scope: 'external' }), 1).serviceId, 1, 'falls back to the other scope')
})

t.test('source ranges apply only to frontends that check them', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 1)
  dp.upsertService({
    id: 1,
    frontends: [{ ...frontend('203.0.113.1'), checkSourceRanges: true }, frontend(VIP)],
    backends: [1],
    sourceRanges: ['192.168.0.0/16', '2001:db8::/32'],
  })
  const lb = (src: string, sport: number) => dp.decide({ src, sport, dst: '203.0.113.1', dport: 80, protocol: 'TCP' }, 1)
  t.equal(lb('192.168.200.1', 1).verdict, 'forward')
  t.strictSame([lb('10.0.0.1', 2).verdict, lb('10.0.0.1', 3).reason], ['drop', 'source-range'])
  t.equal(lb('2001:db8:1::1', 4).verdict, 'forward')
  t.equal(lb('2001:db9::1', 5).verdict, 'drop')
  t.equal(dp.decide({ src: '10.0.0.1', sport: 6, dst: VIP, dport: 80, protocol: 'TCP' }, 1).verdict, 'forward', 'the cluster IP does not check')
})

t.test('a service without active backends answers with its empty verdict', async (t) => {
  const dp = makeDataplane()
  dp.upsertBackend({ id: 1, address: '10.1.0.1', port: 8080, state: 'terminating' })
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [] })
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [1], emptyVerdict: 'drop' })
  t.strictSame(dp.decide(toVip(1), 1), { verdict: 'reject', reason: 'no-backends', serviceId: 1, backendId: 0, address: '', port: 0, established: false, affinityHit: false })
  const d = dp.decide({ ...toVip(2), dst: '172.30.0.11' }, 1)
  t.strictSame([d.verdict, d.reason, d.serviceId], ['drop', 'no-backends', 2])
  t.strictSame(dp.services().find((s) => s.id === 2)!.activeBackends, [], 'a terminating backend is listed but not active')
  t.equal(dp.map('conntrack').size, 0, 'nothing tracked')
})

t.test('IPv6 services forward and reverse-NAT like IPv4 ones', async (t) => {
  const dp = makeDataplane()
  dp.upsertBackend({ id: 1, address: 'fd00::1:1', port: 8080 })
  dp.upsertService({ id: 1, frontends: [frontend('fd00:ffff::10', 80)], backends: [1] })
  const d = dp.decide({ src: 'fd00:1::5', sport: 5555, dst: 'FD00:FFFF:0::10', dport: 80, protocol: 'TCP' }, 1)
  t.strictSame([d.verdict, d.address, d.port, d.backendId], ['forward', 'fd00::1:1', 8080, 1])
  const r = dp.decide({ src: 'fd00::1:1', sport: 8080, dst: 'fd00:1::5', dport: 5555, protocol: 'TCP' }, 2)
  t.strictSame([r.verdict, r.address, r.port], ['reply', 'fd00:ffff::10', 80])
  t.strictSame(dp.frontends()[0].address, 'fd00:ffff::10')
  t.strictSame([...dp.flows()][0].backendAddress, 'fd00::1:1')
})

t.test('destroy frees the maps; later calls throw', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 1)
  dp.destroy()
  t.throws(() => dp.maps(), { message: /destroyed/ })
  t.throws(() => dp.upsertBackend({ id: 2, address: '10.0.0.2', port: 1 }), { message: /destroyed/ })
  t.throws(() => dp.decide(toVip(1), 1), { message: /destroyed/ })
})

// Regressions: bugs found by the test author, fixed; each test reproduces its bug.
t.test('regressions', async (t) => {
  t.test('a reply of a flow whose frontend was dropped keeps the address the client used', async (t) => {
    const dp = makeDataplane()
    addBackends(dp, 1)
    dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
    dp.decide(toVip(1000, { tcpFlags: 0x02 }), 1)
    // The frontend changes (e.g. another cluster IP); the old connection lives on.
    dp.upsertService({ id: 1, frontends: [frontend('172.30.0.99')], backends: [1] })
    const r = dp.decide({ src: '10.1.0.1', sport: 8080, dst: CLIENT, dport: 1000, protocol: 'TCP', tcpFlags: 0x12 }, 2)
    t.equal(r.verdict, 'reply')
    t.equal(r.address, VIP, 'not rewritten to the new frontend 172.30.0.99')
  })
  t.test('revnat ids are not reused: a new frontend gets a fresh id', async (t) => {
    const dp = makeDataplane()
    addBackends(dp, 1)
    dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
    const first = dp.frontends()[0].revNatId
    dp.upsertService({ id: 1, frontends: [frontend('172.30.0.99')], backends: [1] })
    const second = dp.frontends()[0].revNatId
    t.not(second, first)
    t.strictSame(dp.revnat(), [{ id: second, address: '172.30.0.99', port: 80 }])
  })
  t.test('dumps spell every address like formatAddress()', async (t) => {
    const dp = makeDataplane()
    const cases = ['::', '::1', '1::', '2001:db8::1', '2001:db8:0:1:1:1:1:1', '2001:0:0:1::1', 'fe80::1:0:0:1', '1:0:0:2:0:0:0:3', '::ffff:0:1', '::ffff:1.2.3.4', '64:ff9b::1.2.3.4']
    cases.forEach((a, i) => dp.upsertBackend({ id: i + 1, address: a, port: 80 }))
    t.strictSame(dp.backends().map((b) => b.address).sort(), cases.map((a) => canonicalAddress(a)!).sort())
  })
  t.test('dumps spell addresses like decide() and canonicalAddress()', async (t) => {
    const dp = makeDataplane()
    dp.upsertBackend({ id: 1, address: '::1.2.3.4', port: 80 })
    dp.upsertService({ id: 1, frontends: [frontend('::5.6.7.8')], backends: [1] })
    const d = dp.decide({ src: '::9', sport: 1, dst: '::5.6.7.8', dport: 80, protocol: 'TCP' }, 1)
    t.equal(d.address, '::102:304')
    t.equal(dp.backends()[0].address, d.address, 'backends()')
    t.equal(dp.frontends()[0].address, '::506:708', 'frontends()')
    t.equal([...dp.flows()][0].backendAddress, d.address, 'flows()')
  })
})
