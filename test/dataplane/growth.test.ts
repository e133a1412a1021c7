// The growing maps (services, frontends/revnat, backends): they start small, double as the
// cluster grows (rebuilt aside and swapped in whole inside one call), keep every record,
// never touch conntrack or affinity, and stop at the capacity given, with code FULL.
import t from 'tap'
import { Dataplane, errorCode, INITIAL_CAPACITY, MAX_CAPACITY } from '../../lib/index.js'
import { addBackends, CLIENT, frontend, snapshot, toVip, VIP } from './helpers/fixtures.js'

const vip = (i: number) => `172.31.${i >> 8}.${i & 255}`

t.test('maps start at their initial size and grow past it; capacity is the ceiling', async (t) => {
  const dp = new Dataplane({ seed: 1n })
  t.strictSame(dp.capacity.services, MAX_CAPACITY, 'no ceiling below the most a map holds by default')
  t.equal(dp.map('services').capacity, INITIAL_CAPACITY.services)
  t.equal(dp.map('frontends').capacity, INITIAL_CAPACITY.frontends)
  t.equal(dp.map('backends').capacity, INITIAL_CAPACITY.backends)
  const small = new Dataplane({ seed: 1n, capacity: { services: 10 } })
  t.equal(small.map('services').capacity, 10, 'a ceiling below the initial size is the size')
})

t.test('growth keeps flows, affinity, lc connection counts and revnat', async (t) => {
  const dp = new Dataplane({ seed: 2n, rngSeed: 3n })
  addBackends(dp, 2)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2], scheduler: 'lc' })
  dp.upsertService({ id: 2, frontends: [frontend(vip(0))], backends: [1, 2], affinityTimeout: 100 })
  // Three flows on lc: backends get 2 and 1 (lc alternates on ties).
  const first = [1000, 1001, 1002].map((sport) => dp.decide(toVip(sport), 1))
  const sticky = dp.decide({ src: CLIENT, sport: 5, dst: vip(0), dport: 80, protocol: 'TCP' }, 1)
  const flowsBefore = [...dp.flows()]
  const affinityBefore = dp.affinity()
  // Grow every growing map: 20,000 backends, 1,500 services, 6,000 frontends.
  for (let b = 3; b <= 20002; b++) dp.upsertBackend({ id: b, address: `10.2.${b >> 8}.${b & 255}`, port: 80 })
  for (let s = 3; s < 1503; s++) {
    dp.upsertService({ id: s, frontends: [0, 1, 2, 3].map((k) => frontend(vip(s), 80 + k)), backends: [3 + 2 * s, 4 + 2 * s] })
  }
  t.ok(dp.map('backends').capacity > INITIAL_CAPACITY.backends, 'backends grew')
  t.ok(dp.map('services').capacity > INITIAL_CAPACITY.services, 'services grew')
  t.ok(dp.map('frontends').capacity > INITIAL_CAPACITY.frontends, 'frontends grew')
  t.equal(dp.map('revnat').capacity, dp.map('frontends').capacity, 'revnat grows with frontends')
  t.strictSame([...dp.flows()], flowsBefore, 'conntrack untouched')
  t.strictSame(dp.affinity(), affinityBefore, 'affinity untouched')
  // Established flows keep their backends; replies are still reverse-NATed.
  for (const [i, sport] of [1000, 1001, 1002].entries()) {
    const d = dp.decide(toVip(sport), 2)
    t.strictSame([d.established, d.backendId], [true, first[i]!.backendId], `flow ${sport} keeps backend ${first[i]!.backendId}`)
  }
  const reply = dp.decide({ src: first[0]!.address, sport: first[0]!.port, dst: CLIENT, dport: 1000, protocol: 'TCP' }, 2)
  t.strictSame([reply.verdict, reply.address, reply.port], ['reply', VIP, 80])
  const again = dp.decide({ src: CLIENT, sport: 6, dst: vip(0), dport: 80, protocol: 'TCP' }, 2)
  t.strictSame([again.affinityHit, again.backendId], [true, sticky.backendId], 'affinity kept')
  // lc reads the live connection counts through the moved records: the next new flow goes
  // to the backend with fewer flows, and the counts are right.
  const conns = (id: number) => dp.backends().find((b) => b.id === id)!.activeConnections
  const counts = [conns(1), conns(2)]
  const next = dp.decide(toVip(2000), 3)
  t.equal(next.backendId, counts[0]! <= counts[1]! ? 1 : 2, `lc picks the least loaded of ${counts.join(' / ')}`)
  t.equal(conns(next.backendId), counts[next.backendId - 1]! + 1)
  t.equal(dp.deleteFlowsByService(1), 4)
  t.equal(dp.deleteFlowsByService(2), 2)
  t.strictSame([conns(1), conns(2)], [0, 0], 'removing flows decrements the moved records')
  for (let s = 3; s < 1503; s += 499) {
    const d = dp.decide({ src: CLIENT, sport: 7, dst: vip(s), dport: 83, protocol: 'TCP' }, 3)
    t.strictSame([d.verdict, d.serviceId], ['forward', s], `service ${s} forwards`)
  }
})

t.test('reserve sizes the maps at once, within the ceiling', async (t) => {
  const dp = new Dataplane({ seed: 4n, capacity: { services: 5000, backends: 100000 } })
  addBackends(dp, 1)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
  dp.reserve({ services: 3000, frontends: 9000, backends: 50000 })
  t.strictSame([dp.map('services').capacity, dp.map('frontends').capacity, dp.map('backends').capacity], [3000, 9000, 50000])
  dp.reserve({ services: 10 })
  t.equal(dp.map('services').capacity, 3000, 'never shrinks')
  t.equal(dp.decide(toVip(1), 1).verdict, 'forward')
  const before = snapshot(dp)
  let caught: unknown
  try {
    dp.reserve({ services: 5001 })
  } catch (e) {
    caught = e
  }
  t.ok(caught instanceof RangeError)
  t.equal(errorCode(caught), 'FULL')
  t.match((caught as Error).message, /reserve: services map cannot hold 5001 \(capacity 5000\)/)
  t.strictSame(snapshot(dp), before, 'nothing changed')
  t.throws(() => dp.reserve({ service: 1 } as never), { name: 'TypeError', message: /reserve: unknown option "service"; did you mean "services"\?/ })
  t.throws(() => dp.reserve({ services: -1 }), { name: 'RangeError', message: /reserve: services must be an integer >= 0, got -1/ })
})

t.test('refusals carry codes a caller can branch on', async (t) => {
  const dp = new Dataplane({ seed: 5n, capacity: { services: 1 } })
  addBackends(dp, 1)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
  const code = (f: () => void) => {
    try {
      f()
    } catch (e) {
      return [errorCode(e), (e as Error).name]
    }
    return undefined
  }
  t.strictSame(code(() => dp.deleteBackend(1)), ['IN_USE', 'SvcplaneError'], 'backend in use')
  t.strictSame(code(() => dp.deleteService(9)), ['NOT_FOUND', 'RangeError'], 'service does not exist')
  t.strictSame(code(() => dp.deleteBackend(9)), ['NOT_FOUND', 'RangeError'], 'backend does not exist')
  t.strictSame(code(() => dp.upsertService({ id: 2, frontends: [frontend('172.30.9.9')], backends: [1] })), ['FULL', 'RangeError'], 'services map full')
  dp.deleteService(1)
  dp.upsertService({ id: 2, frontends: [frontend(VIP)], backends: [1] })
  t.strictSame(code(() => dp.upsertService({ id: 3, frontends: [frontend(VIP)], backends: [1] })), ['FULL', 'RangeError'])
  const two = new Dataplane({ seed: 5n })
  addBackends(two, 1)
  two.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
  t.strictSame(code(() => two.upsertService({ id: 2, frontends: [frontend(VIP)], backends: [1] })), ['CONFLICT', 'SvcplaneError'], 'frontend owned by another service')
  t.strictSame(code(() => two.upsertBackend({ id: 0, address: '10.0.0.1', port: 1 })), ['INVALID', 'RangeError'])
  t.strictSame(code(() => two.upsertBackend({ id: 1, address: 'nope', port: 1 })), ['INVALID', 'TypeError'])
  two.destroy()
  t.strictSame(code(() => two.decide(toVip(1), 1)), ['DESTROYED', 'Error'], 'destroyed')
})
