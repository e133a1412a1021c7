// What the proxy costs on this cluster, measured on the user's own objects in both proxy modes
// (scenarios 2 and 3): rules and chains, rules a new connection walks, time per new connection,
// full sync and one-Service sync. Time-budgeted, in-process: numbers, never pass/fail timing.
import { performance } from 'node:perf_hooks'
import { IptablesEvaluator } from '../iptables/netfilter/evaluator.js'
import { withJumpChains } from '../ipvs/iptables-rules.js'
import type { Proxier } from '../modes/index.js'
import type { ProxyMode } from '../modes/index.js'
import type { Packet } from '../proxy/packet.js'
import { isRecord } from '../k8s/fields.js'
import type { Finding } from './findings.js'
import type { ClusterNode } from './nodes.js'
import { loadNode, type DoctorObjects, type DoctorOptions } from './diagnose.js'
import { formatAddress, parseCidr } from '../util/address.js'

export interface RuleCounts {
  /** Rules per table (nat, filter...). */
  rules: Record<string, number>
  totalRules: number
  /** kube-proxy's chains (KUBE-*), over every table. */
  chains: number
  /** Rules of nat KUBE-SERVICES: what a new connection scans linearly. */
  kubeServicesRules: number
}

export interface ModePerf {
  mode: ProxyMode
  /** First sync with every object (what a restart costs). */
  syncFullMs: number
  /** A sync after one endpoint of one Service changed (median). */
  syncOneMs: number
  syncOneSamples: number
  /** Per new connection (a conntrack miss): route() time, average over the runs. */
  newConnectionUs: number
  newConnections: number
  /** iptables mode: the rules. */
  rules?: RuleCounts
  /** iptables mode: rules examined by a new connection's walk (average over every cluster IP, and the worst). */
  rulesWalked?: { average: number; worst: number; worstTarget: string; samples: number }
  /** native and ipvs modes: the native core's maps' memory for services and backends. */
  mapBytes?: number
  /** ipvs mode: what grows with the Services instead of the rules. */
  ipvs?: { virtualServers: number; ipsetEntries: number }
}

export interface PerfReport {
  node: string
  /** The mode the user's nodes run. */
  currentMode: ProxyMode
  services: number
  servicePorts: number
  endpoints: number
  modes: ModePerf[]
  findings: Finding[]
}

export interface PerfOptions {
  /** The nodes' proxy mode (kube-proxy's default is iptables). */
  mode?: ProxyMode
  /** Time budget per measurement in milliseconds (default 200). */
  budgetMs?: number
  /** Above this average of rules walked per new connection, the iptables mode is reported (default 500). */
  walkThreshold?: number
  /** Above this full-sync time in ms, the iptables mode is reported (default 1000). */
  syncThresholdMs?: number
}

interface Target {
  address: string
  port: number
  protocol: 'TCP' | 'UDP' | 'SCTP'
  name: string
}

function clusterIPTargets(p: Proxier): Target[] {
  return p.state.servicePorts().map((s) => ({ address: s.info.clusterIP, port: s.info.port, protocol: s.info.protocol, name: s.info.name }))
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]
}

function countRules(ev: IptablesEvaluator): RuleCounts {
  const rules: Record<string, number> = {}
  let totalRules = 0
  let chains = 0
  let kubeServicesRules = 0
  for (const [name, table] of ev.document.tables) {
    let n = 0
    for (const chain of table.chains.values()) {
      n += chain.rules.length
      if (chain.name.startsWith('KUBE-')) chains++
      if (name === 'nat' && chain.name === 'KUBE-SERVICES') kubeServicesRules = chain.rules.length
    }
    rules[name] = n
    totalRules += n
  }
  return { rules, totalRules, chains, kubeServicesRules }
}

/** The n-th client of a run: pods inside the node's pod CIDR when there is a detector, else the node itself. */
function clientFor(p: Proxier, family: 'IPv4' | 'IPv6', n: number): { src: string; hook: 'prerouting' | 'output' } {
  const cidr = p.state.detector.podCIDRs.find((c) => c.includes(':') === (family === 'IPv6'))
  const parsed = cidr === undefined ? undefined : parseCidr(cidr)
  if (parsed === undefined) return { src: p.state.node.ips.find((ip) => ip.includes(':') === (family === 'IPv6')) ?? p.state.node.ips[0], hook: 'output' }
  const hostBits = 128 - parsed.bits
  const span = hostBits >= 30 ? 2 ** 30 : Math.max(1, 2 ** hostBits - 2)
  const b = new Uint8Array(parsed.bytes)
  let add = 1 + (n % span)
  for (let i = 15; i >= 0 && add > 0; i--) {
    const v = b[i] + (add & 0xff)
    b[i] = v & 0xff
    add = Math.floor(add / 256) + (v >> 8)
  }
  return { src: formatAddress(b, 0), hook: 'prerouting' }
}

function rulesWalked(p: Proxier, ev: IptablesEvaluator, targets: Target[]): ModePerf['rulesWalked'] {
  let total = 0
  let worst = 0
  let worstTarget = ''
  let samples = 0
  const v4 = targets.filter((t) => !t.address.includes(':'))
  // Every cluster IP (an even sample of 5000 in larger clusters): the walk does not depend on time.
  const step = Math.max(1, Math.ceil(v4.length / 5000))
  for (let i = 0; i < v4.length; i += step) {
    const t = v4[i]
    const c = clientFor(p, 'IPv4', samples)
    const r = ev.evaluate({ src: c.src, sport: 40000, dst: t.address, dport: t.port, protocol: t.protocol, hook: c.hook })
    const n = r.visited.length
    total += n
    samples++
    if (n > worst) [worst, worstTarget] = [n, `${t.name} (${t.address}:${t.port})`]
  }
  return samples === 0 ? undefined : { average: total / samples, worst, worstTarget, samples }
}

function timeNewConnections(p: Proxier, targets: Target[], budgetMs: number): { us: number; n: number } {
  if (targets.length === 0) return { us: 0, n: 0 }
  // Warm up first: the first few hundred calls run before the JIT has compiled the path.
  for (let i = 0; i < Math.min(500, targets.length * 4); i++) {
    const t = targets[i % targets.length]
    const c = clientFor(p, t.address.includes(':') ? 'IPv6' : 'IPv4', 1 << 20)
    p.route({ src: c.src, sport: 1024 + (i & 0x3fff), dst: t.address, dport: t.port, protocol: t.protocol, hook: c.hook, now: 999 })
  }
  let n = 0
  const max = 100_000
  const start = performance.now()
  let elapsed = 0
  const base = 1000
  while (n < max) {
    // Check the clock every 64 connections: the clock costs as much as a native lookup.
    for (let i = 0; i < 64 && n < max; i++, n++) {
      const t = targets[n % targets.length]
      const family = t.address.includes(':') ? 'IPv6' : 'IPv4'
      const c = clientFor(p, family, n >>> 14)
      const packet: Packet = { src: c.src, sport: 1024 + (n & 0x3fff), dst: t.address, dport: t.port, protocol: t.protocol, hook: c.hook, now: base }
      p.route(packet)
    }
    elapsed = performance.now() - start
    if (elapsed > budgetMs) break
  }
  return { us: (elapsed * 1000) / n, n }
}

/** One Service's endpoint flips (ready <-> not ready), synced, a few times: the steady-state sync. */
function timeSyncOne(p: Proxier, objects: DoctorObjects, budgetMs: number): { ms: number; samples: number } {
  const slices = objects.endpointSlices.filter((s) => isRecord(s) && Array.isArray(s.endpoints) && s.endpoints.length > 0)
  if (slices.length === 0) return { ms: 0, samples: 0 }
  const original = slices[Math.floor(slices.length / 2)] as { endpoints: { conditions?: Record<string, unknown> }[] }
  const times: number[] = []
  const start = performance.now()
  for (let k = 0; k < 15; k++) {
    const changed = structuredClone(original)
    if (k % 2 === 0) changed.endpoints[0].conditions = { ...(changed.endpoints[0].conditions ?? {}), ready: false, serving: false }
    p.applyEndpointSlice(changed)
    const t = performance.now()
    p.sync()
    times.push(performance.now() - t)
    if (times.length >= 3 && performance.now() - start > budgetMs) break
  }
  p.applyEndpointSlice(original)
  p.sync()
  return { ms: median(times), samples: times.length }
}

type MeasuredMode = 'native' | 'iptables' | 'ipvs'

function mapBytes(maps: { name: string; bytes: number }[]): number {
  return maps.filter((m) => m.name !== 'conntrack' && m.name !== 'affinity').reduce((a, m) => a + m.bytes, 0)
}

function measureMode(mode: MeasuredMode, node: ClusterNode, objects: DoctorObjects, options: DoctorOptions, budgetMs: number): ModePerf {
  const t0 = performance.now()
  const p = loadNode(node, objects, options, mode)
  const syncFullMs = performance.now() - t0
  try {
    const targets = clusterIPTargets(p)
    const out: ModePerf = { mode, syncFullMs, syncOneMs: 0, syncOneSamples: 0, newConnectionUs: 0, newConnections: 0 }
    if (mode === 'iptables') {
      out.rules = countRules(p.iptables!.evaluator())
      out.rulesWalked = rulesWalked(p, new IptablesEvaluator(p.iptables!.ruleset(), { localAddresses: p.state.node.ips, trace: 'all' }), targets)
    } else if (mode === 'ipvs') {
      // IPVS mode's rules are a constant set over ipsets: the walk does not grow with the
      // Services (the set matches are not evaluated here, so the count is the rules examined).
      const state = p.ipvsState()
      const ev = new IptablesEvaluator(withJumpChains(state.iptables), { localAddresses: p.state.node.ips, trace: 'all' })
      out.rules = countRules(ev)
      out.rulesWalked = rulesWalked(p, ev, targets)
      out.ipvs = { virtualServers: state.virtualServers.length, ipsetEntries: Object.values(state.ipsets).reduce((a, e) => a + e.length, 0) }
      const native = p.ipvs!.native
      if (native !== undefined) out.mapBytes = mapBytes(native.dataplane.maps())
    } else {
      out.mapBytes = mapBytes(p.dataplane!.maps())
    }
    const c = timeNewConnections(p, targets, budgetMs)
    out.newConnectionUs = c.us
    out.newConnections = c.n
    const s = timeSyncOne(p, objects, budgetMs)
    out.syncOneMs = s.ms
    out.syncOneSamples = s.samples
    return out
  } finally {
    p.dataplane?.destroy()
    p.ipvs?.native?.dataplane.destroy()
  }
}

/** Measures both proxy modes for `node` on the objects, the user's mode first. */
export function measurePerf(node: ClusterNode, objects: DoctorObjects, options: DoctorOptions = {}, perf: PerfOptions = {}): PerfReport {
  const current = perf.mode ?? 'iptables'
  const budgetMs = perf.budgetMs ?? 200
  const modes: MeasuredMode[] = current === 'iptables' ? ['iptables', 'native'] : current === 'ipvs' ? ['ipvs', 'iptables', 'native'] : ['native', 'iptables']
  const results = modes.map((m) => measureMode(m, node, objects, options, budgetMs))
  let servicePorts = 0
  let endpoints = 0
  {
    const p = loadNode(node, objects, options, 'native')
    for (const s of p.state.servicePorts()) {
      servicePorts++
      endpoints += s.endpoints.length
    }
    p.dataplane?.destroy()
  }
  const findings: Finding[] = []
  const ipt = results.find((r) => r.mode === 'iptables')!
  const nat = results.find((r) => r.mode === 'native')!
  const walkThreshold = perf.walkThreshold ?? 500
  const syncThreshold = perf.syncThresholdMs ?? 1000
  const walked = ipt.rulesWalked?.average ?? 0
  if (current === 'iptables' && (walked >= walkThreshold || ipt.syncFullMs >= syncThreshold)) {
    const ratio = nat.newConnectionUs > 0 ? ipt.newConnectionUs / nat.newConnectionUs : 0
    findings.push({
      code: 'iptables-scale',
      severity: 'warning',
      servicePort: '',
      service: '',
      protocol: '',
      nodes: [node.name],
      what: `the iptables mode walks ${Math.round(walked)} rules on average for every new connection (${ipt.rulesWalked?.worst ?? 0} for the last Service), and a full sync takes ${ipt.syncFullMs.toFixed(0)} ms`,
      why: `kube-proxy's iptables mode matches a new connection against KUBE-SERVICES one rule at a time (${ipt.rules?.kubeServicesRules ?? 0} rules here, ${ipt.rules?.totalRules ?? 0} in all), so its cost grows with the number of Services; measured on these objects a new connection costs ${ipt.newConnectionUs.toFixed(1)} µs in iptables mode and ${nat.newConnectionUs.toFixed(1)} µs with hash maps${ratio > 0 ? ` (${ratio.toFixed(0)}x)` : ''}`,
      fix: 'switch kube-proxy to nftables (--proxy-mode=nftables, or mode: "nftables" in its KubeProxyConfiguration; Kubernetes 1.31+) or ipvs (mode: "ipvs", needs the ip_vs kernel modules), which look Services up in hash maps (the native column here models that cost; svcplane observes and forwards nothing, so it does not replace kube-proxy)',
      details: { rulesWalked: ipt.rulesWalked, rules: ipt.rules, syncFullMs: ipt.syncFullMs },
    })
  }
  const ipvs = results.find((r) => r.mode === 'ipvs')
  if (current === 'ipvs' && ipvs?.rulesWalked !== undefined && ipvs.ipvs !== undefined) findings.push(ipvsScale(node.name, ipvs, ipt))
  return { node: node.name, currentMode: current, services: objects.services.length, servicePorts, endpoints, modes: results, findings }
}

/**
 * In IPVS mode the lookup is not what degrades: a new connection examines the same few rules
 * and one virtual-server hash lookup whatever the number of Services. What grows is the IPVS
 * table and the ipsets the proxier resyncs.
 */
function ipvsScale(node: string, ipvs: ModePerf, ipt: ModePerf): Finding {
  const walked = ipvs.rulesWalked!
  const iptWalked = ipt.rulesWalked?.average ?? 0
  return {
    code: 'ipvs-scale',
    severity: 'info',
    servicePort: '',
    service: '',
    protocol: '',
    nodes: [node],
    what: `in IPVS mode a new connection examines ${walked.worst} iptables rules at most (avg ${walked.average.toFixed(0)}) and one virtual-server hash lookup, whatever the number of Services; here ${ipvs.ipvs!.virtualServers} virtual servers and ${ipvs.ipvs!.ipsetEntries} ipset entries`,
    why: `kube-proxy's IPVS mode writes a constant set of ${ipvs.rules!.totalRules} rules matching ipsets, and the kernel finds the virtual server in a hash table; iptables mode would walk ${iptWalked.toFixed(0)} rules on average for the same Services. Measured on these objects a new connection costs ${ipvs.newConnectionUs.toFixed(1)} µs in ipvs mode (decided on svcplane's native core) against ${ipt.newConnectionUs.toFixed(1)} µs in iptables mode`,
    fix: 'the Service lookup is not the cause: look at the full sync (the proxier rewrites every virtual server and ipset), the conntrack table, slow endpoints, and on kernels before 5.9 at net.ipv4.vs.conn_reuse_mode (kube-proxy sets it to 0 there, so clients reusing a source port keep a draining real server; with 1 such a SYN is dropped and retried after a second)',
    details: { rulesWalked: walked, rules: ipvs.rules, virtualServers: ipvs.ipvs!.virtualServers, ipsetEntries: ipvs.ipvs!.ipsetEntries },
  }
}
