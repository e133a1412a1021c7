// Flow handoff through the Dataplane API: exportFlows on one dataplane, importFlows on a fresh
// one programmed with other ids (as a restarted process numbers them), flows and affinity
// taken over with their state and timeouts; a gone backend drops its flows; bad blobs change
// nothing.
import t from 'tap'
import { TCP_FLAGS } from '../../lib/index.js'
import { Dataplane } from '../../lib/index.js'
import { CLIENT, VIP, frontend, makeDataplane, snapshot, toVip } from './helpers/fixtures.js'

const { SYN, ACK } = TCP_FLAGS

/** A service at VIP:80 (and VIP:53/UDP) over backends at 10.1.0.<host> with ids from `first`. */
function program(dp: Dataplane, first: number, hosts: number[], affinityTimeout = 0): void {
  hosts.forEach((h, k) => dp.upsertBackend({ id: first + k, address: `10.1.0.${h}`, port: 8080 }))
  dp.upsertService({
    id: first + 100,
    frontends: [frontend(VIP, 80, 'TCP'), frontend(VIP, 53, 'UDP')],
    backends: hosts.map((_, k) => first + k),
    scheduler: 'rr',
    affinityTimeout,
  })
}

t.test('flows and affinity move to a dataplane with other ids', async (t) => {
  const a = makeDataplane()
  program(a, 1, [1, 2, 3], 600)
  const tcp = a.decide({ ...toVip(40000), tcpFlags: SYN }, 1)
  a.decide({ ...toVip(40000), tcpFlags: ACK }, 2)
  const udp = a.decide({ ...toVip(5353, { dport: 53, protocol: 'UDP' }) }, 2)
  const blob = a.exportFlows(10)
  t.ok(blob instanceof Uint8Array)
  t.equal(new TextDecoder().decode(blob.subarray(0, 8)), 'SVCPFLOW')

  const b = makeDataplane()
  program(b, 20, [3, 2, 1], 600) // same addresses, other ids and order
  t.strictSame(b.importFlows(blob, 1000), { imported: 2, dropped: 0, affinityImported: 1, affinityDropped: 0 })
  const before = a.lookupFlow(toVip(40000))!
  const after = b.lookupFlow(toVip(40000))!
  t.equal(after.state, 'established')
  t.equal(after.backendAddress, before.backendAddress)
  t.equal(after.serviceId, 120)
  t.equal(after.expires - 1000, before.expires - 10, 'the remaining timeout carries over')
  t.equal(after.packets, before.packets)
  // The next packet of each flow is established and goes where it went before.
  const next = b.decide({ ...toVip(40000), tcpFlags: ACK }, 1001)
  t.strictSame([next.verdict, next.established, next.address], ['forward', true, tcp.address])
  const reply = b.decide({ src: udp.address, sport: udp.port, dst: CLIENT, dport: 5353, protocol: 'UDP' }, 1001)
  t.strictSame([reply.verdict, reply.address, reply.port], ['reply', VIP, 53])
  t.equal(b.affinity()[0]?.client, CLIENT)
  t.equal(b.affinity()[0]?.serviceId, 120)
})

t.test('a flow whose backend or service is gone is dropped and counted', async (t) => {
  const a = makeDataplane()
  program(a, 1, [1, 2])
  a.decide({ ...toVip(40000), tcpFlags: SYN }, 1)
  a.decide({ ...toVip(40001), tcpFlags: SYN }, 1)
  const blob = a.exportFlows(2)
  const b = makeDataplane()
  program(b, 1, [1]) // 10.1.0.2 is gone
  t.strictSame(b.importFlows(blob, 3), { imported: 1, dropped: 1, affinityImported: 0, affinityDropped: 0 })
  const c = makeDataplane()
  t.strictSame(c.importFlows(blob, 3), { imported: 0, dropped: 2, affinityImported: 0, affinityDropped: 0 }, 'no services at all')
  t.strictSame(a.importFlows(blob, 3).imported, 0, 'flows tracked already are not doubled')
})

t.test('expired flows are not exported', async (t) => {
  const a = makeDataplane()
  program(a, 1, [1])
  a.decide({ ...toVip(40000), tcpFlags: SYN }, 1) // syn_sent: 120 s
  t.equal(a.exportFlows(100).length, 24 + 136)
  t.equal(a.exportFlows(200).length, 24)
})

t.test('bad blobs throw naming the problem and change nothing', async (t) => {
  const a = makeDataplane()
  program(a, 1, [1])
  a.decide({ ...toVip(40000), tcpFlags: SYN }, 1)
  a.decide({ ...toVip(40001), tcpFlags: SYN }, 1)
  const blob = a.exportFlows(2)
  const b = makeDataplane()
  program(b, 1, [1])
  const before = snapshot(b)
  const bad = (f: (x: Uint8Array) => void) => {
    const x = blob.slice()
    f(x)
    return x
  }
  t.throws(() => b.importFlows(bad((x) => (x[0] = 0)), 3), { name: 'RangeError', code: 'INVALID', message: /bad magic/ })
  t.throws(() => b.importFlows(bad((x) => (x[8] = 2)), 3), { name: 'RangeError', message: /version 2 is not supported/ })
  t.throws(() => b.importFlows(blob.subarray(0, blob.length - 1), 3), { name: 'RangeError', message: /header says/ })
  t.throws(() => b.importFlows(blob.subarray(0, 5), 3), { name: 'RangeError', message: /shorter than its header/ })
  t.throws(() => b.importFlows(bad((x) => (x[24 + 136 + 72] = 99)), 3), { name: 'RangeError', message: /flows\[1\]\.protocol/ })
  t.throws(() => b.importFlows(bad((x) => (x[12] = 0xff)), 3), { name: 'RangeError' })
  t.throws(() => b.importFlows([1, 2, 3] as never, 3), { name: 'TypeError', code: 'INVALID' })
  t.throws(() => b.importFlows(blob, -1), { name: 'RangeError' })
  t.throws(() => b.exportFlows(Number.NaN), { name: 'RangeError' })
  t.strictSame(snapshot(b), before, 'nothing half-applied')
  b.destroy()
  t.throws(() => b.exportFlows(1), { code: 'DESTROYED' })
})

t.test('a threaded dataplane refuses the handoff with a clear error, not a crash', async (t) => {
  const dp = new Dataplane({ threads: 2 })
  t.teardown(() => dp.destroy())
  t.throws(() => dp.exportFlows(1), { code: 'WRONG_STATE', message: /exportFlows: .* one thread, this one has 2/ })
  t.throws(() => dp.importFlows(new Uint8Array(24), 1), { code: 'WRONG_STATE', message: /importFlows/ })
})
