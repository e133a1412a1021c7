// The memory floor, measured in C++ in the same run as everything it is compared to: one
// random, independent cache-line read in a table the size of a 1,000,000-flow conntrack. A
// batched lookup that needs a cache miss cannot be cheaper; hot paths are reported as
// multiples of it (`ratio`).
import { loadBenchAddon } from './addons.js'
import { summarize, type BenchResult } from './results.js'

interface BenchAddon {
  memoryFloor(bytes: number, reads: number, runs: number): { bytes: number; runs: number[] }
  conntrackBytes(capacity: number): number
  /** The packet-path workload on native threads, one ShardedDataplane shard each (native/bench/packet_workload.h). */
  packetThreads(
    hit: boolean,
    flows: number,
    batch: number,
    threads: number,
    packets: number,
    freshFlows: number,
    runs: number,
  ): { runs: number[]; cpuRuns: number[]; perThread: number[]; perThreadCpu: number[]; forwarded: number }
}

let addon: BenchAddon | undefined

/** The benchmark-only addon of native/bench. */
export function benchAddon(): BenchAddon {
  addon ??= loadBenchAddon<BenchAddon>('bench', 'svcplane_bench')
  return addon
}

export const FLOOR_FLOWS = 1_000_000

/** The floor: median of `runs` runs of `reads` reads each. */
export function measureFloor(runs = 7, reads = 20_000_000): BenchResult {
  const a = benchAddon()
  const m = a.memoryFloor(a.conntrackBytes(FLOOR_FLOWS), reads, runs)
  return { workload: 'floor', impl: 'native', services: 0, flows: FLOOR_FLOWS, bytes: m.bytes, ...summarize(m.runs) }
}

/** Every result with a per-op time gets its ratio to the floor. */
export function withRatios(results: BenchResult[], floor: BenchResult): BenchResult[] {
  const f = floor.nsPerOp!
  return results.map((r) =>
    r.nsPerOp !== undefined && r !== floor && (r.workload === 'established' || r.workload === 'new-flow' || r.workload === 'packet-path')
      ? { ...r, ratio: Math.round((r.nsPerOp / f) * 100) / 100 }
      : r,
  )
}
