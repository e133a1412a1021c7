// Scenario 2: performance has degraded and the proxy is suspected. `svcplane doctor --perf`
// says which mode the nodes run, how many rules and chains it has, how long syncs take and what
// a new connection costs at this cluster's size, measured on the cluster's own objects. Timings
// are printed, never asserted; rule counts and walks are deterministic and are.
import t from 'tap'
import { measurePerf } from '../../lib/doctor/index.js'
import { objectsOf, svcplane, writeDump } from './cluster.js'
import { bigCluster } from './big-cluster.js'

const dump = bigCluster(300)

t.test('measured on the objects: iptables mode, its rules and its walk', async (t) => {
  const o = objectsOf(dump)
  const r = measurePerf(o.nodes[0], o, {}, { mode: 'iptables', budgetMs: 50 })
  t.equal(r.currentMode, 'iptables')
  t.match(r, { node: 'node-a', services: 300, servicePorts: 375, endpoints: 900 })
  const [ipt, native] = r.modes
  t.equal(ipt.mode, 'iptables')
  t.equal(native.mode, 'native')
  t.ok(ipt.rules!.totalRules > 3000, `${ipt.rules!.totalRules} rules`)
  t.equal(ipt.rules!.rules.nat + ipt.rules!.rules.filter, ipt.rules!.totalRules)
  t.ok(ipt.rules!.kubeServicesRules >= 375, 'KUBE-SERVICES has a rule per cluster IP at least')
  t.ok(ipt.rules!.chains > 375 * 2, 'a KUBE-SVC and KUBE-SEPs per ServicePort')
  t.equal(ipt.rulesWalked!.samples, 375, 'every cluster IP walked')
  t.ok(ipt.rulesWalked!.worst > ipt.rulesWalked!.average, 'the last Service walks the most')
  t.match(ipt.rulesWalked!.worstTarget, /^team-05\/svc-0299:http \(10\.96\.101\.50:80\)$/)
  t.ok(ipt.newConnections > 0 && native.newConnections > 0, 'new connections were timed in both modes')
  t.ok(ipt.syncOneSamples >= 3 && native.syncOneSamples >= 3)
  t.equal(native.rules, undefined)
  t.ok(native.mapBytes! > 0)
  // Deterministic threshold only: the walk, not the clock.
  const flagged = measurePerf(o.nodes[0], o, {}, { mode: 'iptables', budgetMs: 20, walkThreshold: 100, syncThresholdMs: Infinity })
  t.same(flagged.findings.map((f) => f.code), ['iptables-scale'])
  t.match(flagged.findings[0].what, /^the iptables mode walks \d+ rules on average for every new connection \(\d+ for the last Service\)/)
  t.match(flagged.findings[0].fix, /--proxy-mode=nftables/)
  const calm = measurePerf(o.nodes[0], o, {}, { mode: 'native', budgetMs: 20, walkThreshold: 100, syncThresholdMs: Infinity })
  t.same(calm.findings, [], 'in native mode there is no walk to complain about')
  t.same(calm.modes.map((m) => m.mode), ['native', 'iptables'], 'the current mode first')
})

t.test('svcplane doctor --perf', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--perf', '--mode', 'iptables', '--perf-budget', '50ms')
  t.equal(r.code, 0, r.err)
  t.match(r.out, /\nProxy performance on node node-a: 300 services, 375 service ports, 900 endpoints \(measured on these objects, this machine\)\n {33}iptables \(current\) +native\n/)
  t.match(r.out, /\nrules {28}\d+ \(filter \d+, nat \d+\) +none: hash maps\n/)
  t.match(r.out, /\nkube-proxy chains {16}\d+ +-\n/)
  t.match(r.out, /\nrules walked per new connection  avg \d+, worst \d+ +0 \(one hash lookup per map\)\n/)
  t.match(r.out, /\ncost of a new connection {9}[\d.]+ (µs|ms) +[\d.]+ (µs|ms)\n/)
  t.match(r.out, /\nfull sync {24}[\d.]+ (µs|ms) +[\d.]+ (µs|ms)\n/)
  t.match(r.out, /\nsync after one endpoint change {3}[\d.]+ (µs|ms) +[\d.]+ (µs|ms)\n/)
  const j = JSON.parse((await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--perf', '--perf-budget', '20ms', '--json')).out)
  t.equal(j.perf.currentMode, 'iptables', 'kube-proxy\'s default mode')
  t.equal(j.perf.modes[0].rulesWalked.samples, 375)
})
