// The cost of Proxier.sync(): a full sync of N services, then a sync after one service's
// endpoints changed. kube-proxy's iptables mode rewrites O(N) rules either way (partial sync
// only from KEP-3453 on); the native mode's one-service sync should not grow with N.
import { Proxier } from '../lib/index.js'
import { BENCH_NODE, generateCluster, type Mix } from './cluster.js'
import { endpointIP } from './workload.js'

export interface SyncResult {
  workload: 'sync-full' | 'sync-one'
  impl: 'native'
  services: number
  nsPerOp: number
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export function measureSync(serviceCounts: number[], mix: Mix = 'plain', onStep?: () => void): SyncResult[] {
  const results: SyncResult[] = []
  for (const n of serviceCounts) {
    const { services, slices } = generateCluster(n, mix)
    const proxier = new Proxier({
      mode: 'native',
      ...BENCH_NODE,
      capacity: { services: 2 * n * 3 + 16, frontends: 8 * n + 16, backends: 12 * n + 64, conntrack: 1024, affinity: 1024 },
    })
    for (const s of services) proxier.applyService(s)
    for (const s of slices) proxier.applyEndpointSlice(s)
    const t0 = process.hrtime.bigint()
    proxier.sync()
    results.push({ workload: 'sync-full', impl: 'native', services: n, nsPerOp: Number(process.hrtime.bigint() - t0) })

    // Change one service's endpoints (a pod replaced) and sync, a number of times.
    const times: number[] = []
    const slice = slices[Math.floor(n / 2)]
    for (let k = 0; k < 30; k++) {
      const changed = structuredClone(slice)
      changed.endpoints![0].addresses = [endpointIP(10_000_000 + k)]
      proxier.applyEndpointSlice(changed)
      const t = process.hrtime.bigint()
      proxier.sync()
      times.push(Number(process.hrtime.bigint() - t))
    }
    results.push({ workload: 'sync-one', impl: 'native', services: n, nsPerOp: median(times) })
    onStep?.()
  }
  return results
}
