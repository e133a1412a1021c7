// The numeric IPv4 fast path: decideV4 over random traffic decides exactly as decide() does
// (two dataplanes with the same seeds, one driven by each) and leaves the same state; bad
// arguments are refused naming the argument, before anything is decided.
import t from 'tap'
import { DECISION_V4, ipv4ToUint32, uint32ToIpv4 } from '../../lib/index.js'
import { REASONS, VERDICTS } from '../../lib/dataplane/codes.js'
import type { Dataplane, Decision, Flow, Protocol, SchedulerName } from '../../lib/index.js'
import { addBackends, frontend, makeDataplane, prng, snapshot } from './helpers/fixtures.js'

const PROTO: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 }
const SCHEDULERS: SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'sh']

function build(): Dataplane {
  const dp = makeDataplane({ seed: 7n, rngSeed: 8n, maglevTableSize: 1009 })
  addBackends(dp, 8)
  SCHEDULERS.forEach((scheduler, i) =>
    dp.upsertService({
      id: i + 1,
      frontends: [frontend(`172.30.0.${i + 1}`), frontend(`172.30.0.${i + 1}`, 53, 'UDP'), frontend(`172.30.0.${i + 1}`, 9, 'SCTP', 'internal')],
      backends: [1, 2, 3, 4, 5, 6, 7, 8].slice(0, 2 + i),
      scheduler,
      affinityTimeout: i === 2 ? 30 : 0,
    }))
  dp.upsertService({ id: 20, frontends: [frontend('172.30.0.20')], backends: [] }) // reject
  dp.upsertService({ id: 21, frontends: [frontend('172.30.0.21')], backends: [], emptyVerdict: 'drop' })
  dp.upsertService({ id: 22, frontends: [{ ...frontend('198.51.100.1'), checkSourceRanges: true }], backends: [1], sourceRanges: ['192.168.0.0/24'] })
  return dp
}

/** What decideV4 left, as decide() spells a Decision. */
function fromV4(dp: Dataplane, verdict: number): Decision {
  const d = dp.decisionV4
  const v = VERDICTS[verdict]
  return {
    verdict: v,
    reason: REASONS[d[DECISION_V4.reason]],
    serviceId: d[DECISION_V4.serviceId],
    backendId: d[DECISION_V4.backendId],
    address: v === 'forward' || v === 'reply' ? uint32ToIpv4(d[DECISION_V4.address]) : '',
    port: d[DECISION_V4.port],
    established: (d[DECISION_V4.flags] & 1) !== 0,
    affinityHit: (d[DECISION_V4.flags] & 2) !== 0,
  }
}

t.test('decideV4 decides as decide() over random traffic, and leaves the same maps', async (t) => {
  const a = build()
  const b = build()
  const rnd = prng(2026)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
  const seen: Flow[] = []
  const replies: Flow[] = []
  let mismatches = 0
  for (let step = 0, now = 1; step < 20_000; step++, now += rnd() * 0.5) {
    const r = rnd()
    let f: Flow
    if (r < 0.35 || seen.length === 0) {
      const protocol = pick(['TCP', 'TCP', 'UDP', 'SCTP'] as const)
      const dport = { TCP: 80, UDP: 53, SCTP: 9 }[protocol]
      const dst = pick(['172.30.0.1', '172.30.0.2', '172.30.0.3', '172.30.0.4', '172.30.0.5', '172.30.0.6', '172.30.0.20', '172.30.0.21', '198.51.100.1', '203.0.113.9'])
      f = { src: `192.168.${Math.floor(rnd() * 3)}.${1 + Math.floor(rnd() * 250)}`, sport: 1024 + Math.floor(rnd() * 64000), dst, dport, protocol, tcpFlags: Math.floor(rnd() * 256), scope: rnd() < 0.5 ? 'internal' : 'external' }
      seen.push(f)
    } else if (r < 0.8) {
      f = { ...pick(seen), tcpFlags: pick([0x10, 0x18, 0x11, 0x04]) }
    } else {
      // A backend's reply to a flow it was chosen for (or, a tenth of the time, from another backend).
      const o = replies.length && rnd() < 0.9 ? pick(replies) : { ...pick(seen), src: `10.1.0.${1 + Math.floor(rnd() * 8)}`, sport: 8080 }
      f = { ...o, tcpFlags: 0x12 }
    }
    const want = a.decide(f, now)
    const verdict = b.decideV4(ipv4ToUint32(f.src)!, f.sport, ipv4ToUint32(f.dst)!, f.dport, PROTO[f.protocol], now, f.tcpFlags ?? 0, f.scope === 'internal')
    const got = fromV4(b, verdict)
    if (want.verdict === 'forward' && !want.established)
      replies.push({ src: want.address, sport: want.port, dst: f.src, dport: f.sport, protocol: f.protocol })
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      if (mismatches++ < 5) t.strictSame(got, want, `step ${step}: ${JSON.stringify(f)}`)
    }
  }
  t.equal(mismatches, 0, '20,000 decisions equal')
  const verdicts = a.counters().verdicts
  t.ok(verdicts.forward > 1000 && verdicts.reply > 100 && verdicts.reject > 100 && verdicts.drop > 100 && verdicts.pass > 100, `every verdict occurs (${JSON.stringify(verdicts)})`)
  t.strictSame(snapshot(b), snapshot(a), 'the same maps, flows and counters')
})

t.test('bad arguments are refused, naming the argument, and decide nothing', async (t) => {
  const dp = build()
  const ok = [ipv4ToUint32('192.168.0.1')!, 40000, ipv4ToUint32('172.30.0.1')!, 80, 6, 1, 0, false] as const
  const cases: Array<[string, number, unknown, 'RangeError' | 'TypeError']> = [
    ['src', 0, -1, 'RangeError'],
    ['src', 0, 2 ** 32, 'RangeError'],
    ['src', 0, '192.168.0.1', 'RangeError'],
    ['sport', 1, 65536, 'RangeError'],
    ['sport', 1, 1.5, 'RangeError'],
    ['dst', 2, NaN, 'RangeError'],
    ['dport', 3, '80', 'RangeError'],
    ['protocol', 4, 1, 'RangeError'],
    ['now', 5, -1, 'RangeError'],
    ['now', 5, Infinity, 'RangeError'],
    ['now', 5, '1', 'RangeError'],
    ['tcpFlags', 6, 256, 'RangeError'],
    ['internal', 7, 1, 'TypeError'],
  ]
  const before = snapshot(dp)
  for (const [name, index, value, cls] of cases) {
    const args: unknown[] = [...ok]
    args[index] = value
    t.throws(() => (dp.decideV4 as (...a: unknown[]) => number)(...args), { name: cls, code: 'INVALID', message: new RegExp(`^decideV4: ${name} must be`) }, `${name} = ${String(value)}`)
  }
  t.strictSame(snapshot(dp), before, 'nothing was decided')
  dp.destroy()
  t.throws(() => dp.decideV4(...ok), { code: 'DESTROYED' }, 'a destroyed Dataplane')
})

t.test('ipv4ToUint32 and uint32ToIpv4', async (t) => {
  const cases: Array<[string, number | undefined]> = [['10.0.0.1', 0x0a000001], ['255.255.255.255', 0xffffffff], ['0.0.0.0', 0], ['10.0.0.01', undefined], ['fd00::1', undefined], ['::ffff:10.0.0.2', 0x0a000002], ['x', undefined]]
  for (const [text, n] of cases) t.equal(ipv4ToUint32(text), n, text)
  for (const [text, n] of cases) if (n !== undefined && !text.includes(':')) t.equal(uint32ToIpv4(n), text, `${n} -> ${text}`)
})
