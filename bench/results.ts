// The one result shape every measurement produces (the JSON the harness writes).
export type Workload = 'new-flow' | 'new-flow-last' | 'established' | 'sync-full' | 'sync-one' | 'memory'
export type Impl = 'native-batch' | 'native-call' | 'native' | 'cpp-linear' | 'ts-iptables' | 'kernel-nft' | 'kernel-legacy'

export interface BenchResult {
  workload: Workload
  impl: Impl
  services: number
  flows?: number
  /** Nanoseconds per packet (flows) or per sync (sync workloads). */
  nsPerOp?: number
  /** Memory (memory workload). */
  bytes?: number
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
