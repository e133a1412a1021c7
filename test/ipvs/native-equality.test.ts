// The ipvs mode's packets decided on the native hash core equal the TypeScript IPVS model's
// (ipvs.dataplane 'typescript') for random clusters, scheduler by scheduler: the same real
// server for every new connection and every later packet, the same refusals, and the same
// ipvsadm state at the end. rr and wrr also see connections close, clients reuse ports and
// endpoints drain with weight 0 while their connections live; lc and wlc compare on
// connection counts (new connections only: the core counts every tracked flow, IPVS weighs
// established ones 256 times); sh and dh hash with the core's keyed hash in both. The
// kernel's sh/dh refuse a client whose bucket belongs to a weight-0 server where the core has
// left it out of the table, so those two run without draining (docs/ipvs.md says so).
import t from 'tap'
import fc from 'fast-check'
import { Proxier } from '../../lib/modes/index.js'
import type { IpvsScheduler } from '../../lib/ipvs/types.js'
import type { Packet } from '../../lib/proxy/packet.js'
import { seededRandom } from '../../lib/util/random.js'
import { clusterArb, nodeOptionsFor, objectsOf, packetsFor, type ClusterSpec } from '../fixtures/random-cluster.js'

const SYN = 0x02
const ACK = 0x10
const FIN = 0x01
const RST = 0x04

function pair(c: ClusterSpec, scheduler: IpvsScheduler) {
  const make = (dataplane: 'native' | 'typescript') => {
    const p = new Proxier({ ...nodeOptionsFor(c), mode: 'ipvs', ipvs: { scheduler, dataplane } })
    p.applyList(objectsOf(c))
    p.sync()
    return p
  }
  return { native: make('native'), ts: make('typescript') }
}

/** Follow-up packets of earlier connections: more data, FINs, RSTs and SYNs reusing the port. */
function followUps(first: Packet[], rand: () => number, now: number): Packet[] {
  return first.filter((p) => p.protocol === 'TCP' && rand() < 0.6).map((p) => ({ ...p, now, tcpFlags: [ACK, ACK, FIN | ACK, RST, SYN][Math.floor(rand() * 5)]! }))
}

const drains = (s: IpvsScheduler) => s === 'rr' || s === 'wrr'
const countsOnly = (s: IpvsScheduler) => s === 'lc' || s === 'wlc'

for (const scheduler of ['rr', 'wrr', 'lc', 'wlc', 'sh', 'dh'] as const) {
  t.test(`${scheduler}: native decisions equal the TypeScript model's`, async (t) => {
    const clusters = fc.sample(clusterArb, { seed: 16, numRuns: 12 })
    let compared = 0
    let native = 0
    for (const [i, c] of clusters.entries()) {
      const { native: n, ts } = pair(c, scheduler)
      t.ok(n.inspect().mode === 'ipvs' && (n.inspect() as { native?: unknown }).native !== undefined, 'the native core decides')
      const rand = seededRandom(c.seed)
      const decide = (packets: Packet[]) => {
        const a = packets.map((p) => n.route(p))
        const b = packets.map((p) => ts.route(p))
        compared += packets.length
        native += a.filter((r) => r.action === 'dnat').length
        return { a, b }
      }
      const syn = (ps: Packet[]) => ps.map((p) => (p.protocol === 'TCP' ? { ...p, tcpFlags: SYN } : p))
      const first = syn(packetsFor(n, c, 60, rand, 10000, 1))
      let r = decide(first)
      t.same(r.a, r.b, `cluster ${i}: new connections`)
      if (countsOnly(scheduler)) {
        r = decide(syn(packetsFor(n, c, 60, rand, 20000, 2)))
        t.same(r.a, r.b, `cluster ${i}: more new connections, on the counts so far`)
      } else {
        r = decide(followUps(first, rand, 2))
        t.same(r.a, r.b, `cluster ${i}: later packets of those connections`)
      }
      if (drains(scheduler)) {
        // One endpoint changes its state: a removed TCP real server drains with weight 0.
        const flip = Math.floor(rand() * 16)
        for (const p of [n, ts]) {
          p.applyList(objectsOf(c, flip))
          p.sync()
        }
        r = decide([...followUps(first, rand, 3), ...syn(packetsFor(n, c, 40, rand, 30000, 3))])
        t.same(r.a, r.b, `cluster ${i}: after endpoint ${flip} changed`)
      }
      t.same(n.ipvsState().virtualServers, ts.ipvsState().virtualServers, `cluster ${i}: the same virtual and real servers`)
      t.equal(n.ipvs!.ipvsadm(), ts.ipvs!.ipvsadm(), `cluster ${i}: the same ipvsadm -Ln (weights, ActiveConn, InActConn)`)
    }
    t.ok(native > compared / 10, `a good part of the ${compared} packets were forwarded (${native})`)
  })
}

t.test('schedulers the core lacks are decided by the TypeScript model, and explain() says so', async (t) => {
  const c = fc.sample(clusterArb, { seed: 3, numRuns: 1 })[0]!
  for (const scheduler of ['sed', 'nq', 'lblc', 'lblcr', 'mh'] as const) {
    const p = new Proxier({ ...nodeOptionsFor(c), mode: 'ipvs', ipvs: { scheduler } })
    p.applyList(objectsOf(c))
    p.sync()
    t.equal((p.inspect() as { native?: unknown }).native, undefined, `${scheduler}: no native core`)
  }
})
