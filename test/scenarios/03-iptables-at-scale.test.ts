// Scenario 3: a high-traffic cluster in iptables mode. The same objects in both modes side by
// side (rules walked, cost per new connection, sync time), and how to switch. 1500 Services:
// the iptables walk passes a thousand rules for an average new connection.
import t from 'tap'
import { measurePerf } from '../../lib/doctor/index.js'
import { objectsOf, svcplane, writeDump } from './cluster.js'
import { bigCluster } from './big-cluster.js'

const dump = bigCluster(1500)

t.test('both modes on the same objects', async (t) => {
  const o = objectsOf(dump)
  const r = measurePerf(o.nodes[0], o, {}, { mode: 'iptables', budgetMs: 50, walkThreshold: 800, syncThresholdMs: Infinity })
  const [ipt, native] = r.modes
  t.equal(ipt.rulesWalked!.samples, 1875)
  t.ok(ipt.rulesWalked!.average > 800, `average walk ${ipt.rulesWalked!.average.toFixed(0)} rules`)
  t.ok(ipt.rulesWalked!.worst > 1800, `worst walk ${ipt.rulesWalked!.worst} rules`)
  t.equal(native.rulesWalked, undefined, 'the native mode walks no rules')
  const f = r.findings[0]
  t.match(f, { code: 'iptables-scale', severity: 'warning', nodes: ['node-a'] })
  t.match(f.why, /KUBE-SERVICES one rule at a time \(\d+ rules here, \d+ in all\)/)
  t.match(f.why, /a new connection costs [\d.]+ µs in iptables mode and [\d.]+ µs with hash maps/)
  t.match(f.fix, /mode: "nftables"/)
  t.match(f.fix, /mode: "ipvs"/)
  t.match(f.fix, /does not replace kube-proxy/)
})

t.test('svcplane doctor --perf: side by side, and how to switch', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--perf', '--perf-budget', '50ms')
  t.equal(r.code, 0, r.err)
  t.match(r.out, /^Checked 1500 service\(s\), 1875 service port\(s\) from node node-a\.\nNo findings\.\n|WARNING iptables-scale/)
  t.match(r.out, /\n {33}iptables \(current\) +native\n/)
  t.match(r.out, /\nrules walked per new connection  avg 9\d\d, worst 19\d\d +0 \(one hash lookup per map\)\n/)
  t.match(r.out, /\(worst case: team-29\/svc-1499:http \(10\.96\.105\.250:80\), the last Service in KUBE-SERVICES\)\n/)
  t.match(r.out, /\nSwitching modes:\n  kube-proxy: set mode: "nftables" \(Kubernetes 1\.31\+\) or mode: "ipvs"/)
  t.match(r.out, /kubectl -n kube-system rollout restart daemonset kube-proxy/)
  t.match(r.out, /\n  svcplane: {3}models and measures the native column/)
})

t.test('the same 1500 Services in ipvs mode: the walk does not grow, the IPVS table does', async (t) => {
  const o = objectsOf(dump)
  const r = measurePerf(o.nodes[0], o, {}, { mode: 'ipvs', budgetMs: 20, walkThreshold: 800, syncThresholdMs: Infinity })
  const [ipvs, ipt] = r.modes
  t.equal(ipvs.mode, 'ipvs')
  t.ok(ipvs.rulesWalked!.worst > 0 && ipvs.rulesWalked!.worst < 20, `ipvs: ${ipvs.rulesWalked!.worst} rules at most for every one of the ${ipvs.rulesWalked!.samples} cluster IPs`)
  t.ok(ipt.rulesWalked!.average > 800, `iptables mode on the same objects: ${ipt.rulesWalked!.average.toFixed(0)} on average`)
  t.ok(ipvs.rules!.totalRules < 50, `${ipvs.rules!.totalRules} rules in IPVS mode against ${ipt.rules!.totalRules}`)
  t.ok(ipvs.ipvs!.virtualServers >= 1875, `${ipvs.ipvs!.virtualServers} virtual servers`)
  t.same(r.findings.map((f) => f.code), ['ipvs-scale'], 'an IPVS node gets the note, not the iptables-scale warning')
  t.match(r.findings[0].why, /iptables mode would walk \d+ rules on average for the same Services/)
})
