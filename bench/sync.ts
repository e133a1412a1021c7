// The cost of Proxier.sync() in native mode: a full sync of N services, then a sync after one
// service's endpoints changed. kube-proxy's iptables mode rewrote O(N) rules either way before
// partial syncs (KEP-3453); the native mode's one-service sync should not grow with N.
import { generateCluster, type Cluster, type Mix } from './cluster.js'
import { loadProxier } from './iptables.js'
import { MIN_RUNS, rss, summarize, type BenchResult } from './results.js'
import type { Proxier } from '../lib/index.js'
import { endpointIP } from './workload.js'

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export function measureSync(counts: number[], mix: Mix, onStep?: () => void, cluster?: Cluster): BenchResult[] {
  const results: BenchResult[] = []
  for (const n of counts) {
    const c = cluster ?? generateCluster(n, mix)
    // The first sync of every object, each run on a fresh Proxier (the last one stays for the rest).
    const full: number[] = []
    // The process's CPU time next to the wall time: on a shared machine the wall time includes
    // waiting for a core (and the parallel scavenger's helper threads count in the CPU time).
    const cpu: number[] = []
    let proxier: Proxier | undefined
    let rss0 = 0
    for (let run = 0; run < MIN_RUNS; run++) {
      proxier?.dataplane?.destroy()
      rss0 = rss()
      proxier = loadProxier('native', c, n, 1024)
      const c0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      proxier.sync()
      full.push(Number(process.hrtime.bigint() - t0))
      const c1 = process.cpuUsage(c0)
      cpu.push((c1.user + c1.system) * 1000)
    }
    if (proxier === undefined) throw new RangeError('measureSync: no run')
    results.push({ workload: 'sync-full', impl: 'native', services: n, ...summarize(full), cpuNsPerOp: median(cpu) })
    // The service state the maps hold (sized for this cluster); flows are counted apart.
    const maps = proxier.dataplane!.maps()
    const bytesOf = (...names: string[]) => maps.filter((m) => names.includes(m.name)).reduce((sum, m) => sum + m.bytes, 0)
    const conntrack = maps.find((m) => m.name === 'conntrack')!
    const endpoints = c.slices.reduce((sum, sl) => sum + (sl.endpoints?.length ?? 0), 0)
    results.push({
      workload: 'memory', impl: 'native', services: n,
      bytes: bytesOf('services', 'frontends', 'backends', 'revnat'),
      perService: bytesOf('services', 'frontends', 'revnat') / n,
      perEndpoint: bytesOf('backends') / Math.max(1, endpoints),
      perFlow: conntrack.bytes / conntrack.capacity,
      rssBytes: rss() - rss0,
    })

    // Replace one endpoint of one service (a pod rescheduled) and sync, a number of times.
    const times: number[] = []
    const slice = c.slices[Math.floor(c.slices.length / 2)]
    for (let k = 0; k < 30; k++) {
      const changed = structuredClone(slice)
      changed.endpoints![0].addresses = [endpointIP(10_000_000 + k)]
      proxier.applyEndpointSlice(changed)
      const t = process.hrtime.bigint()
      proxier.sync()
      times.push(Number(process.hrtime.bigint() - t))
    }
    results.push({ workload: 'sync-one', impl: 'native', services: n, nsPerOp: median(times) })
    proxier.dataplane?.destroy()
    onStep?.()
  }
  return results
}
