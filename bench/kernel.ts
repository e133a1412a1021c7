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
// Needs root, `ip netns`, python3 for the client. Every address is in 127.0.0.0/8 or a cluster
// IP routed to lo inside the namespace: no traffic leaves it.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Proxier } from '../lib/index.js'
import type { EndpointSlice } from '../lib/k8s/types.js'
import { BENCH_NODE, generateCluster } from './cluster.js'
import { lastServiceTarget } from './iptables.js'
import type { BenchResult, Impl } from './results.js'

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

function run(cmd: string, args: string[], input?: string, timeout = 20_000) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout, maxBuffer: 64 << 20 })
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') }
}

const which = (cmd: string) => run('sh', ['-c', `command -v ${cmd}`]).ok

export function kernelAvailable(): { ok: boolean; why?: string } {
  if (process.platform !== 'linux') return { ok: false, why: 'not Linux' }
  if (process.getuid?.() !== 0) return { ok: false, why: 'not running as root' }
  if (!which('ip')) return { ok: false, why: 'iproute2 (ip) is not installed' }
  if (!BACKENDS.some((b) => which(b.restore))) return { ok: false, why: 'neither iptables-nft-restore nor iptables-legacy-restore is installed' }
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

/** Rules for N plain services, the last one in KUBE-SERVICES pointed at 127.0.0.3:8080. */
function buildRules(n: number): { ruleset: string; last: { ip: string; port: number } } {
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
  return { ruleset, last }
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

export async function measureKernel(counts: number[], onStep?: () => void): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  const avail = kernelAvailable()
  if (!avail.ok) throw new Error(`kernel benchmark unavailable: ${avail.why}`)
  const backends = BACKENDS.filter((b) => which(b.restore))
  const python = which('python3')
  for (const n of counts) {
    if (n < 1) continue // the new-flow target is a service: N = 0 has none
    const { ruleset, last } = buildRules(n)
    for (const b of backends) {
      const ns = `svcplane-bench-${process.pid}-${n}`
      const inNs = (cmd: string, args: string[], input?: string, timeout?: number) => run('ip', ['netns', 'exec', ns, cmd, ...args], input, timeout)
      const add = run('ip', ['netns', 'add', ns])
      if (!add.ok) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()}`)
      try {
        const setup = [
          inNs('ip', ['link', 'set', 'lo', 'up']),
          // kube-proxy's masquerade rule needs a scope-global source on lo (NOTES.md)
          inNs('ip', ['addr', 'add', '127.0.0.2/32', 'dev', 'lo', 'scope', 'global']),
          // the cluster IP is local inside the namespace, so connect() reaches nat OUTPUT
          inNs('ip', ['route', 'add', 'local', `${last.ip}/32`, 'dev', 'lo']),
          inNs(b.restore, [], '*nat\nCOMMIT\n*filter\nCOMMIT\n'),
        ]
        const bad = setup.find((r) => !r.ok)
        if (bad) throw new Error(`namespace setup (${b.restore}): ${bad.stderr.trim()}`)

        const flow = (dst: [string, number]): { k: number; median: number } | undefined => {
          if (!python) return undefined
          const spec = { ep: [ENDPOINT.ip, ENDPOINT.port], dst, k: FLOWS, budget: FLOW_BUDGET_MS }
          const r = inNs('python3', ['-c', CLIENT], JSON.stringify(spec), FLOW_BUDGET_MS + 15_000)
          if (r.ok) return JSON.parse(r.stdout) as { k: number; median: number }
          process.stderr.write(`kernel new-flow ${b.impl} N=${n} to ${dst.join(':')} skipped: ${r.stderr.trim().split('\n').slice(-1)[0]}\n`)
          return undefined
        }
        const direct = flow([ENDPOINT.ip, ENDPOINT.port])

        const t0 = process.hrtime.bigint()
        const load = inNs(b.restore, [], ruleset, RESTORE_TIMEOUT_MS)
        const ns_ = Number(process.hrtime.bigint() - t0)
        if (!load.ok) throw new Error(`${b.restore} of ${n} services failed: ${load.stderr.trim().slice(0, 500)}`)
        results.push({ workload: 'sync-full', impl: b.impl, services: n, nsPerOp: ns_ })

        const svc = direct && flow([last.ip, last.port])
        if (direct && svc) {
          if (process.env.KERNEL_DEBUG) console.error(b.impl, n, { direct, svc })
          results.push({ workload: 'new-flow', case: 'last', impl: b.impl, services: n, flows: Math.min(direct.k, svc.k), nsPerOp: svc.median - direct.median })
        }
      } finally {
        run('ip', ['netns', 'del', ns])
      }
      onStep?.()
    }
  }
  return results
}
