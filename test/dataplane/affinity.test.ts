// ClientIP session affinity: one client sticks to one backend across connections while the
// entry is younger than the service's timeout (in virtual time), with every scheduler; an
// entry whose backend can no longer take new flows is ignored.
import t from 'tap'
import type { Dataplane, SchedulerName } from '../../lib/index.js'
import { VIP, addBackends, frontend, makeDataplane } from './helpers/fixtures.js'

const SCHEDULERS: SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']
const A = '192.168.7.1'
const B = '192.168.7.2'

function setup(scheduler: SchedulerName, affinityTimeout = 60): Dataplane {
  const dp = makeDataplane({ maglevTableSize: 251 })
  addBackends(dp, 5, 1, [1, 2, 3, 4, 5])
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4, 5], scheduler, affinityTimeout })
  return dp
}

const connect = (dp: Dataplane, src: string, sport: number, now: number, dst = VIP) =>
  dp.decide({ src, sport, dst, dport: 80, protocol: 'TCP' }, now)

for (const scheduler of SCHEDULERS) {
  t.test(`${scheduler}: a client sticks to its backend until the timeout passes`, async (t) => {
    const dp = setup(scheduler)
    const first = connect(dp, A, 1000, 0)
    t.strictSame([first.verdict, first.affinityHit], ['forward', false])
    const x = first.backendId
    t.strictSame(dp.affinity(), [{ client: A, serviceId: 1, backendId: x, lastUsed: 0 }])
    for (let k = 1; k <= 10; k++) {
      const d = connect(dp, A, 1000 + k, k)
      t.strictSame([d.backendId, d.affinityHit, d.established], [x, true, false], `connection ${k} (new source port)`)
    }
    t.strictSame(dp.affinity(), [{ client: A, serviceId: 1, backendId: x, lastUsed: 10 }], 'each use refreshes the entry')
    // The timeout runs from the last use.
    const late = connect(dp, A, 2000, 10 + 59.999)
    t.strictSame([late.backendId, late.affinityHit], [x, true], 'still within the timeout')
    const expired = connect(dp, A, 2001, 10 + 59.999 + 60)
    t.equal(expired.affinityHit, false, 'past the timeout: chosen afresh')
    t.equal(expired.verdict, 'forward')
    t.strictSame(dp.affinity(), [{ client: A, serviceId: 1, backendId: expired.backendId, lastUsed: 10 + 59.999 + 60 }], 'a new entry for the new choice')
    if (scheduler === 'rr' || scheduler === 'wrr') t.not(expired.backendId, x, `${scheduler} moved on to another backend`)
    if (scheduler === 'lc' || scheduler === 'wlc') t.not(expired.backendId, x, `${scheduler} avoids the backend holding all 13 connections`)
    // Another client has its own entry.
    const other = connect(dp, B, 1000, 200)
    t.equal(other.affinityHit, false)
    t.equal(connect(dp, B, 1001, 201).backendId, other.backendId)
    t.equal(dp.affinity().length, 2)
    const s = dp.map('affinity').stats
    t.strictSame([s.hits, s.misses, s.expirations], [12, 3, 1])
  })
}

t.test('an affinity entry is ignored when its backend no longer takes new flows', async (t) => {
  for (const change of ['terminating', 'removed from the service'] as const) {
    const dp = setup('random')
    const x = connect(dp, A, 1, 0).backendId
    t.equal(connect(dp, A, 2, 1).affinityHit, true)
    if (change === 'terminating') dp.upsertBackend({ id: x, address: `10.1.0.${x}`, port: 8080, state: 'terminating', weight: x })
    else dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4, 5].filter((b) => b !== x), scheduler: 'random', affinityTimeout: 60 })
    const d = connect(dp, A, 3, 2)
    t.strictSame([d.verdict, d.affinityHit], ['forward', false], `${change}: not an affinity hit`)
    t.not(d.backendId, x, `${change}: another backend`)
    t.strictSame(dp.affinity().map((a) => a.backendId), [d.backendId], `${change}: the entry now names the new backend`)
    const again = connect(dp, A, 4, 3)
    t.strictSame([again.backendId, again.affinityHit], [d.backendId, true], `${change}: and sticks to it`)
    // The old flow to x keeps x: conntrack, not affinity, decides established flows.
    const old = connect(dp, A, 1, 4)
    t.strictSame([old.backendId, old.established, old.affinityHit], [x, true, false])
  }
})

t.test('deleting a backend drops the affinity entries that name it', async (t) => {
  const dp = setup('rr')
  connect(dp, A, 1, 0) // backend 1
  connect(dp, B, 1, 0) // backend 2
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [2, 3, 4, 5], scheduler: 'rr', affinityTimeout: 60 })
  dp.deleteBackend(1)
  t.strictSame(dp.affinity().map((a) => [a.client, a.backendId]), [[B, 2]])
  t.equal(dp.map('affinity').stats.deletes, 1)
})

t.test('affinity is per (client, service)', async (t) => {
  const dp = setup('rr')
  dp.upsertService({ id: 2, frontends: [frontend('172.30.0.11')], backends: [1, 2, 3, 4, 5], scheduler: 'rr', affinityTimeout: 60 })
  connect(dp, B, 1, 0) // service 1, backend 1
  const s1 = connect(dp, A, 1, 0).backendId // service 1, backend 2
  const s2 = connect(dp, A, 2, 0, '172.30.0.11').backendId // service 2, backend 1
  t.strictSame([s1, s2], [2, 1])
  t.equal(connect(dp, A, 3, 1).backendId, 2)
  t.equal(connect(dp, A, 4, 1, '172.30.0.11').backendId, 1)
  t.strictSame(dp.affinity().map((a) => [a.client, a.serviceId, a.backendId]).sort(), [[A, 1, 2], [A, 2, 1], [B, 1, 1]])
  // Deleting a service drops its entries only.
  dp.deleteService(2)
  t.strictSame(dp.affinity().map((a) => a.serviceId).sort(), [1, 1])
})

t.test('established flows do not consult the affinity map', async (t) => {
  const dp = setup('random')
  connect(dp, A, 1, 0)
  const before = dp.map('affinity').stats
  for (let k = 1; k <= 5; k++) t.equal(connect(dp, A, 1, k).established, true)
  t.strictSame(dp.map('affinity').stats, before)
  t.equal(dp.affinity()[0].lastUsed, 0, 'packets of a tracked flow do not refresh the entry')
})

t.test('gc removes expired affinity entries', async (t) => {
  const dp = setup('random', 30)
  connect(dp, A, 1, 0)
  connect(dp, B, 1, 10)
  t.strictSame(dp.gc(29.9), { flows: 0, affinity: 0 })
  t.strictSame(dp.gc(30).affinity, 1)
  t.strictSame(dp.affinity().map((a) => a.client), [B])
  t.strictSame(dp.gc(40).affinity, 1)
  t.strictSame(dp.affinity(), [])
  t.equal(dp.map('affinity').stats.expirations, 2)
})

t.test('turning affinity off stops its use; gc clears the leftovers', async (t) => {
  const dp = setup('rr')
  connect(dp, A, 1, 0)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4, 5], scheduler: 'rr', affinityTimeout: 0 })
  const d = connect(dp, A, 2, 1)
  const e = connect(dp, A, 3, 1)
  t.strictSame([d.affinityHit, e.affinityHit], [false, false])
  t.not(d.backendId, e.backendId, 'plain rr: consecutive connections of one client take turns')
  t.strictSame(dp.gc(1).affinity, 1, 'the old entry is expired for a service without affinity')
  t.strictSame(dp.affinity(), [])
})

t.test('a shorter timeout set on the service applies to existing entries', async (t) => {
  const dp = setup('rr', 3600)
  const x = connect(dp, A, 1, 0).backendId
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4, 5], scheduler: 'rr', affinityTimeout: 5 })
  t.strictSame([connect(dp, A, 2, 4.9).affinityHit, connect(dp, A, 3, 4.9).backendId], [true, x])
  t.equal(connect(dp, A, 4, 9.9).affinityHit, false)
})
