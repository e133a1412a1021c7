// The IPVS schedulers on their own: who gets a new connection, and that weight 0 gets none
// (or, for the hash schedulers, refuses the clients hashed to it, as the kernel does).
import t from 'tap'
import { createScheduler, type Destination } from '../../lib/ipvs/schedulers.js'
import { IPVS_SCHEDULERS, FLAG_SOURCE_HASH } from '../../lib/ipvs/types.js'

const dest = (n: number, weight = 1, activeConns = 0, inactiveConns = 0): Destination => ({ address: `10.0.0.${n}`, port: 80, weight, activeConns, inactiveConns })
const at = (src: string, sport = 1000, dst = '172.30.0.1') => ({ src, sport, dst })
const names = (ds: (Destination | undefined)[]) => ds.map((d) => d?.address ?? '-')

t.test('rr and wrr', async (t) => {
  const rr = createScheduler('rr', 0)
  const ds = [dest(1), dest(2, 0), dest(3)]
  t.same(names([1, 2, 3, 4].map(() => rr.pick(ds, at('1.1.1.1')))), ['10.0.0.1', '10.0.0.3', '10.0.0.1', '10.0.0.3'], 'rr skips weight 0')
  const wrr = createScheduler('wrr', 0)
  const weighted = [dest(1, 3), dest(2, 1)]
  const picks = names(Array.from({ length: 8 }, () => wrr.pick(weighted, at('1.1.1.1'))))
  t.equal(picks.filter((a) => a === '10.0.0.1').length, 6, 'wrr: 3 of 4 to the weight-3 server')
  t.equal(createScheduler('wrr', 0).pick([dest(1, 0)], at('1.1.1.1')), undefined)
})

t.test('least-connection family', async (t) => {
  const ds = [dest(1, 1, 2, 0), dest(2, 1, 1, 5), dest(3, 3, 2, 0), dest(4, 0, 0, 0)]
  t.equal(createScheduler('lc', 0).pick(ds, at('1.1.1.1'))?.address, '10.0.0.2', 'lc: fewest (active*256 + inactive)')
  t.equal(createScheduler('wlc', 0).pick(ds, at('1.1.1.1'))?.address, '10.0.0.3', 'wlc: per weight')
  t.equal(createScheduler('sed', 0).pick(ds, at('1.1.1.1'))?.address, '10.0.0.3', 'sed: (active+1)/weight')
  t.equal(createScheduler('nq', 0).pick([...ds, dest(5, 1, 0, 9)], at('1.1.1.1'))?.address, '10.0.0.5', 'nq: an idle server first')
  t.equal(createScheduler('lc', 0).pick([dest(4, 0)], at('1.1.1.1')), undefined, 'weight 0 never')
})

t.test('source and destination hashing keep a client on one server; a weight-0 slot refuses', async (t) => {
  const ds = [dest(1), dest(2), dest(3)]
  for (const name of ['sh', 'mh'] as const) {
    const s = createScheduler(name, 0)
    const clients = Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 1}`)
    const first = clients.map((c) => s.pick(ds, at(c))?.address)
    t.same(clients.map((c) => s.pick(ds, at(c, 2000))?.address), first, `${name}: same client, same server`)
    t.ok(new Set(first).size > 1, `${name}: clients spread`)
  }
  const sh = createScheduler('sh', 0)
  const drained = [dest(1), dest(2, 0), dest(3)]
  const results = Array.from({ length: 30 }, (_, i) => sh.pick(drained, at(`198.51.100.${i}`)))
  t.ok(results.includes(undefined), 'sh without sh-fallback: clients hashed to the weight-0 server are refused')
  t.notOk(results.some((d) => d?.address === '10.0.0.2'))
  const mh = createScheduler('mh', 0)
  t.notOk(Array.from({ length: 30 }, (_, i) => mh.pick(drained, at(`198.51.100.${i}`))).some((d) => d === undefined || d.address === '10.0.0.2'), 'mh leaves weight 0 out of its table')
  const port = createScheduler('mh', FLAG_SOURCE_HASH)
  t.ok(new Set(Array.from({ length: 20 }, (_, i) => port.pick(ds, at('192.0.2.1', 3000 + i))?.address)).size > 1, 'mh-port: the source port counts')
  const dh = createScheduler('dh', 0)
  t.equal(new Set(Array.from({ length: 10 }, (_, i) => dh.pick(ds, at(`192.0.2.${i}`))?.address)).size, 1, 'dh: one server per destination address')
})

t.test('locality-based: one server per destination until it is overloaded', async (t) => {
  const ds = [dest(1), dest(2)]
  const lblc = createScheduler('lblc', 0)
  const a = lblc.pick(ds, at('192.0.2.1'))!
  a.activeConns = 1
  t.equal(lblc.pick(ds, at('192.0.2.2')), a, 'sticks to the destination address')
  a.activeConns = 5
  t.not(lblc.pick(ds, at('192.0.2.3')), a, 'overloaded while another is at half load: moves')
})

t.test('every scheduler kube-proxy accepts is implemented', async (t) => {
  for (const name of IPVS_SCHEDULERS) t.ok(createScheduler(name, 0).pick([dest(1)], at('1.1.1.1')), name)
})
