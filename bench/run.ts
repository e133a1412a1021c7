// `npm run bench`: the project's main job. On deterministic workloads (or the user's own
// cluster dump) it measures the hash-based native dataplane against kube-proxy's iptables
// rules walked linearly, prints a table, and writes a Markdown report with SVG charts.
import { execSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseObjects, splitObjects } from '../lib/k8s/load.js'
import type { EndpointSlice, Service } from '../lib/k8s/types.js'
import type { Cluster, Mix } from './cluster.js'
import { measureEstablished, measureNewFlows } from './dataplane.js'
import { measureFloor, withRatios } from './floor.js'
import { measureIptables } from './iptables.js'
import { measureNftables } from './nft.js'
import { measureIpvs } from './ipvs.js'
import { kernelAvailable, measureKernel } from './kernel.js'
import { benchNodeThreads, benchPacketThreads, benchPackets } from './packets.js'
import { textTable, writeReport, type Machine } from './report.js'
import type { BenchResult } from './results.js'
import { measureSync } from './sync.js'
import { measureUserspace, userspaceTable } from './userspace.js'

const USAGE = `usage: npm run bench -- [options]

  --full            also 100,000 services and larger runs (takes longer)
  --kernel          also the real kernel: iptables-restore (nft and legacy) and new connections
                    (and kube-proxy's nftables table through nft -f, where nft is installed)
                    in a network namespace the harness creates (root only; skipped otherwise)
  --mix MIX         plain (ClusterIP, 2 endpoints; default) or realistic
                    (NodePort, LoadBalancer, affinity, several ports, 1-10 endpoints)
  --cluster FILE    measure your own cluster: a \`kubectl get services,endpointslices -A -o json\` dump
  --json FILE       write the results as JSON
  --out DIR         write report.md and SVG charts to DIR (default bench/out)
  -h, --help        this text`

interface Args {
  full: boolean
  kernel: boolean
  mix: Mix
  cluster?: string
  json?: string
  out: string
}

function parseArgs(argv: string[]): Args {
  const a: Args = { full: false, kernel: false, mix: 'plain', out: 'bench/out' }
  const value = (i: number, flag: string) => {
    const v = argv[i + 1]
    if (v === undefined || v.startsWith('--')) usage(`${flag} needs a value`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--full') a.full = true
    else if (arg === '--kernel') a.kernel = true
    else if (arg === '--mix') {
      const m = value(i++, arg)
      if (m !== 'plain' && m !== 'realistic') usage(`--mix must be plain or realistic, got ${m}`)
      a.mix = m
    } else if (arg === '--cluster') a.cluster = value(i++, arg)
    else if (arg === '--json') a.json = value(i++, arg)
    else if (arg === '--out') a.out = value(i++, arg)
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE)
      process.exit(0)
    } else usage(`unknown argument ${arg}`)
  }
  return a
}

function usage(message: string): never {
  console.error(`bench: ${message}\n\n${USAGE}`)
  process.exit(2)
}

function machine(): Machine {
  let compiler = 'unknown'
  try {
    compiler = execSync('c++ --version', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]
  } catch {
    // no compiler on PATH: the addon came prebuilt
  }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    compiler,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
  }
}

function loadCluster(file: string): Cluster {
  const input: unknown = JSON.parse(fs.readFileSync(file, 'utf8'))
  parseObjects(input) // validates every object, naming the first bad one
  const split = splitObjects(input)
  const services = split.services as Service[]
  const slices = split.endpointSlices as EndpointSlice[]
  if (services.length === 0) throw new Error(`${file}: no Service objects`)
  return { services, slices }
}

class Progress {
  private done = 0
  constructor(private total: number) {}
  step(label: string) {
    this.done++
    this.total = Math.max(this.total, this.done)
    const width = 30
    const filled = Math.min(width, Math.round((this.done / this.total) * width))
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${label}`
    if (process.stderr.isTTY) process.stderr.write(`\r${text.padEnd(70)}${this.done === this.total ? '\n' : ''}`)
    else process.stderr.write(`${text}\n`)
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  let cluster: Cluster | undefined
  if (args.cluster) {
    try {
      cluster = loadCluster(args.cluster)
    } catch (e) {
      console.error(`bench: cannot load --cluster ${args.cluster}: ${(e as Error).message}`)
      process.exit(1)
    }
  }
  const counts = cluster ? [cluster.services.length] : args.full ? [10, 100, 1000, 10_000, 100_000] : [10, 100, 1000, 10_000]
  const flowCounts = [1000, 100_000, 1_000_000]
  const newFlows = args.full ? 500_000 : 200_000
  const iptBudget = { packets: args.full ? 20_000 : 5_000, budgetMs: args.full ? 4000 : 1500 }
  // kube-proxy's rules for 100,000 services, parsed and compiled into the TypeScript evaluator,
  // need more than the 4 GiB JavaScript heap of a pointer-compressed Node: linear walks stop at
  // 10,000 generated services.
  const iptablesCounts = cluster ? counts : counts.filter((n) => n <= 10_000)
  const kernel = args.kernel ? kernelAvailable() : undefined
  if (kernel && !kernel.ok) console.error(`bench: --kernel skipped: ${kernel.why}`)
  // The kernel step runs once per backend (nft, legacy) and once for the nftables table.
  const progress = new Progress(counts.length * 2 + iptablesCounts.length * (kernel?.ok ? 6 : 3) + flowCounts.length + 5)
  const floor = measureFloor()
  progress.step('memory floor')
  const measured: BenchResult[] = [
    floor,
    ...measureNewFlows(counts, args.mix, newFlows, () => progress.step('native new flows'), cluster),
    ...measureIptables(iptablesCounts, args.mix, iptBudget, () => progress.step('iptables (TypeScript evaluator)'), cluster),
    ...measureNftables(iptablesCounts, args.mix, iptBudget, () => progress.step('nftables (TypeScript evaluator)'), cluster),
    ...measureIpvs(iptablesCounts, args.mix, iptBudget, () => progress.step('ipvs mode (native core)'), cluster),
    ...measureSync(counts, args.mix, () => progress.step('native sync'), cluster),
    ...measureEstablished(flowCounts, () => progress.step('established flows')),
    ...benchPackets(!args.full),
    ...benchPacketThreads(!args.full),
    ...benchNodeThreads(!args.full),
    ...(kernel?.ok ? await measureKernel(iptablesCounts, () => progress.step('real kernel')) : []),
  ]
  progress.step('packet path')
  const results = withRatios(measured, floor)
  // Sockets on loopback: the userspace mode's proxy port against a direct connection.
  const userspace = await measureUserspace({ durationS: args.full ? 10 : 3, connections: 16, connects: args.full ? 5000 : 1000 }, (label) => progress.step(label))
  const m = machine()
  const notes = [
    `workload: ${cluster ? `${args.cluster} (${cluster.services.length} services)` : `${args.mix}, generated from seed 1`}`,
    'new-flow: conntrack misses; native-batch decides 256 flows per call, native-call one flow per call from JS; ts-iptables walks kube-proxy\'s rules (nat and filter, as netfilter does for a new connection) in the TypeScript evaluator; cpp-linear walks the same nat rules first-match in C++, 256 packets per call.',
    'ts-nftables: kube-proxy\'s nftables table (mode nftables) walked by the TypeScript nft evaluator, base chains hook by hook, verdict maps as hash lookups; sync-full transaction / sync-one transaction: the mode\'s sync() building kube-proxy\'s full and partial nft transactions; sync-full evaluator-load: the evaluator route() uses replaying the first (whole) transaction; sync-one evaluator-update: it replaying one service\'s partial transaction (sync-one: median of 5 changes); new-flow:last:route: route() through the Proxier, conntrack first.',
    'ipvs: kube-proxy\'s IPVS mode (mode ipvs) through Proxier.route(): the ipset/iptables side (masquerade mark, filters) in TypeScript, then the virtual server, rr scheduler and connection on the native core; sync-full / sync-one: the mode\'s sync() programming the virtual servers, ipsets and rules, and the native core.',
    'new-flow:last: every packet to the service that KUBE-SERVICES matches last, the worst case for a linear walk; new-flow:spread: packets spread over all services.',
    'sync-one: one endpoint of one service replaced, then sync() (native: incremental; ts-iptables reload: re-render and reload the evaluator; full-text / partial-text: producing kube-proxy\'s full or partial (KEP-3453) iptables-restore text); sync-full: the first sync of every object.',
    `floor: one random, independent cache-line read in a table the size of a ${(1e6).toLocaleString('en-US')}-flow conntrack, measured in C++ in this run (bench/floor.ts); "x floor" is a result's ns per op divided by it. Native figures are the median of at least 5 runs (runs, min, max in the JSON).`,
    'packet-path: Dataplane.processPackets on 64-byte IPv4/TCP frames (parse, conntrack, DNAT rewrite, checksums), 100 services; conntrack-hit cycles over established flows, new-flow offers fresh tuples to a full conntrack (each evicts the oldest); batch is packets per call.',
    'packet-path native-shards: the same workloads on `threads` C++ threads, each serving its own shard of one ShardedDataplane (docs/threads.md), frames steered to their shard beforehand; the figure is all threads together (elapsed), cpuNsPerOp in the JSON the same from the threads\' CPU time, which other load on the machine does not inflate.',
    'packet-path node-threads: Dataplane({ threads }).processPackets called from Node, batches of 256 and 4096: the addon steers each batch to the shards and runs them on a persistent pool of native threads, the calling thread serving one; elapsed time per packet, wakeups included.',
    'memory: native bytes are the services, frontends, backends and revnat maps as allocated for this cluster (capacities 6-12x the counts, so per-service and per-endpoint figures are upper bounds); per flow is the conntrack record plus its index slots; ts-iptables is the size of the iptables-restore text (the kernel holds about 7.9 KiB per service with nft, NOTES.md); rss is the growth of the process while the state was built.',
  ]
  if (iptablesCounts.length < counts.length)
    notes.push('ts-iptables, cpp-linear and the kernel runs stop at 10,000 services: compiling kube-proxy\'s rules for 100,000 services into the TypeScript evaluator needs more than the 4 GiB heap of this Node build.')
  if (kernel?.ok)
    notes.push('kernel-nft / kernel-legacy: sync-full is one iptables-restore of the whole ruleset into a fresh network namespace; new-flow is the difference of the median connect+close latency of 300 loopback TCP connections through the last service and straight to its endpoint (one python3 client), so small-N values carry about ±15 µs of noise.')
  if (kernel?.ok)
    notes.push('kernel-nftables: kube-proxy\'s nftables table (mode nftables) through the real `nft -f` in a namespace of its own: sync-full is the first sync\'s transaction (the whole table) into an empty namespace, sync-one the next sync\'s partial transaction after the last service\'s endpoints changed, new-flow as for kernel-nft to the same service; median of 5 runs (3 at 10,000 services) with min and max.')
  console.log(`\nsvcplane benchmark · ${m.cpu} (${m.cores} cores) · Node ${m.node} · ${m.date.slice(0, 10)}\n`)
  console.log(textTable(results))
  console.log(`\nuserspace mode (loopback TCP, echo of 64 bytes, 16 keep-alive connections; connect = connect + one request + close):\n${userspaceTable(userspace)}`)
  const direct = userspace.find((u) => u.path === 'direct')
  notes.push(`userspace mode, loopback TCP through the proxy port vs straight to the endpoint: ${userspace.map((u) => `${u.path} ${u.requestsPerSecond} requests/s${direct ? ` (${(u.requestsPerSecond / direct.requestsPerSecond).toFixed(2)}x)` : ''}, connection setup p50 ${u.connectP50Us} µs / p99 ${u.connectP99Us} µs`).join('; ')}. Endpoint and load generator run in child processes; service-proxy is the same socket proxy deciding with the native dataplane.`)
  const files = writeReport(args.out, m, results, notes)
  console.log(`\nreport: ${path.join(args.out, 'report.md')} (${files.length - 1} charts)`)
  if (args.json) {
    fs.writeFileSync(args.json, JSON.stringify({ machine: m, results, userspace }, null, 2) + '\n')
    console.log(`json: ${args.json}`)
  }
}

main().catch((e: Error) => {
  console.error(`bench: ${e.message}`)
  process.exit(1)
})
