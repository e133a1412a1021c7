// kube-proxy's nftables ruleset for the same cluster, through the Proxier in mode 'nftables':
// the general nft evaluator (`ts-nftables`, lib/nftables/nft) on new connections, which must
// stay flat in the number of services (verdict maps are hash lookups, never walks), next to
// ts-iptables' O(n) walk; and the mode's own syncs (a full first transaction, then a partial
// one for one changed service, as kube-proxy sends them to nft).
import { Proxier } from '../lib/index.js'
import { BENCH_NODE, generateCluster, type Cluster, type Mix } from './cluster.js'
import type { IptablesBudget } from './iptables.js'
import type { BenchResult } from './results.js'
import { timeNewFlowCases } from './new-flow-cases.js'
import { clientIP, endpointIP } from './workload.js'

function loadNftables(cluster: Cluster): Proxier {
  const p = new Proxier({ mode: 'nftables', ...BENCH_NODE })
  for (const s of cluster.services) p.applyService(s)
  for (const s of cluster.slices) p.applyEndpointSlice(s)
  return p
}

function elapsed(fn: () => void): number {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t)
}

export function measureNftables(counts: number[], mix: Mix, budget: IptablesBudget, onStep?: () => void, cluster?: Cluster): BenchResult[] {
  const results: BenchResult[] = []
  for (const n of counts) {
    const c = cluster ?? generateCluster(n, mix)
    const p = loadNftables(c)
    results.push({ workload: 'sync-full', impl: 'ts-nftables', variant: 'transaction', services: n, nsPerOp: elapsed(() => p.sync()) })
    let evaluator!: ReturnType<NonNullable<Proxier['nftables']>['evaluator']>
    results.push({ workload: 'sync-full', impl: 'ts-nftables', variant: 'evaluator-load', services: n, nsPerOp: elapsed(() => (evaluator = p.nftables!.evaluator())) })
    const targets = c.services.map((s) => ({ ip: s.spec!.clusterIP!, port: s.spec!.ports![0].port, protocol: (s.spec!.ports![0].protocol ?? 'TCP') as 'TCP' }))
    const last = targets[targets.length - 1]!
    // Every packet must be DNATed (each generated service has endpoints): the evaluator walks the real table.
    const probe = evaluator.evaluate({ src: clientIP(0), sport: 1024, dst: last.ip, dport: last.port, protocol: last.protocol, hook: 'prerouting', now: 1 })
    if (probe.action !== 'dnat') throw new Error(`ts-nftables: a packet to ${last.ip}:${last.port} was not DNATed (${probe.action})`)
    results.push(...timeNewFlowCases('ts-nftables', n, targets, budget, (src, sport, t, now) => {
      evaluator.evaluate({ src, sport, dst: t.ip, dport: t.port, protocol: t.protocol, hook: 'prerouting', now })
    }))
    // One endpoint of one service replaced: kube-proxy's partial transaction touches only that service.
    const slice = structuredClone(c.slices[Math.floor(c.slices.length / 2)]!)
    slice.endpoints![0]!.addresses = [endpointIP(20_000_000)]
    p.applyEndpointSlice(slice)
    results.push({ workload: 'sync-one', impl: 'ts-nftables', variant: 'transaction', services: n, nsPerOp: elapsed(() => p.sync()) })
    const ops = p.nftables!.lastSync()?.transaction.operations.length
    if (ops !== undefined && ops > 64) throw new Error(`ts-nftables: the one-service sync sent ${ops} operations: not a partial transaction`)
    onStep?.()
  }
  return results
}
