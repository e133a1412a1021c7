// ns per decision of the native dataplane: the batch path and the single call from JS, at a
// range of service counts (conntrack misses: new flows) and tracked-flow counts (hits).
import { Dataplane, DecisionBatch, FlowBatch, type Flow } from '../lib/index.js'
import { clientIP, plainServices, rng } from './workload.js'

export interface DataplaneResult {
  workload: 'new-flow' | 'established'
  impl: 'native-batch' | 'native-call'
  services: number
  flows: number
  nsPerOp: number
}

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

/** New flows (conntrack misses) at each service count; the table has room for all of them. */
export function measureNewFlows(serviceCounts: number[], flowsPerRun: number, onStep?: () => void): DataplaneResult[] {
  const results: DataplaneResult[] = []
  for (const services of serviceCounts) {
    const flows = flowsFor(services, flowsPerRun, services)
    const calls = flows.slice(0, Math.min(flows.length, 100_000))
    const dp = build(services, flowsPerRun * 2 + calls.length * 2)
    const out = new DecisionBatch(BATCH)
    timeBatches(dp, toBatches(flowsFor(services, 4096, 99)), out, 1) // warm-up
    results.push({ workload: 'new-flow', impl: 'native-batch', services, flows: flowsPerRun, nsPerOp: timeBatches(dp, toBatches(flows), out, 2) })
    const fresh = calls.map((f) => ({ ...f, sport: f.sport, src: f.src.replace(/^10\./, '11.') }))
    results.push({ workload: 'new-flow', impl: 'native-call', services, flows: fresh.length, nsPerOp: timeCalls(dp, fresh, 3) })
    dp.destroy()
    onStep?.()
  }
  return results
}

/** Established flows (conntrack hits) at each table size, 1,000 services. */
export function measureEstablished(flowCounts: number[], onStep?: () => void): DataplaneResult[] {
  const results: DataplaneResult[] = []
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
    const reps = Math.max(1, Math.round(2_000_000 / count))
    let sum = 0
    for (let k = 0; k < reps; k++) sum += timeBatches(dp, batches, out, 2 + k)
    results.push({ workload: 'established', impl: 'native-batch', services, flows: count, nsPerOp: sum / reps })
    const sample = flows.slice(0, 100_000).map((f) => ({ ...f, tcpFlags: 0x10 }))
    results.push({ workload: 'established', impl: 'native-call', services, flows: count, nsPerOp: timeCalls(dp, sample, 3) })
    dp.destroy()
    onStep?.()
  }
  return results
}
