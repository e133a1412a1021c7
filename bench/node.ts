// svcplane run --apply on a real node, measured: in test/node/topology.ts's namespaces (client,
// node, two pods), HTTP requests from the client one connection at a time (connect, GET, close),
// straight to a pod and through a ClusterIP in iptables, nftables and native mode. Reports
// requests/s and connect latency p50/p99; then a UDP blaster's request/reply exchanges per second
// on the same paths, and the native pump's ns/packet. Bounded: REQUESTS per run, each with a 2 s
// timeout; DATAGRAMS per UDP row, at most 30 s. Needs root.
// Run: npx tsc -p tsconfig.json && npx ts-node-transpile-only bench/node.ts [REQUESTS] [DATAGRAMS]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR, REPO, TCP_PORT, UDP_PORT, Topology, type ClientResult } from '../test/node/topology'
import { clusterObjects, runArgs, VIP, writeCluster } from '../test/node/cluster'

const REQUESTS = Math.min(Number(process.argv[2] ?? 2000), 20000)
/** UDP blaster: datagrams per row (32 in flight), bounded by UDP_MS. */
const DATAGRAMS = Math.min(Number(process.argv[3] ?? 50000), 1000000)
const UDP_MS = 30_000

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

function summary(what: string, rs: ClientResult[], wallMs: number): string {
  const ok = rs.filter((r) => r.error === undefined)
  const connect = ok.map((r) => r.connectMs!).sort((a, b) => a - b)
  return `| ${what} | ${ok.length}/${rs.length} | ${((ok.length / wallMs) * 1000).toFixed(0)} | ${quantile(connect, 0.5).toFixed(3)} | ${quantile(connect, 0.99).toFixed(3)} |`
}

/** Request/reply datagrams per second through host:port (bench/udp-blaster.js in the client namespace). */
async function udpRow(topo: Topology, what: string, host: string, port: number): Promise<string> {
  const c = topo.spawn('client', process.execPath, [join(REPO, 'bench', 'udp-blaster.js'), host, String(port), String(DATAGRAMS), '32', String(UDP_MS)])
  await c.done(UDP_MS + 10_000)
  const r = JSON.parse(c.lines.find((l) => l.startsWith('{')) ?? '{"sent":0,"received":0,"ms":1}') as { sent: number; received: number; ms: number }
  return `| ${what} | ${r.received}/${r.sent} | ${((r.received / r.ms) * 1000).toFixed(0)} |`
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
    console.log('| path | answered | requests/s | connect p50 ms | connect p99 ms |\n|---|---|---|---|---|')
    const udp: string[] = []
    const pumps: string[] = []
    for (const mode of ['iptables', 'nftables', 'native']) {
      const file = join(dir, `${mode}.json`)
      writeCluster(file, clusterObjects())
      const run = topo.spawn('node', process.execPath, runArgs(file, mode))
      await run.waitFor(/applied full/, 60_000)
      for (const [what, host, port] of [[`direct to a pod (${mode} rules loaded)`, ADDR.pod1, TCP_PORT], [`ClusterIP, ${mode} mode`, VIP.web, 80]] as const) {
        const t0 = performance.now()
        const rs = await topo.client('tcp', host, port, REQUESTS)
        console.log(summary(what, rs, performance.now() - t0))
      }
      udp.push(await udpRow(topo, `direct to a pod (${mode} rules loaded)`, ADDR.pod1, UDP_PORT), await udpRow(topo, `ClusterIP, ${mode} mode`, VIP.web, 53))
      await run.stop()
      // Native mode: the pump's own account of the packets it moved.
      pumps.push(...run.lines.filter((l) => l.includes('native packet pump')).map((l) => l.replace(/^.*native packet pump: /, '')))
      topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup'])
    }
    console.log(`\nUDP request/reply, ${DATAGRAMS} datagrams per row, 32 in flight (at most ${UDP_MS / 1000} s)\n| path | answered | exchanges/s |\n|---|---|---|`)
    for (const row of udp) console.log(row)
    for (const p of pumps) console.log(`\nnative pump over the whole native run: ${p}`)
  } finally {
    await topo.remove()
    rmSync(dir, { recursive: true, force: true })
  }
}

void main()
