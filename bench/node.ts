// svcplane run --apply on a real node, measured: in test/node/topology.ts's namespaces (client,
// node, two pods), HTTP requests from the client one connection at a time (connect, GET, close),
// straight to a pod and through a ClusterIP in each mode a node runs (iptables, nftables, the
// userspace proxy). Reports requests/s, connect latency and whole-request latency p50/p99. Bounded: REQUESTS per run, each with a 2 s timeout. Needs root.
// Run: npx tsc -p tsconfig.json && npx ts-node-transpile-only bench/node.ts [REQUESTS] [MODE,...]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR, TCP_PORT, Topology, type ClientResult } from '../test/node/topology'
import { clusterObjects, runArgs, VIP, writeCluster } from '../test/node/cluster'

const REQUESTS = Math.min(Number(process.argv[2] ?? 2000), 20000)

/** The modes measured, with their extra `svcplane run` flags; another mode a node runs adds its row. */
const MODES: Record<string, string[]> = {
  iptables: [],
  nftables: [],
  userspace: ['--proxy-port-range', '36000-36999'],
}
const PICKED = (process.argv[3] ?? Object.keys(MODES).join(',')).split(',')

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

function summary(what: string, rs: ClientResult[], wallMs: number): string {
  const ok = rs.filter((r) => r.error === undefined)
  const connect = ok.map((r) => r.connectMs!).sort((a, b) => a - b)
  const request = ok.map((r) => r.ms!).sort((a, b) => a - b)
  const ms = (sorted: number[]) => [quantile(sorted, 0.5), quantile(sorted, 0.99)].map((x) => x.toFixed(3)).join(' | ')
  return `| ${what} | ${ok.length}/${rs.length} | ${((ok.length / wallMs) * 1000).toFixed(0)} | ${ms(connect)} | ${ms(request)} |`
}

async function main(): Promise<void> {
  const topo = Topology.create('bench')
  if ('skip' in topo) {
    console.log(`skipped: ${topo.skip}`)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'svcplane-bench-node-'))
  try {
    await topo.startBackends()
    // The client reaches the pods directly too (through the node, no NAT).
    topo.exec('client', 'ip', ['route', 'add', ADDR.podCIDR, 'via', ADDR.nodeUplink])
    console.log(`${new Date().toISOString()}: ${REQUESTS} sequential HTTP requests per row, client -> node -> pod (veth + bridge)`)
    // The userspace proxy accepts the connection itself: its connect time ends at the proxy, the
    // request time includes its own dial to the pod.
    console.log('| path | answered | requests/s | connect p50 ms | connect p99 ms | request p50 ms | request p99 ms |\n|---|---|---|---|---|---|---|')
    for (const mode of PICKED) {
      const file = join(dir, `${mode}.json`)
      writeCluster(file, clusterObjects())
      const run = topo.spawn('node', process.execPath, runArgs(file, mode, MODES[mode]))
      await run.waitFor(/applied full/, 60_000)
      for (const [what, host, port] of [[`direct to a pod (${mode} rules loaded)`, ADDR.pod1, TCP_PORT], [`ClusterIP, ${mode} mode`, VIP.web, 80]] as const) {
        const t0 = performance.now()
        const rs = await topo.client('tcp', host, port, REQUESTS)
        console.log(summary(what, rs, performance.now() - t0))
      }
      await run.stop()
      topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup'])
    }
  } finally {
    await topo.remove()
    rmSync(dir, { recursive: true, force: true })
  }
}

void main()
