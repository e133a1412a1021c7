// The batch path: decideBatch over a FlowBatch into a DecisionBatch must decide exactly as
// decide() does, flow by flow, and leave the maps in the same state; bad arguments throw.
import t from 'tap'
import { DecisionBatch, FlowBatch, TCP_FLAGS } from '../../lib/index.js'
import type { Dataplane, Decision, Flow, SchedulerName } from '../../lib/index.js'
import { CLIENT, VIP, addBackends, decideBoth, fromBatch, frontend, makeDataplane, openedFlows, prng, snapshot, toVip } from './helpers/fixtures.js'

const { SYN, ACK } = TCP_FLAGS

/** Services with every scheduler whose choice does not depend on flows still being decided. */
const SERVICES: Array<{ id: number; vip: string; scheduler: SchedulerName; affinityTimeout?: number }> = [
  { id: 1, vip: '172.30.0.1', scheduler: 'random' },
  { id: 2, vip: '172.30.0.2', scheduler: 'maglev' },
  { id: 3, vip: '172.30.0.3', scheduler: 'rr' },
  { id: 4, vip: '172.30.0.4', scheduler: 'wrr' },
  { id: 5, vip: '172.30.0.5', scheduler: 'sh' },
  { id: 6, vip: '172.30.0.6', scheduler: 'dh' },
  { id: 7, vip: '172.30.0.7', scheduler: 'random', affinityTimeout: 20 },
]

function build(): Dataplane {
  const dp = makeDataplane({ seed: 99n, rngSeed: 77n, maglevTableSize: 1009, capacity: { conntrack: 8192 } })
  addBackends(dp, 6, 1, [1, 2, 3, 1, 2, 3])
  dp.upsertBackend({ id: 50, address: 'fd00::50', port: 8080 })
  for (const s of SERVICES)
    dp.upsertService({ id: s.id, frontends: [frontend(s.vip), frontend(s.vip, 53, 'UDP')], backends: [1, 2, 3, 4, 5, 6], scheduler: s.scheduler, affinityTimeout: s.affinityTimeout ?? 0 })
  dp.upsertService({ id: 8, frontends: [frontend('fd00:ffff::8', 443)], backends: [50] })
  dp.upsertService({ id: 9, frontends: [frontend('172.30.0.9')], backends: [] }) // reject
  return dp
}

const key = (f: Flow) => `${f.protocol} ${f.src}:${f.sport} ${f.dst}:${f.dport}`

/** Mixed traffic: new flows, packets and replies of flows seen in earlier batches, strays. No tuple twice in a batch. */
class Traffic {
  private readonly rnd = prng(4242)
  private nextPort = 10000
  private readonly known: Array<{ orig: Flow; reply: Flow }> = []

  batch(n: number): Flow[] {
    const out: Flow[] = []
    const used = new Set<string>()
    while (out.length < n) {
      const r = this.rnd()
      let f: Flow
      let flowKey: string
      if (r < 0.4 || this.known.length === 0) {
        const s = SERVICES[Math.floor(this.rnd() * SERVICES.length)]
        const udp = this.rnd() < 0.25
        f = { src: `192.168.${Math.floor(this.rnd() * 4)}.${1 + Math.floor(this.rnd() * 20)}`, sport: this.nextPort++, dst: s.vip, dport: udp ? 53 : 80, protocol: udp ? 'UDP' : 'TCP', tcpFlags: udp ? 0 : SYN, bytes: 60 }
        flowKey = key(f)
      } else if (r < 0.75) {
        const k = this.known[Math.floor(this.rnd() * this.known.length)]
        f = { ...k.orig, tcpFlags: k.orig.protocol === 'TCP' ? ACK : 0, bytes: 100 }
        flowKey = key(k.orig)
      } else if (r < 0.9) {
        const k = this.known[Math.floor(this.rnd() * this.known.length)]
        f = { ...k.reply, tcpFlags: k.reply.protocol === 'TCP' ? SYN | ACK : 0, bytes: 1500 }
        flowKey = key(k.orig)
      } else if (r < 0.94) {
        f = { src: 'fd00:1::7', sport: this.nextPort++, dst: 'fd00:ffff::8', dport: 443, protocol: 'TCP', tcpFlags: SYN }
        flowKey = key(f)
      } else if (r < 0.97) {
        f = { ...toVip(this.nextPort++), dst: '172.30.0.9' }
        flowKey = key(f)
      } else {
        f = { ...toVip(this.nextPort++), dst: '172.31.0.1', scope: 'internal' }
        flowKey = key(f)
      }
      if (used.has(flowKey)) continue
      used.add(flowKey)
      out.push(f)
    }
    return out
  }

  /** Remember forwarded flows so later batches send their packets and replies. */
  learn(flows: Flow[], decisions: Decision[]): void {
    this.known.push(...openedFlows(flows, decisions))
  }
}

t.test('decideBatch decides exactly like decide(), for n = 1, 16, 17, 1000', async (t) => {
  const single = build()
  const batched = build()
  const traffic = new Traffic()
  let now = 1
  const verdicts = new Set<string>()
  for (const n of [1, 16, 17, 1000, 1, 17, 16, 1000]) {
    const flows = traffic.batch(n)
    const expected = decideBoth(t, single, batched, flows, now, 3) // an out batch larger than needed is fine
    for (const d of expected) verdicts.add(`${d.verdict}${d.established ? '+est' : ''}${d.affinityHit ? '+aff' : ''}`)
    traffic.learn(flows, expected)
    now += n === 1000 ? 25 : 1 // some UDP flows (30 s) and affinity entries (20 s) expire along the way
  }
  for (const v of ['forward', 'forward+est', 'forward+aff', 'reply+est', 'pass', 'reject']) t.ok(verdicts.has(v), `the traffic exercised ${v}`)
})

t.test('buffers are reusable: rewrite flags and ports in place', async (t) => {
  const dp = build()
  const fb = new FlowBatch(16)
  for (let i = 0; i < 16; i++) fb.push({ src: CLIENT, sport: 20000 + i, dst: '172.30.0.3', dport: 80, protocol: 'TCP', tcpFlags: SYN })
  const out = new DecisionBatch(16)
  dp.decideBatch(fb, 1, out)
  t.strictSame(Array.from({ length: 16 }, (_, i) => [out.verdict(i), out.established(i)]), Array(16).fill(['forward', false]))
  t.strictSame(Array.from({ length: 6 }, (_, i) => out.backendId(i)), [1, 2, 3, 4, 5, 6], 'rr in order across the batch')
  for (let i = 0; i < 16; i++) fb.setTcpFlags(i, ACK)
  dp.decideBatch(fb, 2, out)
  t.ok(Array.from({ length: 16 }, (_, i) => out.established(i)).every(Boolean), 'the same flows, now established')
  t.equal(dp.lookupFlow({ src: CLIENT, sport: 20000, dst: '172.30.0.3', dport: 80, protocol: 'TCP' })!.state, 'established')
  for (let i = 0; i < 16; i++) fb.setSourcePort(i, 30000 + i)
  dp.decideBatch(fb, 3, out)
  t.ok(Array.from({ length: 16 }, (_, i) => !out.established(i)).every(Boolean), 'new source ports: new flows')
  t.equal(dp.map('conntrack').size, 32)
  // Only the first `length` flows are decided.
  const part = new FlowBatch(8)
  part.push(toVip(1))
  part.push(toVip(2))
  t.equal(part.length, 2)
  t.equal(dp.decideBatch(part, 4, new DecisionBatch(2)), 2)
  t.equal(dp.decideBatch(new FlowBatch(4), 4, new DecisionBatch(1)), 0, 'an empty batch decides nothing')
})

t.test('bad arguments throw and change nothing', async (t) => {
  const dp = build()
  dp.decide(toVip(1), 1)
  const before = snapshot(dp)
  const fb = FlowBatch.from([toVip(2), toVip(3)])
  const cases: Array<[string, () => unknown, { name: string; message: RegExp }]> = [
    ['flows null', () => dp.decideBatch(null as never, 1, new DecisionBatch(2)), { name: 'TypeError', message: /flows must be a FlowBatch/ }],
    ['flows an array', () => dp.decideBatch([toVip(2)] as never, 1, new DecisionBatch(2)), { name: 'TypeError', message: /flows must be a FlowBatch/ }],
    ['flows look-alike', () => dp.decideBatch({ buffer: fb.buffer, length: 2, capacity: 2 } as never, 1, new DecisionBatch(2)), { name: 'TypeError', message: /flows must be a FlowBatch/ }],
    ['out a Uint8Array', () => dp.decideBatch(fb, 1, new Uint8Array(64) as never), { name: 'TypeError', message: /out must be a DecisionBatch/ }],
    ['out missing', () => dp.decideBatch(fb, 1, undefined as never), { name: 'TypeError', message: /out must be a DecisionBatch/ }],
    ['out too small', () => dp.decideBatch(fb, 1, new DecisionBatch(1)), { name: 'RangeError', message: /out holds 1 decisions, flows has 2/ }],
    ['now NaN', () => dp.decideBatch(fb, NaN, new DecisionBatch(2)), { name: 'RangeError', message: /now .*NaN/ }],
    ['now negative', () => dp.decideBatch(fb, -1, new DecisionBatch(2)), { name: 'RangeError', message: /now .*-1/ }],
    ['now a string', () => dp.decideBatch(fb, '5' as never, new DecisionBatch(2)), { name: 'RangeError', message: /now .*5/ }],
  ]
  for (const [name, call, error] of cases) {
    t.throws(call, error, name)
    t.strictSame(snapshot(dp), before, `${name}: nothing changed`)
  }
  // A length pushed past the buffer by hand is caught before anything is decided.
  const forged = FlowBatch.from([toVip(2)])
  forged.length = 5
  t.throws(() => dp.decideBatch(forged, 1, new DecisionBatch(5)), { name: 'RangeError' }, 'length beyond the buffer')
  t.strictSame(snapshot(dp), before, 'nothing changed')
  t.equal(dp.decideBatch(fb, 2, new DecisionBatch(2)), 2, 'still works')
})

t.test('FlowBatch and DecisionBatch validate their arguments', async (t) => {
  for (const cap of [0, -1, 1.5, 2 ** 24 + 1, NaN, '4'])
    for (const C of [FlowBatch, DecisionBatch])
      t.throws(() => new C(cap as number), { name: 'RangeError', message: new RegExp(`capacity must be an integer 1\\.\\.16777216, got ${(typeof cap === 'string' ? JSON.stringify(cap) : String(cap)).replace('.', '\\.')}`) }, `${C.name}(${String(cap)})`)
  const fb = new FlowBatch(2)
  t.throws(() => fb.set(2, toVip(1)), { name: 'RangeError', message: /index must be 0\.\.1, got 2/ })
  t.throws(() => fb.set(-1, toVip(1)), { name: 'RangeError', message: /got -1/ })
  t.throws(() => fb.set(0.5, toVip(1)), { name: 'RangeError', message: /got 0\.5/ })
  t.throws(() => fb.set(1, { ...toVip(1), src: '1.2.3' }), { name: 'TypeError', message: /flows\[1\]\.src is not an IP address: "1\.2\.3"/ })
  t.throws(() => fb.set(0, { ...toVip(1), dport: 65536 }), { name: 'RangeError', message: /flows\[0\]\.dport must be an integer 0\.\.65535, got 65536/ })
  t.throws(() => fb.set(0, { ...toVip(1), protocol: 'ICMP' as never }), { name: 'TypeError', message: /flows\[0\]\.protocol .*"ICMP"/ })
  t.equal(fb.length, 0, 'failed writes do not extend the batch')
  fb.push(toVip(1))
  fb.push(toVip(2))
  t.throws(() => fb.push(toVip(3)), { name: 'RangeError', message: /index must be 0\.\.1, got 2/ }, 'push past the capacity')
  t.equal(fb.length, 2)
  t.throws(() => FlowBatch.from([toVip(1), { ...toVip(2), sport: 1.5 }]), { name: 'RangeError', message: /flows\[1\]\.sport .*1\.5/ })
  t.equal(FlowBatch.from([]).length, 0, 'from([]) is an empty batch')
})

// Regressions: bugs found by the test author, fixed; each test reproduces its bug.
t.test('regressions', async (t) => {
  const compare = (scheduler: SchedulerName, flows: Flow[]) => {
    const make = () => {
      const dp = makeDataplane()
      addBackends(dp, 4)
      dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3, 4], scheduler })
      return dp
    }
    const a = make()
    const b = make()
    const expected = flows.map((f) => a.decide(f, 1))
    const out = new DecisionBatch(flows.length)
    b.decideBatch(FlowBatch.from(flows), 1, out)
    return { expected, got: flows.map((_, i) => fromBatch(out, i)) }
  }
  t.test('lc and wlc spread the new flows of one batch', async (t) => {
    for (const scheduler of ['lc', 'wlc'] as SchedulerName[]) {
      const { expected, got } = compare(scheduler, Array.from({ length: 8 }, (_, i) => toVip(1000 + i)))
      t.strictSame(expected.map((d) => d.backendId), [1, 2, 3, 4, 1, 2, 3, 4], `${scheduler}: decide() balances`)
      t.strictSame(got.map((d) => d.backendId), [1, 2, 3, 4, 1, 2, 3, 4], `${scheduler}: decideBatch() balances too`)
    }
  })
  t.test('a new flow seen twice in one batch does not move the scheduler twice', async (t) => {
    const flows = [toVip(1), toVip(1), toVip(2), toVip(3)]
    const { expected, got } = compare('rr', flows)
    t.strictSame(expected.map((d) => [d.backendId, d.established]), [[1, false], [1, true], [2, false], [3, false]])
    t.strictSame(got.map((d) => [d.backendId, d.established]), [[1, false], [1, true], [2, false], [3, false]], 'same as decide()')
  })
  t.test('FlowBatch.setTcpFlags and setSourcePort validate like set()', async (t) => {
    const fb = new FlowBatch(4)
    t.throws(() => fb.setTcpFlags(99, SYN), { name: 'RangeError', message: /index .*99/ }, 'index past the capacity')
    t.throws(() => fb.setTcpFlags(0, 300), { name: 'RangeError', message: /tcpFlags .*300/ }, 'flags above 255')
    t.throws(() => fb.setSourcePort(0, 70000), { name: 'RangeError', message: /sport .*70000/ }, 'port above 65535')
    t.throws(() => fb.setSourcePort(99, 1), { name: 'RangeError', message: /index .*99/ }, 'index past the capacity')
  })
  t.test('every scheduler, with repeats and replies inside one batch: same decisions and maps as decide()', async (t) => {
    const schedulers: SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']
    const make = () => {
      const dp = makeDataplane({ seed: 5n, rngSeed: 6n, maglevTableSize: 1009 })
      addBackends(dp, 4, 1, [1, 2, 3, 1])
      schedulers.forEach((scheduler, k) =>
        dp.upsertService({ id: k + 1, frontends: [frontend(`172.30.1.${k + 1}`)], backends: [1, 2, 3, 4], scheduler, affinityTimeout: k === 0 ? 30 : 0 }))
      return dp
    }
    const single = make()
    const batched = make()
    const rnd = prng(7)
    const flows: Flow[] = []
    for (let i = 0; i < 300; i++) {
      const r = rnd()
      if (r < 0.5 || flows.length === 0) {
        flows.push({ src: `192.168.2.${1 + Math.floor(rnd() * 5)}`, sport: 2000 + Math.floor(rnd() * 40), dst: `172.30.1.${1 + Math.floor(rnd() * 8)}`, dport: 80, protocol: 'TCP', tcpFlags: SYN })
      } else if (r < 0.75) {
        flows.push({ ...flows[Math.floor(rnd() * flows.length)], tcpFlags: ACK }) // the same tuple again, maybe in the same group
      } else {
        const f = flows[Math.floor(rnd() * flows.length)] // a reply, from any backend (only the chosen one is tracked)
        flows.push({ src: `10.1.0.${1 + Math.floor(rnd() * 4)}`, sport: 8080, dst: f.src, dport: f.sport, protocol: 'TCP', tcpFlags: SYN | ACK })
      }
    }
    const expected = flows.map((f) => single.decide(f, 1))
    const out = new DecisionBatch(flows.length)
    batched.decideBatch(FlowBatch.from(flows), 1, out)
    t.strictSame(flows.map((_, i) => fromBatch(out, i)), expected, 'every decision equal')
    t.ok(expected.some((d) => d.verdict === 'reply'), 'the batch has replies')
    t.strictSame(snapshot(batched), snapshot(single), 'the maps are in the same state')
  })
  t.test('DecisionBatch.address is empty for pass, reject and drop, as decide() gives', async (t) => {
    const dp = makeDataplane()
    dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [] })
    const flows = [toVip(1), { ...toVip(2), dst: '172.31.0.1' }]
    const out = new DecisionBatch(2)
    dp.decideBatch(FlowBatch.from(flows), 1, out)
    t.strictSame([out.verdict(0), out.address(0), out.verdict(1), out.address(1)], ['reject', '', 'pass', ''])
    t.strictSame(flows.map((f) => dp.decide(f, 2).address), ['', ''])
  })
  t.test('a reply to a flow opened earlier in the same batch is a reply', async (t) => {
    const { expected, got } = compare('rr', [toVip(1, { tcpFlags: SYN }), { src: '10.1.0.1', sport: 8080, dst: CLIENT, dport: 1, protocol: 'TCP', tcpFlags: SYN | ACK }])
    t.equal(expected[1].verdict, 'reply')
    t.equal(got[1].verdict, 'reply', 'same as decide()')
  })
})
