// Hash flooding: do 5-tuples chosen to collide under an unkeyed hash slow the keyed tables?
//
// The attacker's model: the table hashes a flow with the core's function (native/core/hash.h,
// wyhash-style multiply-fold) and a secret it can guess — here the secret the core derives
// for conntrack from `seed: 0` (what an unkeyed table is). It then picks tuples whose home
// bucket (native/core/bucket_index.h: the hash's high bits, multiply-shift) falls in one small
// window of the bucketed index, so that they spill into one run of full buckets: every lookup
// walks it (O(n)), inserts get slower and slower.
//
// Three runs of the same workload (FLOWS new flows in batches, then every flow looked up
// again as established), ns per decision:
//   random   random tuples,                dataplane with a random secret (the default)
//   keyed    the colliding tuples,         dataplane with a random secret: the attack misses
//   unkeyed  the colliding tuples,         dataplane whose secret the attacker knew (seed 0):
//            what the attack does to a table that is not keyed (the control)
// A measurement, not a pass/fail test. Run: npx ts-node --transpile-only bench/hash-flood.ts
// [flows] (default 8192; the search for colliding tuples costs ~10 µs per candidate).
import { Dataplane, DecisionBatch, FlowBatch } from '../lib/index.js'

const M64 = (1n << 64n) - 1n
const P0 = 0xa0761d6478bd642fn
const P1 = 0xe7037ed1a0b428dbn
const P2 = 0x8ebc6af09c88c6e3n

const mulFold = (a: bigint, b: bigint) => {
  const r = a * b
  return (r & M64) ^ (r >> 64n)
}

/** native/core/hash.h keyedHash over a 40-byte FlowKey. */
function keyedHash(key: Uint8Array, seed: bigint): bigint {
  const v = new DataView(key.buffer, key.byteOffset, key.byteLength)
  const load = (i: number) => v.getBigUint64(i, true)
  let h = seed ^ P0
  let i = 0
  for (; i + 16 <= 40; i += 16) h = mulFold(load(i) ^ P1 ^ h, load(i + 8) ^ seed ^ P2)
  h = mulFold(load(i) ^ P1, h ^ P2)
  return mulFold(h ^ 40n, P1 ^ seed)
}

/** native/core/dataplane.cc derive(seed, salt): the per-map secret. */
function derive(seed: bigint, salt: bigint): bigint {
  let state = (seed ^ ((salt * 0x9e3779b97f4a7c15n) & M64)) & M64
  state = (state + 0x9e3779b97f4a7c15n) & M64
  let z = state
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64
  return z ^ (z >> 31n)
}

const VIP = [172, 30, 0, 10]

function flowKey(client: number, sport: number): Uint8Array {
  const k = new Uint8Array(40)
  k[10] = k[11] = 0xff
  k[12] = (client >>> 24) & 255
  k[13] = (client >>> 16) & 255
  k[14] = (client >>> 8) & 255
  k[15] = client & 255
  k[26] = k[27] = 0xff
  k.set(VIP, 28)
  new DataView(k.buffer).setUint16(32, sport, true)
  new DataView(k.buffer).setUint16(34, 80, true)
  k[36] = 6
  return k
}

interface Tuple { client: number; sport: number }

/** Tuples whose conntrack home bucket under `secret` falls in [0, window) of `buckets`. */
function colliding(count: number, secret: bigint, buckets: number, window: number): { tuples: Tuple[]; tried: number } {
  const tuples: Tuple[] = []
  let tried = 0
  for (let c = 0; tuples.length < count; c++) {
    const client = 0xcb000000 + (c >>> 10)
    const sport = 1024 + (c & 1023)
    tried++
    const h = Number(keyedHash(flowKey(client, sport), secret) & 0xffffffffn)
    if (Math.floor((h * buckets) / 2 ** 32) < window) tuples.push({ client, sport })
  }
  return { tuples, tried }
}

function run(tuples: Tuple[], seed: bigint | undefined, capacity: number): { insertNs: number; lookupNs: number } {
  const dp = new Dataplane({ ...(seed === undefined ? {} : { seed }), capacity: { conntrack: capacity, services: 1, frontends: 1, backends: 2 } })
  dp.upsertBackend({ id: 1, address: '10.1.0.1', port: 8080 })
  dp.upsertService({ id: 1, frontends: [{ address: VIP.join('.'), port: 80, protocol: 'TCP', scope: 'external' }], backends: [1] })
  const B = 256
  const batches: FlowBatch[] = []
  for (let i = 0; i < tuples.length; i += B) {
    const fb = new FlowBatch(B)
    for (const t of tuples.slice(i, i + B)) {
      fb.push({ src: `${t.client >>> 24}.${(t.client >>> 16) & 255}.${(t.client >>> 8) & 255}.${t.client & 255}`, sport: t.sport, dst: VIP.join('.'), dport: 80, protocol: 'TCP', tcpFlags: 2 })
    }
    batches.push(fb)
  }
  const out = new DecisionBatch(B)
  let t0 = process.hrtime.bigint()
  for (const fb of batches) dp.decideBatch(fb, 1, out)
  const insertNs = Number(process.hrtime.bigint() - t0) / tuples.length
  t0 = process.hrtime.bigint()
  const ROUNDS = 5
  for (let r = 0; r < ROUNDS; r++) for (const fb of batches) dp.decideBatch(fb, 2, out)
  const lookupNs = Number(process.hrtime.bigint() - t0) / (tuples.length * ROUNDS)
  if (dp.map('conntrack').size !== tuples.length) throw new Error(`expected ${tuples.length} flows, got ${dp.map('conntrack').size}`)
  dp.destroy()
  return { insertNs, lookupNs }
}

function main() {
  const flows = Number(process.argv[2] ?? 8192)
  const capacity = 65536
  // Conntrack's index (BucketIndex::bucketsFor) has ceil(2 x capacity / 12.9) buckets of 15
  // ways; it indexes each flow twice (original and reply tuple). The attack aims the original
  // tuples at a window of 1/256 of the buckets.
  const buckets = Math.ceil((capacity * 2 * 10) / 129)
  const window = Math.max(1, Math.floor(buckets / 256))
  const secret = derive(0n, 6n) // conntrack's secret for seed 0
  const started = Date.now()
  const { tuples: bad, tried } = colliding(flows, secret, buckets, window)
  const searchMs = Date.now() - started
  const random: Tuple[] = Array.from({ length: flows }, (_, i) => ({ client: 0xc6000000 + ((i * 2654435761) >>> 8), sport: 1024 + (i % 60000) }))
  // Warm up, then the median of 3 runs of each.
  run(random.slice(0, 1024), undefined, capacity)
  const median = (f: () => { insertNs: number; lookupNs: number }) => {
    const rs = [f(), f(), f()]
    const pick = (k: 'insertNs' | 'lookupNs') => rs.map((r) => r[k]).sort((a, b) => a - b)[1]!
    return { insertNs: pick('insertNs'), lookupNs: pick('lookupNs') }
  }
  const r = median(() => run(random, undefined, capacity))
  const k = median(() => run(bad, undefined, capacity))
  const u = median(() => run(bad, 0n, capacity))
  const line = (name: string, x: { insertNs: number; lookupNs: number }) =>
    `| ${name} | ${x.insertNs.toFixed(0)} | ${x.lookupNs.toFixed(0)} | ${(x.insertNs / r.insertNs).toFixed(2)}x | ${(x.lookupNs / r.lookupNs).toFixed(2)}x |`
  console.log(`hash flood: ${flows} flows into a ${capacity}-flow conntrack (${buckets} index buckets of 15); colliding tuples aimed at ${window} buckets, ${tried} candidates tried in ${searchMs} ms`)
  console.log('| run | new flow ns | established ns | new vs random | established vs random |')
  console.log('|---|---|---|---|---|')
  console.log(line('random tuples, keyed (random secret)', r))
  console.log(line('colliding tuples, keyed (random secret)', k))
  console.log(line('colliding tuples, unkeyed (secret known)', u))
}

main()
