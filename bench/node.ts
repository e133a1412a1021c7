// svcplane run --apply on a real node, measured: in test/node/topology.ts's namespaces (client,
// node, two pods), HTTP requests from the client one connection at a time (connect, GET, close),
// straight to a pod and through a ClusterIP in each mode a node runs (iptables, nftables, the
// userspace proxy, native). Reports requests/s, connect and whole-request latency p50/p99; then
// a UDP blaster's request/reply exchanges per second on the same paths, a TCP bulk transfer's
// MB/s and packets/s, and the native pump's ns/packet.
// Bounded: REQUESTS per run, each with a 2 s timeout; DATAGRAMS per UDP row, at most 30 s;
// BULK_BYTES per bulk row, at most 60 s. Needs root.
// Run: npx tsc -p tsconfig.json && npx ts-node-transpile-only bench/node.ts [REQUESTS] [DATAGRAMS] [BULK_BYTES] [MODE,...]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR, REPO, sh, TCP_PORT, UDP_PORT, Topology, type ClientResult } from '../test/node/topology'
import { clusterObjects, NODE_NAME, runArgs, VIP, writeCluster } from '../test/node/cluster'
import { makeService, makeSlice, port } from '../test/fixtures/objects'

const REQUESTS = Math.min(Number(process.argv[2] ?? 2000), 20000)
/** UDP blaster: datagrams per row (32 in flight), bounded by UDP_MS. */
const DATAGRAMS = Math.min(Number(process.argv[3] ?? 50000), 1000000)
const UDP_MS = 30_000
/** TCP bulk transfer: bytes per row (one connection), bounded by BULK_MS. */
const BULK_BYTES = Math.min(Number(process.argv[4] ?? 200_000_000), 1 << 30)
const BULK_MS = 60_000
const BULK_PORT = 9000
const BULK_VIP = '10.96.0.20'

/** The modes measured, with their extra `svcplane run` flags; another mode a node runs adds its row. */
const MODES: Record<string, string[]> = {
  iptables: [],
  nftables: [],
  userspace: ['--proxy-port-range', '36000-36999'],
  native: [],
}
const PICKED = (process.argv[5] ?? Object.keys(MODES).join(',')).split(',')

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

/** Request/reply datagrams per second through host:port (bench/udp-blaster.js in the client namespace). */
async function udpRow(topo: Topology, what: string, host: string, port: number): Promise<string> {
  const c = topo.spawn('client', process.execPath, [join(REPO, 'bench', 'udp-blaster.js'), host, String(port), String(DATAGRAMS), '32', String(UDP_MS)])
  await c.done(UDP_MS + 10_000)
  const r = JSON.parse(c.lines.find((l) => l.startsWith('{')) ?? '{"sent":0,"received":0,"ms":1}') as { sent: number; received: number; ms: number }
  return `| ${what} | ${r.received}/${r.sent} | ${((r.received / r.ms) * 1000).toFixed(0)} |`
}

/** Packets through an interface (both directions), from its kernel counters; 0 when it does not exist. */
function linkPackets(topo: Topology, where: 'client' | 'node', dev: string): number {
  const r = sh('ip', ['netns', 'exec', topo.ns[where], 'ip', '-j', '-s', 'link', 'show', 'dev', dev])
  if (!r.ok) return 0
  const s = JSON.parse(r.stdout)[0].stats64
  return s.rx.packets + s.tx.packets
}

/** One bulk TCP transfer to host:port (bench/tcp-bulk.js): MB/s and packets/s at the client's interface. */
async function bulkRow(topo: Topology, what: string, host: string, port: number): Promise<string> {
  const before = linkPackets(topo, 'client', 'eth0')
  const tunBefore = linkPackets(topo, 'node', 'svcp0')
  const c = topo.spawn('client', process.execPath, [join(REPO, 'bench', 'tcp-bulk.js'), 'client', host, String(port), String(BULK_BYTES), String(BULK_MS)])
  await c.done(BULK_MS + 10_000)
  const packets = linkPackets(topo, 'client', 'eth0') - before
  const tun = linkPackets(topo, 'node', 'svcp0') - tunBefore
  const r = JSON.parse(c.lines.find((l) => l.startsWith('{')) ?? '{"error":"no output"}') as { bytes?: number; ms?: number; error?: string }
  if (r.error !== undefined || r.bytes === undefined || r.ms === undefined) return `| ${what} | failed: ${r.error} | | | |`
  const perSecond = (n: number) => ((n / r.ms!) * 1000).toFixed(0)
  return `| ${what} | ${r.bytes === BULK_BYTES ? 'all' : `${r.bytes}/${BULK_BYTES}`} | ${(r.bytes / r.ms / 1000).toFixed(0)} | ${perSecond(packets)} | ${tun > 0 ? perSecond(tun) : '-'} |`
}

/** The bench's cluster: the tests' Services and one for the bulk sink on pod1. */
function benchObjects(): unknown[] {
  return [
    ...clusterObjects(),
    makeService('ns', 'bulk', { clusterIP: BULK_VIP, ports: [port('bulk', 80, { targetPort: BULK_PORT })] }),
    makeSlice('ns', 'bulk', 1, [{ ip: ADDR.pod1, node: NODE_NAME }], [{ name: 'bulk', port: BULK_PORT }]),
  ]
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
    await topo.spawn('pod1', process.execPath, [join(REPO, 'bench', 'tcp-bulk.js'), 'server', String(BULK_PORT)]).waitFor(/^listening$/, 30_000)
    // The client reaches the pods directly too (through the node, no NAT).
    topo.exec('client', 'ip', ['route', 'add', ADDR.podCIDR, 'via', ADDR.nodeUplink])
    console.log(`${new Date().toISOString()}: ${REQUESTS} sequential HTTP requests per row, client -> node -> pod (veth + bridge)`)
    // The userspace proxy accepts the connection itself: its connect time ends at the proxy, the
    // request time includes its own dial to the pod.
    console.log('| path | answered | requests/s | connect p50 ms | connect p99 ms | request p50 ms | request p99 ms |\n|---|---|---|---|---|---|---|')
    const udp: string[] = []
    const bulk: string[] = []
    const pumps: string[] = []
    for (const mode of PICKED) {
      const file = join(dir, `${mode}.json`)
      writeCluster(file, benchObjects())
      const run = topo.spawn('node', process.execPath, runArgs(file, mode, MODES[mode]))
      await run.waitFor(/applied full/, 60_000)
      for (const [what, host, port] of [[`direct to a pod (${mode} rules loaded)`, ADDR.pod1, TCP_PORT], [`ClusterIP, ${mode} mode`, VIP.web, 80]] as const) {
        const t0 = performance.now()
        const rs = await topo.client('tcp', host, port, REQUESTS)
        console.log(summary(what, rs, performance.now() - t0))
      }
      udp.push(await udpRow(topo, `direct to a pod (${mode} rules loaded)`, ADDR.pod1, UDP_PORT), await udpRow(topo, `ClusterIP, ${mode} mode`, VIP.web, 53))
      bulk.push(await bulkRow(topo, `direct to a pod (${mode} rules loaded)`, ADDR.pod1, BULK_PORT), await bulkRow(topo, `ClusterIP, ${mode} mode`, BULK_VIP, 80))
      await run.stop()
      // Native mode: the pump's own account of the packets it moved.
      pumps.push(...run.lines.filter((l) => l.includes('native packet pump')).map((l) => l.replace(/^.*native packet pump: /, '')))
      topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup'])
    }
    console.log(`\nUDP request/reply, ${DATAGRAMS} datagrams per row, 32 in flight (at most ${UDP_MS / 1000} s)\n| path | answered | exchanges/s |\n|---|---|---|`)
    for (const row of udp) console.log(row)
    console.log(`\nTCP bulk transfer, ${BULK_BYTES} bytes per row on one connection (at most ${BULK_MS / 1000} s)\n| path | transferred | MB/s | packets/s at the client (GSO: one per super-packet) | packets/s through the TUN (in + out) |\n|---|---|---|---|---|`)
    for (const row of bulk) console.log(row)
    for (const p of pumps) console.log(`\nnative pump over the whole native run: ${p}`)
  } finally {
    await topo.remove()
    rmSync(dir, { recursive: true, force: true })
  }
}

void main()
