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
import { PACKET_ARRAYS, PACKET_PARAM, PacketCall } from '../../lib/dataplane/packet-call.js'
import { BATCH_BACKEND_STRIDE, BATCH_SERVICE_SLOTS } from '../../lib/dataplane/update-batch.js'

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
    ['processPackets params slots', Object.keys(PACKET_PARAM), native.packetParams],
    ['processPackets arrays', PACKET_ARRAYS, native.packetArrays],
  ]
  for (const [i, name] of native.packetParams.entries()) t.equal(PACKET_PARAM[name as keyof typeof PACKET_PARAM], i, `params slot ${name}`)
  for (const [what, ts, core] of cases) t.strictSame([...ts], core, what)
})

t.test('upsertBatch layouts equal the addon\'s', async (t) => {
  t.equal(BATCH_BACKEND_STRIDE, native.batchBackendStride, 'bytes per backend')
  t.equal(BATCH_SERVICE_SLOTS, native.batchServiceSlots, 'u32 slots per service')
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
  t.throws(() => h.processPackets(), { message: 'processPackets: no PacketCall registered (setPacketCall)' })
  const call = new PacketCall(h)
  t.throws(() => h.setPacketCall({ ...call, params: new Float64Array(2) } as never), { name: 'TypeError', message: /params must be a Float64Array of 6/ })
  t.throws(() => h.setPacketCall({ ...call, params: call.params, offsets: [] } as never), { name: 'TypeError', message: 'setPacketCall: offsets must be a typed array' })
  call.use({ buffer: new Uint8Array(0), offsets: new Uint32Array(0), lengths: new Uint32Array(0), verdicts: new Uint8Array(0), reasons: new Uint8Array(0), replies: null, replyOffsets: null, replyLengths: null })
  call.params[PACKET_PARAM.reject] = 3
  t.throws(() => h.processPackets(), { name: 'RangeError', message: 'reject mode must be 0..2, got 3' })
  call.params[PACKET_PARAM.reject] = 1
  call.params[PACKET_PARAM.count] = 1
  t.throws(() => h.processPackets(), { name: 'RangeError', message: 'count exceeds offsets, lengths, verdicts or reasons' })
  // A buffer detached after registration is seen as empty, never read through a stale pointer.
  const big = { buffer: new Uint8Array(64), offsets: new Uint32Array(1), lengths: new Uint32Array([64]), verdicts: new Uint8Array(1), reasons: new Uint8Array(1), replies: null, replyOffsets: null, replyLengths: null }
  call.use(big)
  t.equal(h.processPackets(), 0, 'one packet processed')
  structuredClone(big.buffer.buffer, { transfer: [big.buffer.buffer] })
  t.throws(() => h.processPackets(), { name: 'RangeError', message: /packet 0 \(offset 0, length 64\) lies outside the buffer of 0 bytes/ })
  h.destroy()
})
