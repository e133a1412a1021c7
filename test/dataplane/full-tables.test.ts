// Full maps: conntrack and affinity under both policies (evict the oldest, half-open first, or
// refuse), and the control-path maps, which refuse and leave everything as it was.
import t from 'tap'
import { TCP_FLAGS } from '../../lib/index.js'
import type { Dataplane, DataplaneOptions } from '../../lib/index.js'
import { CLIENT, VIP, addBackends, frontend, makeDataplane, snapshot, toVip } from './helpers/fixtures.js'

const { SYN, ACK } = TCP_FLAGS

function setup(options: DataplaneOptions): Dataplane {
  const dp = makeDataplane(options)
  addBackends(dp, 4)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4], scheduler: 'rr' })
  return dp
}

/** Opens a connection through the full handshake (established) or leaves it half-open. */
function open(dp: Dataplane, sport: number, now: number, established: boolean) {
  const d = dp.decide(toVip(sport, { tcpFlags: SYN }), now)
  if (established) {
    dp.decide({ src: d.address, sport: d.port, dst: CLIENT, dport: sport, protocol: 'TCP', tcpFlags: SYN | ACK }, now)
    dp.decide(toVip(sport, { tcpFlags: ACK }), now)
  }
  return d
}

const sports = (dp: Dataplane) => [...dp.flows()].map((f) => f.sport).sort((a, b) => a - b)

t.test('conntrack full, evict-oldest: the oldest flow makes room and is counted', async (t) => {
  const dp = setup({ capacity: { conntrack: 4 }, conntrackFullPolicy: 'evict-oldest' })
  for (let p = 1; p <= 4; p++) open(dp, p, p, true)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [1, 1, 1, 1])
  const d = open(dp, 5, 10, true)
  t.strictSame([d.verdict, d.reason, d.backendId], ['forward', 'none', 1])
  t.strictSame(sports(dp), [2, 3, 4, 5], 'flow 1, the oldest, was evicted')
  const s = dp.map('conntrack')
  t.strictSame([s.size, s.capacity, s.stats.evictions, s.stats.deletes, s.stats.refusals], [4, 4, 1, 0, 0], 'an eviction is not a delete')
  t.strictSame(dp.backends().map((b) => b.activeConnections), [1, 1, 1, 1], 'the evicted flow\'s backend count dropped')
  // The evicted flow's next packet is a new flow; it evicts the next oldest.
  t.equal(dp.decide(toVip(1, { tcpFlags: ACK }), 11).established, false)
  t.strictSame(sports(dp), [1, 3, 4, 5])
  t.equal(dp.map('conntrack').stats.evictions, 2)
})

t.test('conntrack full, evict-oldest: half-open flows go before established ones', async (t) => {
  const dp = setup({ capacity: { conntrack: 4 } }) // evict-oldest is the default
  open(dp, 1, 1, true) // the oldest, established
  open(dp, 2, 2, false) // half-open (SYN only)
  open(dp, 3, 3, true)
  open(dp, 4, 4, true)
  open(dp, 5, 5, true)
  t.strictSame(sports(dp), [1, 3, 4, 5], 'the half-open flow went, not the oldest')
  open(dp, 6, 6, false)
  t.strictSame(sports(dp), [3, 4, 5, 6], 'every flow established: the oldest goes')
  open(dp, 7, 7, false)
  t.strictSame(sports(dp), [3, 4, 5, 7], 'the half-open newcomer goes before older established flows')
  t.equal(dp.map('conntrack').stats.evictions, 3)
  t.equal(dp.counters().reasons['conntrack-full'], 0, 'nothing refused')
})

t.test('conntrack full, refuse: new flows are dropped and counted, existing ones go on', async (t) => {
  const dp = setup({ capacity: { conntrack: 2 }, conntrackFullPolicy: 'refuse' })
  open(dp, 1, 1, true)
  open(dp, 2, 1, false)
  const before = dp.map('conntrack').stats
  const d = dp.decide(toVip(3, { tcpFlags: SYN }), 2)
  t.strictSame([d.verdict, d.reason, d.serviceId, d.backendId, d.established], ['drop', 'conntrack-full', 1, 0, false])
  t.strictSame(sports(dp), [1, 2])
  const s = dp.map('conntrack').stats
  t.strictSame([s.refusals, s.evictions, s.inserts], [1, 0, before.inserts])
  t.equal(dp.counters().reasons['conntrack-full'], 1)
  t.equal(dp.counters().verdicts.drop, 1)
  t.strictSame(dp.backends().map((b) => b.activeConnections), [1, 1, 0, 0], 'no backend charged for the refused flow')
  t.equal(dp.decide(toVip(1, { tcpFlags: ACK }), 3).established, true, 'tracked flows are unaffected')
  t.equal(dp.decide(toVip(2, { tcpFlags: ACK }), 3).established, true)
  t.equal(dp.decide(toVip(4), 3).reason, 'conntrack-full')
  t.equal(dp.map('conntrack').stats.refusals, 2)
  // Room again once a flow is gone.
  dp.deleteFlowsByBackend(2)
  const ok = dp.decide(toVip(3, { tcpFlags: SYN }), 4)
  t.strictSame([ok.verdict, ok.established], ['forward', false])
  t.equal(dp.map('conntrack').size, 2)
})

t.test('affinity full, evict-oldest: the oldest client is forgotten', async (t) => {
  const dp = setup({ capacity: { affinity: 2 }, affinityFullPolicy: 'evict-oldest' })
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4], scheduler: 'rr', affinityTimeout: 1000 })
  const client = (n: number, sport: number, now: number) => dp.decide({ src: `192.168.0.${n}`, sport, dst: VIP, dport: 80, protocol: 'TCP' }, now)
  t.strictSame([client(1, 1, 1).backendId, client(2, 1, 2).backendId], [1, 2])
  t.strictSame([client(1, 2, 3).affinityHit, client(2, 2, 3).affinityHit], [true, true])
  const third = client(3, 1, 4)
  t.strictSame([third.verdict, third.backendId, third.affinityHit], ['forward', 3, false])
  t.strictSame(dp.affinity().map((a) => a.client).sort(), ['192.168.0.2', '192.168.0.3'], 'client 1 was evicted')
  const s = dp.map('affinity')
  t.strictSame([s.size, s.stats.evictions, s.stats.refusals], [2, 1, 0])
  t.equal(dp.counters().reasons['affinity-full'], 0)
  const back = client(1, 3, 5)
  t.strictSame([back.affinityHit, back.backendId], [false, 4], 'client 1 is chosen for afresh')
  t.equal(client(3, 2, 6).affinityHit, true)
})

t.test('affinity full, refuse: the new client is forwarded but not remembered', async (t) => {
  const dp = setup({ capacity: { affinity: 2 }, affinityFullPolicy: 'refuse' })
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4], scheduler: 'rr', affinityTimeout: 1000 })
  const client = (n: number, sport: number, now: number) => dp.decide({ src: `192.168.0.${n}`, sport, dst: VIP, dport: 80, protocol: 'TCP' }, now)
  client(1, 1, 1)
  client(2, 1, 2)
  const third = client(3, 1, 3)
  t.strictSame([third.verdict, third.reason, third.backendId, third.affinityHit], ['forward', 'none', 3, false])
  t.strictSame(dp.affinity().map((a) => a.client).sort(), ['192.168.0.1', '192.168.0.2'])
  const s = dp.map('affinity')
  t.strictSame([s.size, s.stats.refusals, s.stats.evictions], [2, 1, 0])
  t.equal(dp.counters().reasons['affinity-full'], 1)
  const again = client(3, 2, 4)
  t.strictSame([again.affinityHit, again.backendId], [false, 4], 'no memory of client 3')
  t.equal(dp.counters().reasons['affinity-full'], 2)
  t.strictSame([client(1, 2, 5).affinityHit, client(2, 2, 5).affinityHit], [true, true], 'remembered clients still stick')
})

t.test('services map full: RangeError, nothing changed; updates still work', async (t) => {
  const dp = makeDataplane({ capacity: { services: 2 } })
  addBackends(dp, 2)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1] })
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [2] })
  const before = snapshot(dp)
  t.throws(() => dp.upsertService({ id: 3, frontends: [frontend('172.30.0.12')], backends: [1, 2] }), {
    name: 'RangeError',
    message: /service 3: services map is full \(capacity 2\)/,
  })
  t.strictSame(snapshot(dp), before)
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [1, 2] })
  t.strictSame(dp.services().find((s) => s.id === 2)!.backends, [1, 2])
  dp.deleteService(1)
  dp.upsertService({ id: 3, frontends: [frontend('172.30.0.12')], backends: [1] })
  t.equal(dp.map('services').size, 2)
})

t.test('frontends map full: RangeError, nothing changed', async (t) => {
  const dp = makeDataplane({ capacity: { frontends: 3 } })
  addBackends(dp, 1)
  dp.upsertService({ id: 1, frontends: [frontend(VIP, 80), frontend(VIP, 443)], backends: [1] })
  const before = snapshot(dp)
  t.throws(() => dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11', 80), frontend('172.30.0.11', 443)], backends: [1] }), {
    name: 'RangeError',
    message: /service 2: frontends map is full \(capacity 3\)/,
  })
  t.strictSame(snapshot(dp), before)
  t.strictSame([dp.map('frontends').size, dp.map('revnat').size, dp.map('services').size], [2, 2, 1])
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11', 80)], backends: [1] })
  t.equal(dp.map('frontends').size, 3)
  t.equal(dp.map('revnat').size, 3)
})

t.test('backends map full: RangeError, nothing changed; updates still work', async (t) => {
  const dp = makeDataplane({ capacity: { backends: 2 } })
  addBackends(dp, 2)
  const before = snapshot(dp)
  t.throws(() => dp.upsertBackend({ id: 3, address: '10.1.0.3', port: 8080 }), {
    name: 'RangeError',
    message: /backend 3: backends map is full \(capacity 2\)/,
  })
  t.strictSame(snapshot(dp), before)
  dp.upsertBackend({ id: 2, address: '10.1.0.22', port: 9090, weight: 4 })
  t.strictSame(dp.backends().map((b) => [b.id, b.address, b.port, b.weight]), [[1, '10.1.0.1', 8080, 1], [2, '10.1.0.22', 9090, 4]])
  dp.deleteBackend(1)
  dp.upsertBackend({ id: 3, address: '10.1.0.3', port: 8080 })
  t.strictSame(dp.backends().map((b) => b.id).sort(), [2, 3])
})
