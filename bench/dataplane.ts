// ns per decision of the native dataplane: the batch path and the single call from JS, at a
// range of service counts (conntrack misses: new flows) and tracked-flow counts (hits).
import { Dataplane, DecisionBatch, FlowBatch, ipv4ToUint32, type Flow } from '../lib/index.js'
import type { Bench as BenchClass } from 'tinybench' with { 'resolution-mode': 'import' }
import { generateCluster, type Cluster, type Mix } from './cluster.js'
import { lastServiceTarget, loadProxier } from './iptables.js'
import { MIN_RUNS, summarize, type BenchResult } from './results.js'
import { clientIP, plainServices, rng } from './workload.js'
import { serviceTargets } from './new-flow-cases.js'


const BATCH = 256

function build(services: number, flowCapacity: number): Dataplane {
  const dp = new Dataplane({
    seed: 1n,
    capacity: { services, frontends: services, backends: services * 2, conntrack: flowCapacity, affinity: 1024 },
  })
  for (const s of plainServices(services)) {
    const ids = s.endpoints.map((_, e) => s.index * 2 + e + 1)
    s.endpoints.forEach((address, e) => dp.upsertBackend({ id: ids[e], address, port: 8080 }))
    dp.upsertService({
      id: s.index + 1,
      frontends: [{ address: s.clusterIP, port: 80, protocol: 'TCP', scope: 'internal' }],
      backends: ids,
    })
  }
  return dp
}

/** `count` distinct flows spread over all services (client, port and service from the seed). */
function flowsFor(services: number, count: number, seed: number): Flow[] {
  const r = rng(seed)
  const svc = plainServices(Math.min(services, 1 << 20), 0)
  const out: Flow[] = []
  for (let k = 0; k < count; k++) {
    out.push({
      src: clientIP(k >>> 14),
      sport: 1024 + (k & 0x3fff),
      dst: svc[Math.floor(r() * services)].clusterIP,
      dport: 80,
      protocol: 'TCP',
      tcpFlags: 0x02,
    })
  }
  return out
}

function toBatches(flows: Flow[]): FlowBatch[] {
  const batches: FlowBatch[] = []
  for (let i = 0; i < flows.length; i += BATCH) batches.push(FlowBatch.from(flows.slice(i, i + BATCH)))
  return batches
}

function timeBatches(dp: Dataplane, batches: FlowBatch[], out: DecisionBatch, now: number): number {
  let n = 0
  const t0 = process.hrtime.bigint()
  for (const b of batches) n += dp.decideBatch(b, now, out)
  return Number(process.hrtime.bigint() - t0) / n
}

function timeCalls(dp: Dataplane, flows: Flow[], now: number): number {
  const t0 = process.hrtime.bigint()
  for (const f of flows) dp.decide(f, now)
  return Number(process.hrtime.bigint() - t0) / flows.length
}

// tinybench is an ES module; Node 20.19+ loads it with require().
const { Bench } = require('tinybench') as { Bench: typeof BenchClass }
const CALLS_PER_SAMPLE = 1000

/**
 * ns per call of fn(i) (i counts up across calls) with tinybench: each sample times
 * CALLS_PER_SAMPLE calls (one ~100 ns call is below the clock's overhead), and the result is
 * the median of the samples' per-call means, with their min and max and the sample count.
 */
function perCall(name: string, fn: (i: number) => void): { nsPerOp: number; min: number; max: number; runs: number } {
  const bench = new Bench({ time: 300, iterations: 50, warmupTime: 50 })
  let i = 0
  bench.add(name, () => {
    const t0 = bench.now()
    for (let k = 0; k < CALLS_PER_SAMPLE; k++) fn(i++)
    const ms = bench.now() - t0
    return { overriddenDuration: ms / CALLS_PER_SAMPLE, overriddenIterationCost: ms }
  })
  bench.runSync()
  const r = bench.tasks[0].result
  if (r.state !== 'completed') throw new Error(`bench ${name}: ${r.state}`)
  const ns = (ms: number): number => Math.round(ms * 1e7) / 10
  return { nsPerOp: ns(r.latency.p50), min: ns(r.latency.min), max: ns(r.latency.max), runs: r.latency.samplesCount }
}

/** One established flow per call from JS: decide() (text tuple, object result) against decideV4 (numbers in, numbers out). */
function singleCalls(dp: Dataplane, sample: Flow[], services: number, flows: number): BenchResult[] {
  const proto = { TCP: 6, UDP: 17, SCTP: 132 } as const
  const numeric = sample.map((f) => ({ src: ipv4ToUint32(f.src)!, dst: ipv4ToUint32(f.dst)!, sport: f.sport, dport: f.dport, proto: proto[f.protocol] }))
  const n = sample.length
  const text = perCall('decide', (i) => dp.decide(sample[i % n], 3))
  const v4 = perCall('decideV4', (i) => {
    const f = numeric[i % n]
    dp.decideV4(f.src, f.sport, f.dst, f.dport, f.proto, 3, 0x10)
  })
  return [
    { workload: 'established', impl: 'native-call', variant: 'decide-tinybench', services, flows, ...text },
    { workload: 'established', impl: 'native-call', variant: 'decideV4-tinybench', services, flows, ...v4 },
  ]
}

/**
 * New flows (conntrack misses) through the native dataplane that a Proxier programmed from the
 * cluster: spread over all services, and all to the service iptables would match last.
 */
export function measureNewFlows(
  counts: number[],
  mix: Mix,
  flowsPerRun: number,
  onStep?: () => void,
  cluster?: Cluster,
): BenchResult[] {
  const results: BenchResult[] = []
  for (const n of counts) {
    const c = cluster ?? generateCluster(n, mix)
    const p = loadProxier('native', c, n, 2 * flowsPerRun + 2 * Math.min(flowsPerRun, 100_000) + 8192)
    p.sync()
    const dp = p.dataplane!
    const targets = serviceTargets(c)
    const last = lastServiceTarget(p.iptablesRestore())
    const r = rng(n)
    const flowTo = (k: number, base: number, t: { ip: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' }): Flow => ({
      src: clientIP(base + (k >>> 14)),
      sport: 1024 + (k & 0x3fff),
      dst: t.ip,
      dport: t.port,
      protocol: t.protocol,
      scope: 'internal',
      tcpFlags: 0x02,
    })
    const spread: Flow[] = []
    const worst: Flow[] = []
    for (let k = 0; k < flowsPerRun; k++) {
      spread.push(flowTo(k, 0, targets[Math.floor(r() * targets.length)]))
      worst.push(flowTo(k, 1000, last))
    }
    const out = new DecisionBatch(BATCH)
    timeBatches(dp, toBatches(spread.slice(0, 4096).map((f) => ({ ...f, src: '10.99.0.1' }))), out, 1) // warm-up
    const spreadBatches = toBatches(spread)
    const worstBatches = toBatches(worst)
    const calls = Math.min(flowsPerRun, 100_000)
    const spreadCalls = spread.slice(0, calls).map((f) => ({ ...f, src: f.src.replace(/^10\./, '11.') }))
    const worstCalls = worst.slice(0, calls).map((f) => ({ ...f, src: f.src.replace(/^10\./, '11.') }))
    // Every run offers the same new flows: conntrack is flushed (untimed) before each.
    const repeat = (fn: () => number) => summarize(Array.from({ length: MIN_RUNS }, () => (dp.flushConntrack(), fn())))
    const row = (c: 'spread' | 'last', impl: 'native-batch' | 'native-call', flows: number, fn: () => number): BenchResult => ({ workload: 'new-flow', case: c, impl, services: n, flows, ...repeat(fn) })
    results.push(row('spread', 'native-batch', flowsPerRun, () => timeBatches(dp, spreadBatches, out, 2)))
    results.push(row('last', 'native-batch', flowsPerRun, () => timeBatches(dp, worstBatches, out, 2)))
    results.push(row('spread', 'native-call', calls, () => timeCalls(dp, spreadCalls, 3)))
    results.push(row('last', 'native-call', calls, () => timeCalls(dp, worstCalls, 3)))
    dp.destroy()
    onStep?.()
  }
  return results
}

/** Established flows (conntrack hits) at each table size, 1,000 services. */
export function measureEstablished(flowCounts: number[], onStep?: () => void): BenchResult[] {
  const results: BenchResult[] = []
  const services = 1000
  for (const count of flowCounts) {
    const flows = flowsFor(services, count, 7)
    const dp = build(services, count)
    const batches = toBatches(flows)
    const out = new DecisionBatch(BATCH)
    timeBatches(dp, batches, out, 1) // creates every flow
    // Visit the flows in a shuffled order so the table is walked at random, as real traffic does.
    const r = rng(11)
    for (let i = batches.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1))
      ;[batches[i], batches[j]] = [batches[j], batches[i]]
    }
    for (const b of batches) for (let i = 0; i < b.length; i++) b.setTcpFlags(i, 0x10)
    // Each run visits at least 1,000,000 flows (several passes over small tables).
    const reps = Math.max(1, Math.round(1_000_000 / count))
    let tick = 2
    const runs = Array.from({ length: MIN_RUNS }, () => {
      let sum = 0
      for (let k = 0; k < reps; k++) sum += timeBatches(dp, batches, out, tick++)
      return sum / reps
    })
    results.push({ workload: 'established', impl: 'native-batch', services, flows: count, ...summarize(runs) })
    // At least 100,000 calls per run, cycling over the tracked flows, so one-off costs (JIT, GC) average out.
    const sample: Flow[] = []
    for (let i = 0; i < 100_000; i++) sample.push({ ...flows[i % flows.length], tcpFlags: 0x10 })
    results.push({ workload: 'established', impl: 'native-call', services, flows: count, ...summarize(Array.from({ length: MIN_RUNS }, () => timeCalls(dp, sample, tick++))) })
    results.push(...singleCalls(dp, sample, services, count))
    dp.destroy()
    onStep?.()
  }
  return results
}
