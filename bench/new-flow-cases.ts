// The two new-flow cases every per-mode step times the same way: packets spread over all the
// services, and all to the service matched last (the worst case for a linear walk), each from
// fresh clients and ports after a warm-up, so the first case timed does not pay the JIT.
import type { Cluster } from './cluster.js'
import type { IptablesBudget } from './iptables.js'
import { timeBudgeted, type BenchResult, type Impl } from './results.js'
import { clientIP, rng } from './workload.js'

export interface FlowTarget {
  ip: string
  port: number
  protocol: 'TCP'
}

/** Each generated service's ClusterIP and first port (generated services are TCP), in cluster order. */
export function serviceTargets(c: Cluster): FlowTarget[] {
  return c.services.map((s) => ({ ip: s.spec!.clusterIP!, port: s.spec!.ports![0].port, protocol: (s.spec!.ports![0].protocol ?? 'TCP') as 'TCP' }))
}

/** One new connection from `src`:`sport` to `t` at time `now`. */
export type NewFlow = (src: string, sport: number, t: FlowTarget, now: number) => void

export function timeNewFlowCases(impl: Impl, services: number, targets: FlowTarget[], budget: IptablesBudget, newFlow: NewFlow): BenchResult[] {
  const last = targets[targets.length - 1]!
  const r = rng(services)
  for (let k = 0; k < 2000; k++) newFlow(clientIP(200_000 + (k >>> 10)), 1024 + (k & 1023), targets[k % targets.length]!, 1)
  const spread = timeBudgeted(budget.packets, budget.budgetMs, (k) => newFlow(clientIP(k >>> 10), 1024 + (k & 1023), targets[Math.floor(r() * targets.length)]!, 1))
  const worst = timeBudgeted(budget.packets, budget.budgetMs, (k) => newFlow(clientIP(100_000 + (k >>> 10)), 1024 + (k & 1023), last, 2))
  return [
    { workload: 'new-flow', case: 'spread', impl, services, flows: spread.ops, nsPerOp: spread.nsPerOp },
    { workload: 'new-flow', case: 'last', impl, services, flows: worst.ops, nsPerOp: worst.nsPerOp },
  ]
}
