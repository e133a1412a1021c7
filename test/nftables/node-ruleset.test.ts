// A node's `nft -a list ruleset` (block syntax, handles, counters) on its own: `svcplane explain
// --nft-ruleset` walks a packet through it and prints the rules visited; `svcplane doctor
// --nft-ruleset` and checkNftRuleset() report what the table shows is wrong.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { checkNftRuleset } from '../../lib/doctor/nft-ruleset.js'
import { cli } from '../fixtures/cli'

const FIXTURE = path.join(__dirname, 'fixtures', 'node-a.list.nft')
const TEXT = readFileSync(FIXTURE, 'utf8')
const NODE_IP = ['--node-ip', '192.168.0.2']

t.test('explain --nft-ruleset: the decision and the rules visited', async (t) => {
  const cases = [
    { name: 'pod to a ClusterIP', src: '10.1.9.9', dst: '172.30.1.10:80', action: 'dnat', servicePort: 'web/frontend:http', endpoint: /^10\.1\.0\.1[12]:8080$/, masquerade: false, handles: [41, 44, 52] },
    { name: 'outside client to a NodePort (Cluster policy): masqueraded', src: '198.51.100.9', dst: '192.168.0.2:30900', action: 'dnat', servicePort: 'shop/api:grpc', endpoint: /^10\.1\.4\.9:9000$/, masquerade: true, handles: [45, 94, 93, 97, 98, 38] },
    { name: 'unserved port of a ClusterIP', src: '10.1.9.9', dst: '172.30.3.40:9999', action: 'reject', handles: [28, 24] },
    { name: 'unallocated address of the service CIDR', src: '10.1.9.9', dst: '172.30.77.7:80', action: 'drop', handles: [25] },
    { name: 'NodePort without endpoints', src: '198.51.100.9', dst: '192.168.0.2:30910', action: 'reject', servicePort: 'ops/empty:metrics', handles: [29, 42, 43] },
    { name: 'outside loadBalancerSourceRanges', src: '198.51.100.9', dst: '198.51.100.30:9000', action: 'drop', servicePort: 'shop/api:grpc', handles: [26, 34, 100] },
    { name: 'not service traffic', src: '10.1.9.9', dst: '8.8.8.8:53', action: 'accept', handles: [41] },
  ]
  for (const c of cases) {
    const r = await cli('explain', '--nft-ruleset', FIXTURE, ...NODE_IP, '--src', c.src, '--dst', c.dst, '--json')
    t.equal(r.code, 0, `${c.name}: ${r.err}`)
    const out = JSON.parse(r.out)
    t.equal(out.result.action, c.action, c.name)
    if (c.servicePort !== undefined) t.equal(out.result.servicePort, c.servicePort, `${c.name}: service port`)
    if (c.endpoint !== undefined) t.match(out.result.endpoint, c.endpoint, `${c.name}: endpoint`)
    if (c.masquerade !== undefined) t.equal(out.result.masquerade, c.masquerade, `${c.name}: masquerade`)
    for (const h of c.handles) t.ok(out.trace.some((l: string) => l.endsWith(`# handle ${h}`)), `${c.name}: rule handle ${h} visited`)
  }
  const text = await cli('explain', '--nft-ruleset', FIXTURE, ...NODE_IP, '--src', '10.1.9.9', '--dst', '172.30.3.40:9999')
  t.equal(text.code, 0, text.err)
  t.match(text.out, /^TCP 10\.1\.9\.9:40000 -> 172\.30\.3\.40:9999/)
  t.match(text.out, /REJECT: Reject traffic to invalid ports of ClusterIPs; the packet is forwarded/)
  t.match(text.out, /rules visited[^\n]*\n {2}ip kube-proxy filter-prerouting-pre-dnat rule ct state new jump firewall-check \(verdict jump firewall-check\) # handle 26\n/)
  t.match(text.out, /cluster-ips-check rule ip daddr @cluster-ips counter packets 4 bytes 240 reject/)
})

t.test('explain --nft-ruleset: usage and file errors', async (t) => {
  const both = await cli('explain', '--nft-ruleset', FIXTURE, '--cluster', FIXTURE, '--src', '10.1.9.9', '--dst', '172.30.1.10:80')
  t.equal(both.code, 2)
  t.match(both.err, /--nft-ruleset and --cluster: give one/)
  const dir = t.testdir({ 'bad.nft': 'table ip kube-proxy {\n  chain x {\n    ip daddr 1.2.3.4 accept\n' })
  const bad = await cli('explain', '--nft-ruleset', path.join(dir, 'bad.nft'), '--src', '10.1.9.9', '--dst', '172.30.1.10:80')
  t.equal(bad.code, 1)
  t.match(bad.err, /nft ruleset .*bad\.nft: line \d+: chain x: missing "}"/)
})

const codes = (text: string) => checkNftRuleset(text).findings.map((f) => `${f.severity} ${f.code} ${f.servicePort}`)

t.test('checkNftRuleset on the node\'s ruleset and on broken copies of it', async (t) => {
  const healthy = codes(TEXT)
  t.same(healthy.filter((c) => !c.startsWith('info')).sort(), [
    'warning nft-no-endpoints ops/edge:web',
    'warning nft-no-endpoints ops/edge:web',
    'warning nft-no-endpoints ops/empty:metrics',
    'warning nft-no-endpoints ops/empty:metrics',
  ], 'only the services without endpoints are warnings')
  const refused = checkNftRuleset(TEXT).findings.filter((f) => f.code === 'nft-refused-packets').map((f) => f.what)
  t.equal(refused.length, 3, 'the three refusing rules whose counters are not zero (handle 25 counted 0)')
  t.match(refused.join('\n'), /17 packet\(s\), 1020 bytes, refused by ip kube-proxy chain reject-chain .*\(handle 43\)/)
  const report = checkNftRuleset(TEXT, 'node-a')
  t.same(report.tables, ['ip kube-proxy'])
  t.equal(report.servicePorts, 6)

  const edits = [
    { name: 'no masquerade rule', from: '\t\tcounter packets 52 bytes 3120 masquerade fully-random # handle 38\n', to: '', expect: 'error nft-missing-masquerade ' },
    { name: 'mark-for-masquerade emptied', from: '\t\tmeta mark set meta mark | 0x00004000 # handle 35\n', to: '', expect: 'error nft-missing-masquerade ' },
    { name: 'nat-prerouting no longer jumps to services', from: '\t\tjump services # handle 41\n', to: '', expect: 'error nft-missing-jump ' },
    { name: 'an endpoint chain without its dnat', from: '\t\tmeta l4proto udp dnat to 10.1.2.5:53 # handle 66\n', to: '', expect: 'error nft-endpoint-without-dnat dns/coredns:dns' },
    { name: 'a service chain without its numgen vmap', from: /\t\tnumgen random mod 2 vmap \{ 0 : goto endpoint-B3WZ6PLD[^\n]*\n/, to: '', expect: 'error nft-service-without-endpoints web/frontend:http' },
    { name: 'a statement the parser does not know', from: 'counter packets 17 bytes 1020 reject # handle 43', to: 'counter packets 17 bytes 1020 log prefix "kp: " reject # handle 43', expect: 'info nft-unknown-expression ' },
    { name: 'another table only', from: /table ip kube-proxy \{/, to: 'table ip other {', expect: 'error nft-no-kube-proxy-table ' },
  ]
  for (const e of edits) {
    const edited = TEXT.replace(e.from, e.to)
    t.not(edited, TEXT, `${e.name}: the edit applies`)
    const found = codes(edited)
    t.ok(found.includes(e.expect), `${e.name}: ${e.expect}`, { found })
    t.notOk(healthy.includes(e.expect), `${e.name}: not found on the unedited ruleset`)
  }
})

t.test('doctor --nft-ruleset', async (t) => {
  const ok = await cli('doctor', '--nft-ruleset', FIXTURE, '--node-name', 'node-a', '--fail-on-findings')
  t.equal(ok.code, 3, 'warnings (services without endpoints) fail --fail-on-findings')
  t.match(ok.out, /^Checked 6 service\(s\), 6 service port\(s\) from node node-a\./)
  t.match(ok.out, /ops\/empty:metrics \(TCP\)\n {2}WARNING nft-no-endpoints\n {4}what: {2}ip kube-proxy map no-endpoint-(services|nodeports): new connections to/)
  const dir = t.testdir({ 'broken.nft': TEXT.replace('\t\tjump masquerading # handle 40\n', '') })
  const broken = await cli('doctor', '--nft-ruleset', path.join(dir, 'broken.nft'), '--json')
  t.equal(broken.code, 0)
  const report = JSON.parse(broken.out)
  t.ok(report.findings.some((f: { code: string; what: string }) => f.code === 'nft-missing-jump' && /nat-postrouting does not jump to masquerading/.test(f.what)))
  const perf = await cli('doctor', '--nft-ruleset', FIXTURE, '--perf')
  t.equal(perf.code, 2)
  t.match(perf.err, /--perf and --conntrack need --cluster/)
  writeFileSync(path.join(dir, 'empty.nft'), '')
  const empty = await cli('doctor', '--nft-ruleset', path.join(dir, 'empty.nft'), '--fail-on-findings')
  t.equal(empty.code, 3)
  t.match(empty.out, /ERROR nft-no-kube-proxy-table/)
})
