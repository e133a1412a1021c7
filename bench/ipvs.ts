// kube-proxy's IPVS mode for the same cluster, through the Proxier in mode 'ipvs': new
// connections decided by route() (the ipset/iptables side in TypeScript, then the virtual
// server, scheduler and connection on the native core), which must stay flat in the number of
// services (the virtual servers and ipsets are hash lookups, the rules a constant set), next to
// ts-iptables' O(n) walk; and the mode's syncs (the first, and one changed service).
import { Proxier } from '../lib/index.js'
import { BENCH_NODE, generateCluster, type Cluster, type Mix } from './cluster.js'
import type { IptablesBudget } from './iptables.js'
import { elapsedNs, type BenchResult } from './results.js'
import { serviceTargets, timeNewFlowCases } from './new-flow-cases.js'
import { clientIP, endpointIP } from './workload.js'

export function measureIpvs(counts: number[], mix: Mix, budget: IptablesBudget, onStep?: () => void, cluster?: Cluster): BenchResult[] {
  const results: BenchResult[] = []
  for (const n of counts) {
    const c = cluster ?? generateCluster(n, mix)
    const p = new Proxier({ mode: 'ipvs', ...BENCH_NODE })
    for (const s of c.services) p.applyService(s)
    for (const s of c.slices) p.applyEndpointSlice(s)
    results.push({ workload: 'sync-full', impl: 'ipvs', services: n, nsPerOp: elapsedNs(() => p.sync()) })
    if (p.ipvs?.native === undefined) throw new Error('ipvs: the mode is not deciding on the native core')
    const targets = serviceTargets(c)
    const last = targets[targets.length - 1]!
    // Every packet must be DNATed (each generated service has endpoints) by a virtual server.
    const probe = p.route({ src: clientIP(300_000), sport: 1024, dst: last.ip, dport: last.port, protocol: last.protocol, hook: 'prerouting', now: 1 })
    if (probe.action !== 'dnat') throw new Error(`ipvs: a packet to ${last.ip}:${last.port} was not DNATed (${probe.action})`)
    results.push(...timeNewFlowCases('ipvs', n, targets, budget, (src, sport, t, now) => {
      p.route({ src, sport, dst: t.ip, dport: t.port, protocol: t.protocol, hook: 'prerouting', now })
    }))
    // One endpoint of one service replaced: the mode recomputes only that ServicePort's virtual servers.
    const slice = structuredClone(c.slices[Math.floor(c.slices.length / 2)]!)
    slice.endpoints![0]!.addresses = [endpointIP(20_000_000)]
    p.applyEndpointSlice(slice)
    results.push({ workload: 'sync-one', impl: 'ipvs', services: n, nsPerOp: elapsedNs(() => p.sync()) })
    p.ipvs.native.dataplane.destroy()
    onStep?.()
  }
  return results
}
