// One source of truth (issue 14): the names, defaults and limits TypeScript holds (to work
// without the addon) equal the tables the native core exports (native/bridge/names.h,
// native/core/dataplane.h). A new reason, counter or scheduler in C++ fails here until the
// TypeScript side names it too. And the addon refuses raw values instead of coercing them.
import t from 'tap'
import { BACKEND_STATES, REASONS, SCHEDULERS, TIMEOUT_ORDER, VERDICTS } from '../../lib/dataplane/codes.js'
import { DEFAULT_CAPACITY, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_TIMEOUTS, INITIAL_CAPACITY, MAX_CAPACITY } from '../../lib/dataplane/defaults.js'
import { nativeBinding } from '../../lib/dataplane/native.js'
import { MASQUERADE_POLICIES, PACKET_COUNT_NAMES, PACKET_REASONS, REJECT_WITH } from '../../lib/dataplane/packets.js'
import { Dataplane } from '../../lib/index.js'

const native = nativeBinding()

t.test('name tables equal the core\'s', async (t) => {
  const n = native.names
  const cases: Array<[string, readonly string[], string[]]> = [
    ['verdicts', VERDICTS, n.verdicts],
    ['tuple reasons', REASONS, n.reasons.slice(0, n.tupleReasons)],
    ['packet reasons', PACKET_REASONS, n.reasons],
    ['schedulers', SCHEDULERS, n.schedulers],
    ['backend states', BACKEND_STATES, n.backendStates],
    ['masquerade policies', MASQUERADE_POLICIES, n.masqueradePolicies],
    ['reject replies', REJECT_WITH, n.rejectWith],
    ['timeouts by conntrack state', TIMEOUT_ORDER, n.timeouts.slice(1)],
    ['packet counters', PACKET_COUNT_NAMES, n.packetCounters],
  ]
  for (const [what, ts, core] of cases) t.strictSame([...ts], core, what)
})

t.test('defaults and limits equal the core\'s', async (t) => {
  t.equal(MAX_CAPACITY, native.maxCapacity)
  t.strictSame({ ...DEFAULT_CAPACITY }, native.defaultCapacity)
  t.strictSame({ ...INITIAL_CAPACITY }, native.initialCapacity)
  t.strictSame({ ...DEFAULT_TIMEOUTS }, native.defaultTimeouts)
  t.equal(DEFAULT_MAGLEV_TABLE_SIZE, native.defaultMaglevTableSize)
  // A Dataplane built with no options has the core's sizes.
  const dp = new Dataplane({ seed: 1n })
  t.strictSame(dp.getTimeouts(), native.defaultTimeouts)
  for (const m of dp.maps()) {
    const want = m.name in INITIAL_CAPACITY ? INITIAL_CAPACITY[m.name as keyof typeof INITIAL_CAPACITY] : m.name === 'revnat' ? INITIAL_CAPACITY.frontends : native.defaultCapacity[m.name as keyof typeof DEFAULT_CAPACITY]
    t.equal(m.capacity, want, `${m.name} starts at ${want}`)
  }
})

t.test('the addon refuses raw values the C ABI refuses (no coercion)', async (t) => {
  const seed = { seed: 1n }
  const h = native.create(seed)
  const addr = new Uint8Array(16)
  addr.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])
  t.strictSame(h.upsertBackend(1, addr, 80, 5, 1, false, 0), [5, 'backend 1 state must be 0..2, got 5'], 'state 5 is not state 2')
  t.equal(h.upsertBackend(1, addr, 80, 0, 1, false, 0), undefined)
  const fe = new Uint8Array(native.frontendStride)
  fe.set(addr)
  fe[16] = 80
  fe[18] = 6
  const ids = new Uint32Array([1])
  t.strictSame(h.upsertService(1, 9, 0, 3, fe, ids, new Uint8Array(0)), [5, 'service 1 scheduler must be 0..7, got 9'])
  t.strictSame(h.upsertService(1, 0, 0, 1, fe, ids, new Uint8Array(0)), [5, 'service 1 empty verdict must be reject (3) or drop (4), got 1'])
  fe[21] = 4
  t.strictSame(h.upsertService(1, 0, 0, 3, fe, ids, new Uint8Array(0)), [5, 'service 1 frontends[0].masquerade must be 0..3, got 4'])
  fe[21] = 0
  const range = new Uint8Array(native.cidrStride)
  range.set(addr)
  range[16] = 96 + 33
  t.strictSame(h.upsertService(1, 0, 0, 3, fe, ids, range), [5, 'service 1 source ranges[0].prefix_len must be 0..32, got 33'], 'a /33 is not clamped')
  range[16] = 96 + 8
  t.equal(h.upsertService(1, 0, 0, 3, fe, ids, range), undefined)
  t.throws(() => native.create({ seed: 1n, services: 0 }), { name: 'RangeError', message: 'services must be 1..33554432, got 0' })
  t.throws(() => native.create({ seed: 1n, conntrackPolicy: 2 }), { name: 'RangeError', message: /conntrackPolicy must be 0 \(evict oldest\) or 1 \(refuse\), got 2/ })
  t.throws(() => native.create({ seed: 1n, maglevTableSize: 100 }), { name: 'RangeError', message: /maglevTableSize must be a prime/ })
  t.throws(
    () => h.processPackets(new Uint8Array(0), new Uint32Array(0), new Uint32Array(0), 0, 0, 1, 0, false, 3, new Uint8Array(0), new Uint8Array(0), null, null, null),
    { name: 'RangeError', message: 'reject mode must be 0..2, got 3' },
  )
  h.destroy()
})
