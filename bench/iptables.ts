// The O(n) side: kube-proxy's iptables rules for the same cluster, walked by the TypeScript
// netfilter evaluator (`ts-iptables`), through the Proxier in mode 'iptables'. Packets are
// new connections (conntrack misses), the case where iptables walks KUBE-SERVICES. The
// evaluator is timed directly, like the native Dataplane, without the Proxier around it.
import { Proxier } from '../lib/index.js'
import { BENCH_NODE, generateCluster, type Cluster, type Mix } from './cluster.js'
import { compileLinear, createLinear, encodeLinearPacket } from './cpp-linear.js'
import { rss, timeBudgeted, type BenchResult } from './results.js'
import { clientIP, endpointIP, rng } from './workload.js'
import { serviceTargets } from './new-flow-cases.js'

/** The cluster IP:port that KUBE-SERVICES matches last (the worst case for a linear walk). */
export function lastServiceTarget(rules: string): { ip: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' } {
  const lines = rules.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES ') && / -d \S+/.test(l) && / --dport \d+/.test(l))
  const last = lines[lines.length - 1]
  if (!last) throw new Error('no service rule in KUBE-SERVICES')
  const ip = / -d ([^/\s]+)/.exec(last)![1]
  const port = Number(/ --dport (\d+)/.exec(last)![1])
  const proto = (/ -p (\w+)/.exec(last)?.[1] ?? 'tcp').toUpperCase() as 'TCP' | 'UDP' | 'SCTP'
  return { ip, port, protocol: proto }
}

export function loadProxier(mode: 'native' | 'iptables', cluster: Cluster, n: number, conntrack = 1 << 16): Proxier {
  const p = new Proxier({
    mode,
    ...BENCH_NODE,
    native: { capacity: { services: 6 * n + 16, frontends: 8 * n + 16, backends: 12 * n + 64, conntrack, affinity: 1 << 16 } },
  })
  for (const s of cluster.services) p.applyService(s)
  for (const s of cluster.slices) p.applyEndpointSlice(s)
  return p
}

export interface IptablesBudget {
  packets: number
  budgetMs: number
}

export function measureIptables(counts: number[], mix: Mix, budget: IptablesBudget, onStep?: () => void, cluster?: Cluster): BenchResult[] {
  const results: BenchResult[] = []
  for (const n of counts) {
    const c = cluster ?? generateCluster(n, mix)
    const rss0 = rss()
    const p = loadProxier('iptables', c, n)
    let t = process.hrtime.bigint()
    p.sync()
    results.push({ workload: 'sync-full', impl: 'ts-iptables', services: n, nsPerOp: Number(process.hrtime.bigint() - t) })
    const rules = p.iptablesRestore()
    const endpoints = c.slices.reduce((sum, sl) => sum + (sl.endpoints?.length ?? 0), 0)
    const textBytes = Buffer.byteLength(rules)
    results.push({
      workload: 'memory', impl: 'ts-iptables', services: n, bytes: textBytes,
      perService: textBytes / n, perEndpoint: textBytes / Math.max(1, endpoints), rssBytes: rss() - rss0,
    })

    const last = lastServiceTarget(rules)
    const r = rng(n)
    const targets = serviceTargets(c)
    // The evaluator itself, as native-call is the Dataplane itself: neither pays the Proxier's
    // model-level trace. Every packet is a new connection (ctstate NEW).
    const evaluator = p.iptables!.evaluator()
    const spread = timeBudgeted(budget.packets, budget.budgetMs, (k) => {
      const t = targets[Math.floor(r() * targets.length)]
      evaluator.evaluate({ src: clientIP(k >>> 10), sport: 1024 + (k & 1023), dst: t.ip, dport: t.port, protocol: t.protocol, hook: 'prerouting', now: 1 })
    })
    results.push({ workload: 'new-flow', case: 'spread', impl: 'ts-iptables', services: n, flows: spread.ops, nsPerOp: spread.nsPerOp })
    const worst = timeBudgeted(budget.packets, budget.budgetMs, (k) => {
      evaluator.evaluate({ src: clientIP(100_000 + (k >>> 10)), sport: 1024 + (k & 1023), dst: last.ip, dport: last.port, protocol: last.protocol, hook: 'prerouting', now: 2 })
    })
    results.push({ workload: 'new-flow', case: 'last', impl: 'ts-iptables', services: n, flows: worst.ops, nsPerOp: worst.nsPerOp })
    results.push(...measureCppLinear(rules, n, targets, last, budget))

    // One service's endpoints change; kube-proxy (since KEP-3453) re-renders only that service's chains.
    const slice = structuredClone(c.slices[Math.floor(c.slices.length / 2)])
    slice.endpoints![0].addresses = [endpointIP(20_000_000)]
    p.applyEndpointSlice(slice)
    t = process.hrtime.bigint()
    p.sync()
    results.push({ workload: 'sync-one', impl: 'ts-iptables', variant: 'reload', services: n, nsPerOp: Number(process.hrtime.bigint() - t) })
    // What kube-proxy writes for that change: the whole ruleset, or (KEP-3453) only the changed chains.
    for (const variant of ['full-text', 'partial-text'] as const) {
      t = process.hrtime.bigint()
      p.iptablesRestore({ partial: variant === 'partial-text' })
      results.push({ workload: 'sync-one', impl: 'ts-iptables', variant, services: n, nsPerOp: Number(process.hrtime.bigint() - t) })
    }
    onStep?.()
  }
  return results
}

type Target = { ip: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' }
const PROTO = { TCP: 6, UDP: 17, SCTP: 132 }

/** The same rules walked first-match in C++, in batches of 256 packets. */
function measureCppLinear(rules: string, n: number, targets: Target[], last: Target, budget: IptablesBudget): BenchResult[] {
  const program = compileLinear(rules)
  const walker = createLinear(program, BENCH_NODE.nodeIPs, n)
  const BATCH = 256
  const packets = new Uint32Array(BATCH * 10)
  const out = new Uint32Array(BATCH * 8)
  const r = rng(n + 1)
  const run = (pick: () => Target): { nsPerOp: number; ops: number } => {
    const batches = Math.max(1, Math.ceil(budget.packets * 4 / BATCH))
    const bufs: Uint32Array[] = []
    for (let b = 0; b < Math.min(batches, 64); b++) {
      const buf = new Uint32Array(BATCH * 10)
      for (let i = 0; i < BATCH; i++) {
        const t = pick()
        encodeLinearPacket(buf, i, clientIP(b * BATCH + i), t.ip, PROTO[t.protocol], t.port)
      }
      bufs.push(buf)
    }
    const res = timeBudgeted(batches, budget.budgetMs, (k) => walker.evaluateBatch(bufs[k % bufs.length], BATCH, out))
    return { nsPerOp: res.nsPerOp / BATCH, ops: res.ops * BATCH }
  }
  // Every packet must be DNATed (each generated service has endpoints): a check that the
  // compiled program is the real ruleset, not a walk that falls through.
  encodeLinearPacket(packets, 0, '10.0.0.1', last.ip, PROTO[last.protocol], last.port)
  walker.evaluateBatch(packets, 1, out)
  if (out[0] !== 6) throw new Error(`cpp-linear: a packet to ${last.ip}:${last.port} was not DNATed (action ${out[0]})`)
  const spread = run(() => targets[Math.floor(r() * targets.length)])
  const worst = run(() => last)
  return [
    { workload: 'new-flow', case: 'spread', impl: 'cpp-linear', services: n, flows: spread.ops, nsPerOp: spread.nsPerOp },
    { workload: 'new-flow', case: 'last', impl: 'cpp-linear', services: n, flows: worst.ops, nsPerOp: worst.nsPerOp },
  ]
}
