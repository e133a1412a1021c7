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

t.test('in ipvs mode: constant rules over ipsets, one virtual-server lookup, what grows instead', async (t) => {
  const small = objectsOf(bigCluster(30))
  const o = objectsOf(dump)
  const r = measurePerf(o.nodes[0], o, {}, { mode: 'ipvs', budgetMs: 20 })
  const s = measurePerf(small.nodes[0], small, {}, { mode: 'ipvs', budgetMs: 20 })
  t.equal(r.currentMode, 'ipvs')
  t.same(r.modes.map((m) => m.mode), ['ipvs', 'iptables', 'native'], 'the current mode first, then the others')
  const [ipvs, ipt] = r.modes
  const [smallIpvs, smallIpt] = s.modes
  t.equal(ipvs.rules!.totalRules, smallIpvs.rules!.totalRules, `IPVS mode's rules do not grow with the Services (${ipvs.rules!.totalRules} for 30 and for 300)`)
  t.ok(ipt.rules!.totalRules > smallIpt.rules!.totalRules * 5, 'iptables mode\'s do')
  t.equal(ipvs.rulesWalked!.worst, smallIpvs.rulesWalked!.worst, 'nor does the walk of a new connection')
  t.ok(ipvs.rulesWalked!.worst > 0 && ipvs.rulesWalked!.worst < 20 && ipt.rulesWalked!.average > 100, `ipvs walks ${ipvs.rulesWalked!.worst} rules at most, iptables ${ipt.rulesWalked!.average.toFixed(0)} on average`)
  t.ok(ipvs.ipvs!.virtualServers >= 375 && ipvs.ipvs!.virtualServers > smallIpvs.ipvs!.virtualServers * 5, `the IPVS table grows instead: ${smallIpvs.ipvs!.virtualServers} -> ${ipvs.ipvs!.virtualServers} virtual servers`)
  t.ok(ipvs.ipvs!.ipsetEntries > smallIpvs.ipvs!.ipsetEntries * 5, 'and the ipsets')
  t.ok(ipvs.mapBytes! > 0, 'decided on the native core')
  t.ok(ipvs.newConnections > 0 && ipvs.syncOneSamples >= 3)
  t.same(r.findings.map((f) => f.code), ['ipvs-scale'], 'no iptables-scale finding for an IPVS node')
  t.match(r.findings[0].what, /^in IPVS mode a new connection examines \d+ iptables rules at most \(avg \d+\) and one virtual-server hash lookup, whatever the number of Services; here \d+ virtual servers and \d+ ipset entries$/)
  t.match(r.findings[0].fix, /conn_reuse_mode/)
})

t.test('svcplane doctor --perf --proxy-mode ipvs', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--perf', '--proxy-mode', 'ipvs', '--perf-budget', '20ms')
  t.equal(r.code, 0, r.err)
  t.match(r.out, /\n {33}ipvs \(current\) +iptables +native\n/)
  t.match(r.out, /\nrules {28}\d+ \((nat|filter) \d+, (nat|filter) \d+\) +\d+ \(filter \d+, nat \d+\) +none: hash maps\n/)
  t.match(r.out, /\nrules walked per new connection  avg \d+, worst [1-9]\d* +avg \d+, worst \d+ +0 \(one hash lookup per map\)\n/)
  t.match(r.out, /NOTE ipvs-scale \(node-a\)/)
})
