// kube-proxy's nftables ruleset for the same cluster, through the Proxier in mode 'nftables':
// the general nft evaluator (`ts-nftables`, lib/nftables/nft) on new connections, which must
// stay flat in the number of services (verdict maps are hash lookups, never walks), next to
// ts-iptables' O(n) walk; and the mode's own syncs (a full first transaction, then a partial
// one for one changed service, as kube-proxy sends them to nft); route() through the Proxier
// (conntrack, then the evaluator that follows the table); and what bringing that evaluator up
// to date costs: the first sync's whole transaction (sync-full evaluator-load), then one
// service's partial one (sync-one evaluator-update).
import { Proxier } from '../lib/index.js'
import { BENCH_NODE, generateCluster, type Cluster, type Mix } from './cluster.js'
import type { IptablesBudget } from './iptables.js'
import { elapsedNs, summarize, timeBudgeted, type BenchResult } from './results.js'
import { serviceTargets, timeNewFlowCases } from './new-flow-cases.js'
import { clientIP, endpointIP } from './workload.js'

/** One-service changes per N (median, min, max of the sync and of the evaluator's update). */
const ONE_SERVICE_RUNS = 5

function loadNftables(cluster: Cluster): Proxier {
  const p = new Proxier({ mode: 'nftables', ...BENCH_NODE })
  for (const s of cluster.services) p.applyService(s)
  for (const s of cluster.slices) p.applyEndpointSlice(s)
  return p
}

export function measureNftables(counts: number[], mix: Mix, budget: IptablesBudget, onStep?: () => void, cluster?: Cluster): BenchResult[] {
  const results: BenchResult[] = []
  for (const n of counts) {
    const c = cluster ?? generateCluster(n, mix)
    const p = loadNftables(c)
    results.push({ workload: 'sync-full', impl: 'ts-nftables', variant: 'transaction', services: n, nsPerOp: elapsedNs(() => p.sync()) })
    let evaluator!: ReturnType<NonNullable<Proxier['nftables']>['evaluator']>
    results.push({ workload: 'sync-full', impl: 'ts-nftables', variant: 'evaluator-load', services: n, nsPerOp: elapsedNs(() => (evaluator = p.nftables!.evaluator())) })
    const targets = serviceTargets(c)
    const last = targets[targets.length - 1]!
    // Every packet must be DNATed (each generated service has endpoints): the evaluator walks the real table.
    const probe = evaluator.evaluate({ src: clientIP(0), sport: 1024, dst: last.ip, dport: last.port, protocol: last.protocol, hook: 'prerouting', now: 1 })
    if (probe.action !== 'dnat') throw new Error(`ts-nftables: a packet to ${last.ip}:${last.port} was not DNATed (${probe.action})`)
    results.push(...timeNewFlowCases('ts-nftables', n, targets, budget, (src, sport, t, now) => {
      evaluator.evaluate({ src, sport, dst: t.ip, dport: t.port, protocol: t.protocol, hook: 'prerouting', now })
    }))
    // The mode's own path: route() through the Proxier, conntrack first (every packet a new connection), then the table.
    for (let k = 0; k < 500; k++) p.route({ src: clientIP(250_000 + (k >>> 10)), sport: 1024 + (k & 1023), dst: last.ip, dport: last.port, protocol: last.protocol, hook: 'prerouting', now: 3 })
    const routed = timeBudgeted(budget.packets, budget.budgetMs, (k) => {
      p.route({ src: clientIP(300_000 + (k >>> 10)), sport: 1024 + (k & 1023), dst: last.ip, dport: last.port, protocol: last.protocol, hook: 'prerouting', now: 3 })
    })
    results.push({ workload: 'new-flow', case: 'last', impl: 'ts-nftables', variant: 'route', services: n, flows: routed.ops, nsPerOp: routed.nsPerOp })
    // One endpoint of one service replaced, ONE_SERVICE_RUNS times (another service each time):
    // kube-proxy's partial transaction touches only that service, and the evaluator route() uses
    // replays just that transaction.
    const syncNs: number[] = []
    const updateNs: number[] = []
    for (let i = 0; i < ONE_SERVICE_RUNS; i++) {
      const slice = structuredClone(c.slices[(Math.floor(c.slices.length / 2) + i) % c.slices.length]!)
      slice.endpoints![0]!.addresses = [endpointIP(20_000_000 + i)]
      p.applyEndpointSlice(slice)
      syncNs.push(elapsedNs(() => p.sync()))
      updateNs.push(elapsedNs(() => p.nftables!.evaluator()))
      const ops = p.nftables!.lastSync()?.transaction.operations.length
      if (ops !== undefined && ops > 64) throw new Error(`ts-nftables: the one-service sync sent ${ops} operations: not a partial transaction`)
    }
    results.push({ workload: 'sync-one', impl: 'ts-nftables', variant: 'transaction', services: n, ...summarize(syncNs) })
    results.push({ workload: 'sync-one', impl: 'ts-nftables', variant: 'evaluator-update', services: n, ...summarize(updateNs) })
    onStep?.()
  }
  return results
}
