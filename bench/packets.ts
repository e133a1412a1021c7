// Packets per second per core of Dataplane.processPackets on 64-byte IPv4/TCP Ethernet frames:
// conntrack hits (established flows) and new flows, in batches of 64 and 256, with 1,000 and
// 1,000,000 flows in conntrack. Measurements only: nothing here asserts a speed.
//
// Packets are rewritten in place, so each batch is first restored from a pristine copy; the
// restore is not timed. Every figure is the median of MIN_RUNS runs (`runs`, `min`, `max`).
//
//   npx tsc -p tsconfig.bench.json && node dist-bench/bench/packets.js [--quick] [--threads] [--json FILE]
// (--threads: only the 1- and 2-thread rows, C++ shards and Dataplane({ threads }) from Node)
import * as fs from 'node:fs'
import { Dataplane } from '../lib/dataplane/dataplane.js'
import { benchAddon, measureFloor, withRatios } from './floor.js'
import { MIN_RUNS, summarize, type BenchResult } from './results.js'

const FRAME = 64
const SERVICES = 100

function ipChecksum(p: Uint8Array, o: number): void {
  let s = 0
  for (let i = 0; i < 20; i += 2) if (i !== 10) s += (p[o + i] << 8) | p[o + i + 1]
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  const c = ~s & 0xffff
  p[o + 10] = c >> 8
  p[o + 11] = c & 0xff
}

/** Frame k: client 10.(k>>16).(k>>8).k-ish, port from k, to service k % SERVICES. */
function writeFrame(p: Uint8Array, o: number, k: number): void {
  p.fill(0, o, o + FRAME)
  p.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00], o)
  const ip = o + 14
  p[ip] = 0x45
  p[ip + 3] = FRAME - 14
  p[ip + 8] = 64
  p[ip + 9] = 6
  const client = 0x0b000000 + Math.floor(k / 50000)
  p[ip + 12] = client >>> 24
  p[ip + 13] = (client >>> 16) & 0xff
  p[ip + 14] = (client >>> 8) & 0xff
  p[ip + 15] = client & 0xff
  const svc = k % SERVICES
  p.set([172, 30, svc >> 8, svc & 0xff], ip + 16)
  ipChecksum(p, ip)
  const tcp = ip + 20
  const sport = 10000 + (k % 50000)
  p[tcp] = sport >> 8
  p[tcp + 1] = sport & 0xff
  p[tcp + 3] = 80
  p[tcp + 12] = 0x50
  p[tcp + 13] = 0x10 // ACK: picked up mid-stream as established
}

function makeDataplane(conntrack: number, threads = 1): Dataplane {
  const dp = new Dataplane({
    threads,
    seed: 1n,
    // Shards split conntrack evenly, steering splits the flows only about evenly (a shard's
    // share has a standard deviation up to sqrt(flows / threads)): six of those more per shard
    // keep the shard steering gave the most flows from evicting. With 1% more, 1,000 flows on 2
    // threads overflowed one shard, which then missed on every packet (a "hit" row that measured
    // new flows, 4x slower than one thread).
    capacity: { services: SERVICES, frontends: SERVICES, backends: SERVICES * 2, conntrack: threads > 1 ? conntrack + Math.ceil(6 * threads * Math.sqrt(conntrack / threads)) : conntrack, affinity: 16, natPorts: 16, fragments: 16 },
  })
  for (let s = 0; s < SERVICES; s++) {
    dp.upsertBackend({ id: 2 * s + 1, address: `10.180.${s >> 8}.${(2 * s) & 255}`, port: 8080 })
    dp.upsertBackend({ id: 2 * s + 2, address: `10.180.${s >> 8}.${(2 * s + 1) & 255}`, port: 8080 })
    dp.upsertService({ id: s + 1, frontends: [{ address: `172.30.${s >> 8}.${s & 255}`, port: 80, protocol: 'TCP', scope: 'external' }], backends: [2 * s + 1, 2 * s + 2] })
  }
  return dp
}

/** `count` frames of flows first, first + 1, ...: `cycle` flows over and over when given. */
function frames(count: number, first: number, cycle = count): Uint8Array {
  const buf = new Uint8Array(count * FRAME)
  for (let k = 0; k < count; k++) writeFrame(buf, k * FRAME, first + (k % cycle))
  return buf
}

/** ns per packet of processPackets over `minPackets` packets in batches of `batch`, cycling through `pristine`. */
function measure(dp: Dataplane, pristine: Uint8Array, count: number, batch: number, minPackets: number, now: () => number): number {
  const work = new Uint8Array(batch * FRAME)
  const offsets = new Uint32Array(batch)
  const lengths = new Uint32Array(batch).fill(FRAME)
  for (let i = 0; i < batch; i++) offsets[i] = i * FRAME
  const verdicts = new Uint8Array(batch)
  const reasons = new Uint8Array(batch)
  const batches = Math.max(1, Math.ceil(minPackets / batch))
  const perPass = Math.floor(count / batch)
  let ns = 0
  for (let b = 0; b < batches; b++) {
    const src = (b % perPass) * batch * FRAME
    work.set(pristine.subarray(src, src + batch * FRAME))
    const t0 = process.hrtime.bigint()
    dp.processPackets(work, offsets, lengths, batch, { direction: 'to-service', now: now() }, verdicts, reasons)
    ns += Number(process.hrtime.bigint() - t0)
  }
  return ns / (batches * batch)
}

function fill(dp: Dataplane, flows: number, now: number): void {
  const buf = frames(flows, 0)
  const offs = new Uint32Array(flows).map((_, i) => i * FRAME)
  const lens = new Uint32Array(flows).fill(FRAME)
  dp.processPackets(buf, offs, lens, flows, { direction: 'to-service', now }, new Uint8Array(flows), new Uint8Array(flows))
}

/** MIN_RUNS runs of measure() per batch size on `flows` established flows (filled here), cycled in order. */
function hitRuns(dp: Dataplane, flows: number, batches: number[], minPackets: number): Array<[number, number[]]> {
  // A batch larger than the flows holds each flow several times.
  const count = Math.max(flows, ...batches)
  const pristine = frames(count, 0, flows)
  let clock = 1
  fill(dp, flows, clock)
  const before = dp.map('conntrack').stats
  const runs = batches.map((batch): [number, number[]] => {
    const ns: number[] = []
    for (let r = 0; r < MIN_RUNS; r++) ns.push(measure(dp, pristine, count, batch, minPackets, () => (clock += 1e-6)))
    return [batch, ns]
  })
  // A hit row that evicted measured new flows: refuse it rather than report it.
  const after = dp.map('conntrack').stats
  if (after.evictions !== before.evictions || after.inserts !== before.inserts) throw new Error(`hitRuns: ${after.inserts - before.inserts} flows were created during the hit runs (conntrack too small for ${flows} flows)`)
  return runs
}

/**
 * The packet path (parse, conntrack, rewrite, checksums) per 64-byte frame: `hit` on established
 * flows cycled in order, `new` on fresh flows into a full conntrack (each evicts the oldest).
 */
export function benchPackets(quick = false, flowCounts = [1000, 1_000_000], batches = [64, 256]): BenchResult[] {
  const out: BenchResult[] = []
  const runs = MIN_RUNS
  for (const flows of flowCounts) {
    const dp = makeDataplane(flows)
    for (const [batch, ns] of hitRuns(dp, flows, batches, quick ? 200_000 : 1_000_000)) out.push(result('conntrack-hit', flows, batch, ns))
    dp.destroy()
    const fresh = quick ? 100_000 : 500_000
    const newFrames = frames(fresh, 5_000_000)
    for (const batch of batches) {
      const dpNew = makeDataplane(flows)
      fill(dpNew, flows, 1)
      let t = 2
      const ns: number[] = []
      // Each run offers the same fresh tuples again: the previous run's flows are flushed first.
      for (let r = 0; r < runs; r++) {
        if (r > 0) {
          dpNew.flushConntrack()
          fill(dpNew, flows, (t += 1))
        }
        ns.push(measure(dpNew, newFrames, fresh, batch, fresh, () => (t += 1e-6)))
      }
      out.push(result('new-flow', flows, batch, ns))
      dpNew.destroy()
    }
  }
  return out
}

/**
 * The same workloads (batch 256) on 1 and 2 packet threads: C++ threads, each serving its own
 * shard of one ShardedDataplane, frames steered to their shard beforehand (as a NIC's RSS
 * would). nsPerOp is the threads together; cpuNsPerOp the same from each thread's CPU time,
 * which a machine shared with other work does not inflate.
 */
export function benchPacketThreads(quick = false, flowCounts = [1000, 1_000_000], threadCounts = [1, 2]): BenchResult[] {
  const out: BenchResult[] = []
  const a = benchAddon()
  const batch = 256
  for (const flows of flowCounts)
    for (const variant of ['conntrack-hit', 'new-flow'] as const)
      for (const threads of threadCounts) {
        const m = a.packetThreads(variant === 'conntrack-hit', flows, batch, threads, quick ? 400_000 : 2_000_000, quick ? 200_000 : 500_000, MIN_RUNS)
        if (m.forwarded < 0.999) throw new Error(`packetThreads: only ${m.forwarded} of the packets were forwarded`)
        out.push({
          ...result(variant, flows, batch, m.runs),
          impl: 'native-shards',
          threads,
          cpuNsPerOp: summarize(m.cpuRuns).nsPerOp,
          perThreadNsPerOp: summarize(m.perThread).nsPerOp,
          perThreadCpuNsPerOp: summarize(m.perThreadCpu).nsPerOp,
        })
      }
  return out
}

/**
 * Dataplane.processPackets from Node with options.threads 1 and 2: the addon steers each batch
 * and runs each shard's part on its own native thread (one of them the calling thread), so
 * a call pays a wakeup of the other thread; batches of 256 and 4096 show where that pays.
 * nsPerOp is elapsed time per packet, as in benchPackets.
 */
export function benchNodeThreads(quick = false, flowCounts = [1000, 1_000_000], threadCounts = [1, 2], batches = [256, 4096]): BenchResult[] {
  const out: BenchResult[] = []
  const runs = MIN_RUNS
  const node = (r: BenchResult, threads: number): BenchResult => ({ ...r, impl: 'node-threads', threads })
  for (const flows of flowCounts)
    for (const threads of threadCounts) {
      const dp = makeDataplane(flows, threads)
      for (const [batch, ns] of hitRuns(dp, flows, batches, quick ? 400_000 : 2_000_000)) out.push(node(result('conntrack-hit', flows, batch, ns), threads))
      let clock = 1e3
      const fresh = quick ? 100_000 : 500_000
      const newFrames = frames(fresh, 5_000_000)
      for (const batch of batches) {
        const ns: number[] = []
        for (let r = 0; r < runs; r++) {
          dp.flushConntrack()
          fill(dp, flows, (clock += 1))
          ns.push(measure(dp, newFrames, fresh, batch, fresh, () => (clock += 1e-6)))
        }
        out.push(node(result('new-flow', flows, batch, ns), threads))
      }
      dp.destroy()
    }
  return out
}

function result(variant: 'conntrack-hit' | 'new-flow', flows: number, batch: number, ns: number[]): BenchResult {
  return { workload: 'packet-path', variant, impl: 'native-batch', services: SERVICES, flows, batch, threads: 1, ...summarize(ns) }
}

if (require.main === module) {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const json = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined
  const floor = measureFloor()
  const only = args.includes('--threads') // the thread rows alone: native shards and Node threads
  const results = withRatios([floor, ...(only ? [] : benchPackets(quick)), ...benchPacketThreads(quick), ...benchNodeThreads(quick)], floor)
  console.log('workload                    flows  batch  ns/packet (min-max)      Mpps  x floor')
  for (const r of results)
    console.log(
      `${(r.variant ?? r.workload).padEnd(20)} ${String(r.flows).padStart(12)}  ${String(r.batch ?? '').padStart(5)}  ${r.nsPerOp!.toFixed(1).padStart(9)} (${r.min}-${r.max})  ${(1e3 / r.nsPerOp!).toFixed(2).padStart(6)}  ${r.ratio ?? ''}${r.impl === 'native-shards' ? `  threads ${r.threads}: cpu ${r.cpuNsPerOp} ns, per thread ${r.perThreadNsPerOp} ns (cpu ${r.perThreadCpuNsPerOp})` : ''}${r.impl === 'node-threads' ? `  node threads ${r.threads}` : ''}`,
    )
  if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2))
}
