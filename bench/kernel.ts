// The real kernel: kube-proxy's rules for the generated cluster, loaded with iptables-restore
// (nft and legacy backends, where installed) into a network namespace this module creates and
// always deletes. Two measurements per N and backend:
//   sync-full: wall time of one iptables-restore of the node's whole ruleset (built-in chains,
//     kube-proxy's jumps and every KUBE-* chain, what test/iptables/kernel.test.ts loads) into
//     freshly flushed tables. Includes the `ip netns exec` + iptables-restore process start
//     (a few ms), as kube-proxy pays it too.
//   new-flow: the last service in KUBE-SERVICES is pointed at a TCP listener on 127.0.0.3:8080
//     inside the namespace. Before the rules are loaded (empty tables), K new TCP connections
//     (connect + close) go to 127.0.0.3:8080 directly; after loading, K go to the service's
//     cluster IP. nsPerOp is the DIFFERENCE of the median connection latencies: what the nat rule
//     walk + DNAT (+ masquerade) add to a new connection. It is connection latency, not
//     per-packet throughput. (The baseline must be taken without the rules: with them loaded, a
//     direct connection is NEW too and walks all of KUBE-SERVICES without matching.)
// kube-proxy's nftables mode (impl kernel-nftables), where nft is installed: the nftables
// Proxier's transactions for the same cluster through the real `nft -f`, in a namespace of its
// own, repeated RUNS times (median, min, max):
//   sync-full: `nft -f` of the first sync's transaction (the whole table) into an empty namespace;
//   sync-one: `nft -f` of the next sync's partial transaction, after the last service's
//     endpoints moved to the listener (what proxier.nftablesTransaction() then holds);
//   new-flow: as above, to the same last service, once both transactions are loaded.
// Needs root, `ip netns`, python3 for the client. Every address is in 127.0.0.0/8 or a cluster
// IP routed to lo inside the namespace: no traffic leaves it.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Proxier } from '../lib/index.js'
import type { EndpointSlice } from '../lib/k8s/types.js'
import { BENCH_NODE, generateCluster, type Cluster } from './cluster.js'
import { lastServiceTarget } from './iptables.js'
import { summarize, type BenchResult, type Impl } from './results.js'

const BACKENDS: { impl: Impl; restore: string }[] = [
  { impl: 'kernel-nft', restore: 'iptables-nft-restore' },
  { impl: 'kernel-legacy', restore: 'iptables-legacy-restore' },
]
const ENDPOINT = { ip: '127.0.0.3', port: 8080 }
/** New connections per side (direct and through the service). */
const FLOWS = 300
/** Wall-clock budget of one new-flow run; the client stops early past it. */
const FLOW_BUDGET_MS = 20_000
const RESTORE_TIMEOUT_MS = 120_000
/** Repeated nft runs per N (median, min, max); fewer at 10,000 services, where one full `nft -f` takes seconds. */
const NFT_RUNS = 5
const NFT_RUNS_LARGE = 3

function run(cmd: string, args: string[], input?: string, timeout = 20_000) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout, maxBuffer: 64 << 20 })
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') }
}

const which = (cmd: string) => run('sh', ['-c', `command -v ${cmd}`]).ok

export function kernelAvailable(): { ok: boolean; why?: string } {
  if (process.platform !== 'linux') return { ok: false, why: 'not Linux' }
  if (process.getuid?.() !== 0) return { ok: false, why: 'not running as root' }
  if (!which('ip')) return { ok: false, why: 'iproute2 (ip) is not installed' }
  if (!BACKENDS.some((b) => which(b.restore)) && !which('nft')) return { ok: false, why: 'none of iptables-nft-restore, iptables-legacy-restore and nft is installed' }
  const probe = `svcplane-bench-${process.pid}-probe-${randomBytes(2).toString('hex')}`
  const r = run('ip', ['netns', 'add', probe])
  if (!r.ok) return { ok: false, why: `ip netns add failed: ${r.stderr.trim()}` }
  run('ip', ['netns', 'del', probe])
  return { ok: true }
}

/** The bench cluster's Proxier (as loadProxier), without nfacct matches: a fresh namespace has no nfacct objects. */
function kernelProxier(): Proxier {
  return new Proxier({ mode: 'iptables', ...BENCH_NODE, iptables: { nfacct: false } })
}

interface KernelRules {
  ruleset: string
  last: { ip: string; port: number }
  cluster: Cluster
  /** The last service's EndpointSlice with its endpoint moved to ENDPOINT. */
  moved: EndpointSlice
}

/** Rules for N plain services, the last one in KUBE-SERVICES pointed at 127.0.0.3:8080. */
function buildRules(n: number): KernelRules {
  const cluster = generateCluster(n, 'plain')
  const p = kernelProxier()
  for (const s of cluster.services) p.applyService(s)
  for (const s of cluster.slices) p.applyEndpointSlice(s)
  p.sync()
  const last = lastServiceTarget(p.iptablesRestore())
  const svc = cluster.services.find((s) => s.spec?.clusterIP === last.ip)
  if (!svc) throw new Error(`no service with cluster IP ${last.ip}`)
  const slice = cluster.slices.find((s) =>
    s.metadata?.namespace === svc.metadata?.namespace && s.metadata?.labels?.['kubernetes.io/service-name'] === svc.metadata?.name)
  if (!slice) throw new Error(`no EndpointSlice for ${svc.metadata?.name}`)
  const moved: EndpointSlice = structuredClone(slice)
  moved.endpoints = [{ addresses: [ENDPOINT.ip], conditions: { ready: true }, nodeName: 'node-0' }]
  moved.ports = (moved.ports ?? []).map((pt) => ({ ...pt, port: ENDPOINT.port }))
  p.applyEndpointSlice(moved)
  p.sync()
  const ruleset = p.iptables!.ruleset()
  const again = lastServiceTarget(ruleset)
  if (again.ip !== last.ip || again.port !== last.port) throw new Error('the last service moved after its endpoints changed')
  if (!ruleset.includes(`--to-destination ${ENDPOINT.ip}:${ENDPOINT.port}`)) throw new Error('the moved endpoint is not in the ruleset')
  return { ruleset, last, cluster, moved }
}

/** The nftables mode's two transactions for the same change: the first (full) sync, then the partial one after `moved`. */
function nftTransactions({ cluster, moved }: KernelRules): { full: string; partial: string } {
  const p = new Proxier({ mode: 'nftables', ...BENCH_NODE })
  for (const s of cluster.services) p.applyService(s)
  for (const s of cluster.slices) p.applyEndpointSlice(s)
  p.sync()
  const full = p.nftablesTransaction()
  p.applyEndpointSlice(moved)
  p.sync()
  const last = p.nftables!.lastSync()!
  if (last.staleChainDeletion !== undefined) throw new Error('kernel-nftables: the partial sync deleted stale chains (a second passed between the syncs)')
  if (last.transaction.size > 64) throw new Error(`kernel-nftables: the one-service sync sent ${last.transaction.size} operations: not a partial transaction`)
  if (!p.nftablesRuleset().includes(`dnat to ${ENDPOINT.ip}:${ENDPOINT.port}`)) throw new Error('kernel-nftables: the moved endpoint is not in the table')
  return { full, partial: p.nftablesTransaction() }
}

// Listener and client in one process, no threads: after each connect+close the listener accepts
// (untimed), so the accept queue never fills. Prints the median connect+close time to spec.dst.
const CLIENT = `
import json, socket, sys, time
spec = json.loads(sys.stdin.read())
L = socket.socket(); L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L.bind((spec["ep"][0], spec["ep"][1])); L.listen(1024); L.settimeout(2)
def one(dst):
    t0 = time.perf_counter_ns()
    c = socket.socket(); c.settimeout(2)
    c.connect(dst)
    c.close()
    t1 = time.perf_counter_ns()
    a, _ = L.accept(); a.close()
    return t1 - t0
dst = (spec["dst"][0], spec["dst"][1])
for i in range(20):
    one(dst)
d = []
deadline = time.monotonic() + spec["budget"] / 1000
for i in range(spec["k"]):
    d.append(one(dst))
    if time.monotonic() > deadline: break
d.sort()
print(json.dumps({"k": len(d), "median": d[len(d)//2]}))
`

type InNs = (cmd: string, args: string[], input?: string, timeout?: number) => ReturnType<typeof run>
type FlowMedian = { k: number; median: number }

/** Runs fn in a fresh namespace with lo up, the masquerade source and the cluster IP local on lo; always deletes it. */
function inNamespace<T>(tag: string, clusterIP: string, fn: (inNs: InNs) => T): T {
  const ns = `svcplane-bench-${process.pid}-${tag}`
  const inNs: InNs = (cmd, args, input, timeout) => run('ip', ['netns', 'exec', ns, cmd, ...args], input, timeout)
  const add = run('ip', ['netns', 'add', ns])
  if (!add.ok) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()}`)
  try {
    const setup = [
      inNs('ip', ['link', 'set', 'lo', 'up']),
      // kube-proxy's masquerade rule needs a scope-global source on lo (NOTES.md)
      inNs('ip', ['addr', 'add', '127.0.0.2/32', 'dev', 'lo', 'scope', 'global']),
      // the cluster IP is local inside the namespace, so connect() reaches nat OUTPUT
      inNs('ip', ['route', 'add', 'local', `${clusterIP}/32`, 'dev', 'lo']),
    ]
    const bad = setup.find((r) => !r.ok)
    if (bad) throw new Error(`namespace setup (${tag}): ${bad.stderr.trim()}`)
    return fn(inNs)
  } finally {
    run('ip', ['netns', 'del', ns])
  }
}

/** The median connect+close latency to dst from the namespace's python3 client, or undefined (said on stderr). */
function flow(inNs: InNs, dst: [string, number], label: string): FlowMedian | undefined {
  if (!which('python3')) return undefined
  const spec = { ep: [ENDPOINT.ip, ENDPOINT.port], dst, k: FLOWS, budget: FLOW_BUDGET_MS }
  const r = inNs('python3', ['-c', CLIENT], JSON.stringify(spec), FLOW_BUDGET_MS + 15_000)
  if (r.ok) return JSON.parse(r.stdout) as FlowMedian
  process.stderr.write(`kernel new-flow ${label} to ${dst.join(':')} skipped: ${r.stderr.trim().split('\n').slice(-1)[0]}\n`)
  return undefined
}

function timed(fn: () => ReturnType<typeof run>): { ns: number; r: ReturnType<typeof run> } {
  const t0 = process.hrtime.bigint()
  const r = fn()
  return { ns: Number(process.hrtime.bigint() - t0), r }
}

/** Repeated `nft -f` runs of kube-proxy's nftables transactions at N services: full sync, one-service partial sync, new flow. */
function measureNftablesKernel(n: number, rules: KernelRules): BenchResult[] {
  const { full, partial } = nftTransactions(rules)
  const { last } = rules
  const runs = n >= 10_000 ? NFT_RUNS_LARGE : NFT_RUNS
  const fullNs: number[] = []
  const partialNs: number[] = []
  const flowNs: number[] = []
  let flows = Infinity
  inNamespace(`${n}-nftables`, last.ip, (inNs) => {
    const nft = (text: string, what: string) => {
      const { ns, r } = timed(() => inNs('nft', ['-f', '-'], text, RESTORE_TIMEOUT_MS))
      if (!r.ok) throw new Error(`nft -f of the ${what} transaction at ${n} services failed: ${r.stderr.trim().slice(0, 500)}`)
      return ns
    }
    for (let i = 0; i < runs; i++) {
      const flush = inNs('nft', ['flush', 'ruleset'])
      if (!flush.ok) throw new Error(`nft flush ruleset: ${flush.stderr.trim()}`)
      // the baseline without the table, as for iptables: with it, a direct connection is NEW too
      const direct = flow(inNs, [ENDPOINT.ip, ENDPOINT.port], `kernel-nftables N=${n}`)
      fullNs.push(nft(full, 'full'))
      partialNs.push(nft(partial, 'partial'))
      const svc = direct && flow(inNs, [last.ip, last.port], `kernel-nftables N=${n}`)
      if (direct && svc) {
        if (process.env.KERNEL_DEBUG) console.error('kernel-nftables', n, { direct, svc })
        flowNs.push(svc.median - direct.median)
        flows = Math.min(flows, direct.k, svc.k)
      }
    }
  })
  const out: BenchResult[] = [
    { workload: 'sync-full', impl: 'kernel-nftables', services: n, ...summarize(fullNs) },
    { workload: 'sync-one', impl: 'kernel-nftables', services: n, ...summarize(partialNs) },
  ]
  if (flowNs.length > 0) out.push({ workload: 'new-flow', case: 'last', impl: 'kernel-nftables', services: n, flows, ...summarize(flowNs) })
  return out
}

export async function measureKernel(counts: number[], onStep?: () => void): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  const avail = kernelAvailable()
  if (!avail.ok) throw new Error(`kernel benchmark unavailable: ${avail.why}`)
  const backends = BACKENDS.filter((b) => which(b.restore))
  const nftables = which('nft')
  for (const n of counts) {
    if (n < 1) continue // the new-flow target is a service: N = 0 has none
    const rules = buildRules(n)
    const { ruleset, last } = rules
    for (const b of backends) {
      inNamespace(String(n), last.ip, (inNs) => {
        const empty = inNs(b.restore, [], '*nat\nCOMMIT\n*filter\nCOMMIT\n')
        if (!empty.ok) throw new Error(`namespace setup (${b.restore}): ${empty.stderr.trim()}`)
        const direct = flow(inNs, [ENDPOINT.ip, ENDPOINT.port], `${b.impl} N=${n}`)

        const { ns, r: load } = timed(() => inNs(b.restore, [], ruleset, RESTORE_TIMEOUT_MS))
        if (!load.ok) throw new Error(`${b.restore} of ${n} services failed: ${load.stderr.trim().slice(0, 500)}`)
        results.push({ workload: 'sync-full', impl: b.impl, services: n, nsPerOp: ns })

        const svc = direct && flow(inNs, [last.ip, last.port], `${b.impl} N=${n}`)
        if (direct && svc) {
          if (process.env.KERNEL_DEBUG) console.error(b.impl, n, { direct, svc })
          results.push({ workload: 'new-flow', case: 'last', impl: b.impl, services: n, flows: Math.min(direct.k, svc.k), nsPerOp: svc.median - direct.median })
        }
      })
      onStep?.()
    }
    if (nftables) {
      results.push(...measureNftablesKernel(n, rules))
      onStep?.()
    }
  }
  return results
}
