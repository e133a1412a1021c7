// The one result shape every measurement produces (the JSON the harness writes).
export type Workload = 'new-flow' | 'established' | 'sync-full' | 'sync-one' | 'memory' | 'floor' | 'packet-path'
export type Impl = 'native-batch' | 'native-call' | 'native' | 'native-shards' | 'node-threads' | 'cpp-linear' | 'ts-iptables' | 'ts-nftables' | 'ipvs' | 'kernel-nft' | 'kernel-legacy' | 'kernel-nftables'

export interface BenchResult {
  workload: Workload
  impl: Impl
  services: number
  flows?: number
  /** Nanoseconds per packet (flows) or per sync (sync workloads). */
  nsPerOp?: number
  /** new-flow: packets spread over all services, or all to the service matched last (the worst case for a linear walk). */
  case?: 'spread' | 'last'
  /** What exactly was timed when an implementation has several (e.g. ts-iptables sync-one: `reload`, `full-text`, `partial-text`). */
  variant?: string
  /** Memory (memory workload): the implementation's own accounting. */
  bytes?: number
  perService?: number
  perEndpoint?: number
  perFlow?: number
  /** Growth of the process's resident set while the state was built. */
  rssBytes?: number
  /** Repeated measurements: nsPerOp is the median of `runs` runs, min and max their extremes. */
  runs?: number
  min?: number
  max?: number
  /** nsPerOp as a multiple of the memory floor measured in the same run (bench/floor.ts). */
  ratio?: number
  /** packet-path: packets per call, and the threads processing them. */
  batch?: number
  threads?: number
  /** native-shards: nsPerOp is all threads together (elapsed); the same from the threads' CPU time, and each thread's own figures (medians). */
  cpuNsPerOp?: number
  perThreadNsPerOp?: number
  perThreadCpuNsPerOp?: number
}

/** At least this many runs behind every native figure. */
export const MIN_RUNS = 5

/** Median, min and max of repeated ns-per-op measurements. */
export function summarize(ns: number[]): { nsPerOp: number; runs: number; min: number; max: number } {
  if (ns.length === 0) throw new RangeError('summarize: no runs')
  const s = [...ns].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  const r = (x: number) => Math.round(x * 100) / 100
  return { nsPerOp: r(median), runs: s.length, min: r(s[0]), max: r(s[s.length - 1]) }
}

/** Resident set size now, after a collection when the runtime allows it (node --expose-gc). */
export function rss(): number {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().rss
}

/** Wall time of one call of fn, in ns. */
export function elapsedNs(fn: () => void): number {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t)
}

/** Times fn over batches of work until `count` operations or `budgetMs` have passed; ns per op. */
export function timeBudgeted(count: number, budgetMs: number, fn: (i: number) => void): { nsPerOp: number; ops: number } {
  const t0 = process.hrtime.bigint()
  const limit = t0 + BigInt(Math.round(budgetMs * 1e6))
  let i = 0
  for (; i < count; i++) {
    fn(i)
    if ((i & 63) === 63 && process.hrtime.bigint() > limit) {
      i++
      break
    }
  }
  return { nsPerOp: Number(process.hrtime.bigint() - t0) / Math.max(1, i), ops: i }
}
