// The one result shape every measurement produces (the JSON the harness writes).
export type Workload = 'new-flow' | 'established' | 'sync-full' | 'sync-one' | 'memory'
export type Impl = 'native-batch' | 'native-call' | 'native' | 'cpp-linear' | 'ts-iptables' | 'ts-nftables' | 'kernel-nft' | 'kernel-legacy' | 'kernel-nftables'

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
}

/** Resident set size now, after a collection when the runtime allows it (node --expose-gc). */
export function rss(): number {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().rss
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
