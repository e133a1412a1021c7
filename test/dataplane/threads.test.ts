// Dataplane({ threads: N }) through the tuple API: decide, decideV4, decideBatch, lookupFlow
// and every inspection call agree with a one-thread Dataplane for flows from many clients in
// both directions (Maglev picks backends from the flow alone, so the shards pick as one does);
// session affinity follows a client across shards; bad `threads` values are refused.
import t from 'tap'
import { Dataplane, DecisionBatch, FlowBatch } from '../../lib/index.js'
import type { Decision, Flow } from '../../lib/index.js'
import { addBackends, frontend, makeDataplane, VIP } from './helpers/fixtures.js'

const VIP2 = '172.30.0.11'

function setUp(threads: number): Dataplane {
  const dp = makeDataplane({ threads })
  addBackends(dp, 6)
  dp.upsertService({ id: 1, frontends: [frontend(VIP), frontend(VIP, 53, 'UDP')], backends: [1, 2, 3, 4], scheduler: 'maglev' })
  dp.upsertService({ id: 2, frontends: [frontend(VIP2)], backends: [5, 6], scheduler: 'sh' })
  dp.upsertService({ id: 3, frontends: [frontend('172.30.0.12')], backends: [] })
  return dp
}

function clientFlows(): Flow[] {
  const flows: Flow[] = []
  for (let k = 0; k < 400; k++) {
    const src = k % 4 === 0 ? '192.168.9.9' : `192.168.${1 + (k >> 6)}.${(k & 63) + 1}`
    const dst = k % 5 === 0 ? VIP2 : k % 17 === 0 ? '172.30.0.12' : k % 19 === 0 ? '172.31.0.1' : VIP
    flows.push({ src, sport: 10000 + k, dst, dport: k % 3 === 0 && dst === VIP ? 53 : 80, protocol: k % 3 === 0 && dst === VIP ? 'UDP' : 'TCP', tcpFlags: 0x02 })
  }
  return flows
}

/** The reply of a forwarded flow: from its backend back to the client. */
function replyOf(f: Flow, d: Decision): Flow {
  return { src: d.address, sport: d.port, dst: f.src, dport: f.sport, protocol: f.protocol, tcpFlags: 0x12 }
}

const ipv4 = (a: string) => a.split('.').reduce((n, x) => n * 256 + Number(x), 0)

t.test('threads 1, 2 and 5 decide every flow alike, originals and replies, single, V4 and batch', async (t) => {
  const flows = clientFlows()
  const one = setUp(1)
  const want = flows.map((f) => one.decide(f, 1))
  t.ok(want.some((d) => d.verdict === 'forward') && want.some((d) => d.verdict === 'reject') && want.some((d) => d.verdict === 'pass'))
  const replies = flows.map((f, i) => (want[i].verdict === 'forward' ? replyOf(f, want[i]) : null)).filter((f): f is Flow => f !== null)
  const wantReplies = replies.map((f) => one.decide(f, 2))
  t.ok(wantReplies.every((d) => d.verdict === 'reply' && d.established), 'replies find their flows')
  const v4 = (dp: Dataplane, f: Flow) => [dp.decideV4(ipv4(f.src), f.sport, ipv4(f.dst), f.dport, f.protocol === 'TCP' ? 6 : 17, 3, 0x10), ...dp.decisionV4]
  const wantV4 = flows.map((f) => v4(one, f))
  const batchOf = (fs: Flow[]) => {
    const b = new FlowBatch(fs.length)
    for (const f of fs) b.push(f)
    return b
  }
  const fresh = flows.map((f) => ({ ...f, sport: f.sport + 20000 }))
  const wantBatch = new DecisionBatch(fresh.length + replies.length)
  one.decideBatch(batchOf([...fresh, ...replies]), 4, wantBatch)

  for (const threads of [1, 2, 5]) {
    const dp = setUp(threads)
    t.strictSame(flows.map((f) => dp.decide(f, 1)), want, `threads ${threads}: new flows`)
    t.strictSame(replies.map((f) => dp.decide(f, 2)), wantReplies, `threads ${threads}: replies`)
    t.strictSame(flows.map((f) => v4(dp, f)), wantV4, `threads ${threads}: decideV4`)
    const got = new DecisionBatch(fresh.length + replies.length)
    dp.decideBatch(batchOf([...fresh, ...replies]), 4, got)
    t.strictSame(Buffer.compare(got.buffer, wantBatch.buffer), 0, `threads ${threads}: decideBatch, decisions in the caller's order`)
    t.strictSame(replies.map((f) => dp.lookupFlow(f)), replies.map((f) => one.lookupFlow(f)), `threads ${threads}: lookupFlow by the reply tuple`)
    const key = (f: { src: string; sport: number; protocol: string }) => `${f.src}:${f.sport}/${f.protocol}`
    t.strictSame([...dp.flows(100)].map(key).sort(), [...one.flows()].map(key).sort(), `threads ${threads}: flows() over every shard`)
    t.strictSame(dp.counters(), one.counters(), `threads ${threads}: counters`)
    t.strictSame([dp.services(), dp.frontends(), dp.revnat(), dp.maglevTable(1)], [one.services(), one.frontends(), one.revnat(), one.maglevTable(1)])
    t.strictSame(dp.backends().map((b) => b.activeConnections), one.backends().map((b) => b.activeConnections), `threads ${threads}: active connections summed`)
    const size = (d: Dataplane) => d.maps().map((m) => [m.name, m.size])
    t.strictSame(size(dp), size(one), `threads ${threads}: map sizes`)
    dp.destroy()
  }
  // The control path on every shard: deleting by backend and flushing count over all of them.
  const dp = setUp(3)
  flows.forEach((f) => dp.decide(f, 1))
  flows.forEach((f) => one.decide({ ...f, sport: f.sport + 40000 }, 1))
  const twin = setUp(1)
  flows.forEach((f) => twin.decide(f, 1))
  t.equal(dp.deleteFlowsByBackend(1), twin.deleteFlowsByBackend(1))
  t.equal(dp.deleteFlowsByService(2), twin.deleteFlowsByService(2))
  t.strictSame(dp.gc(1e6, 100000), twin.gc(1e6, 100000), 'gc expires the same flows')
  t.equal(dp.flushConntrack(), twin.flushConntrack())
  t.equal([...dp.flows()].length, 0)
  for (const d of [dp, twin, one]) d.destroy()
})

t.test('a refused update changes no shard; updates reach every shard', async (t) => {
  const dp = setUp(4)
  const before = dp.services()
  t.throws(() => dp.upsertService({ id: 9, frontends: [frontend(VIP)], backends: [1] }), { code: 'CONFLICT' })
  t.throws(() => dp.upsertBatch({ services: [{ id: 10, frontends: [frontend('172.30.0.20')], backends: [99] }] }), { code: 'NOT_FOUND' })
  t.strictSame(dp.services(), before)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [6], scheduler: 'maglev' })
  // Flows from many clients land on every shard; each shard now picks backend 6.
  const picks = new Set(Array.from({ length: 64 }, (_, k) => dp.decide({ src: `10.9.${k}.1`, sport: 999 + k, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId))
  t.strictSame([...picks], [6])
  dp.destroy()
})

t.test('session affinity follows one client across the shards', async (t) => {
  const dp = makeDataplane({ threads: 4 })
  addBackends(dp, 8)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4, 5, 6, 7, 8], scheduler: 'rr', affinityTimeout: 100 })
  const picks = new Set(Array.from({ length: 40 }, (_, k) => dp.decide({ src: '192.168.5.5', sport: 2000 + k, dst: VIP, dport: 80, protocol: 'TCP' }, 1).backendId))
  t.equal(picks.size, 1, 'one backend for all 40 flows of the client')
  t.equal(dp.affinity().length, 1)
  t.equal(dp.map('affinity').size, 1, 'the shards share one affinity map')
  dp.destroy()
})

t.test('threads must be an integer 1..64', async (t) => {
  for (const bad of [0, 65, 1.5, -1, NaN, '2', null, 2n])
    t.throws(() => new Dataplane({ threads: bad as never }), { name: 'RangeError', code: 'INVALID', message: /^threads must be an integer 1\.\.64/ }, `threads ${String(bad)}`)
  t.equal(new Dataplane().threads, 1)
  const dp = makeDataplane({ threads: 64, capacity: { conntrack: 640, natPorts: 640, fragments: 64, affinity: 64 } })
  t.equal(dp.threads, 64)
  t.equal(dp.map('conntrack').capacity >= 640, true, 'the flow capacity divided over the 64 shards')
  dp.destroy()
})
