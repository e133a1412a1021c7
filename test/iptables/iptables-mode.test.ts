// The Proxier in mode 'iptables': kube-proxy v1.31's own expected ruleset (TestOverallIPTablesRules),
// partial syncs, options, conntrack in front of the evaluator, counters.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import { parseIptablesSave } from '../../lib/iptables/save/parser.js'
import { kubeProxyOverallObjects, makeService, makeSlice, port, testExternalClient, testNodeIP, testNodeName, type EP } from '../fixtures/objects'
import { sortIPTablesRules } from './kube-proxy-sort'

const p80 = [{ name: 'p80', port: 80 }]

// The objects of kube-proxy's TestOverallIPTablesRules (pkg/proxy/iptables/proxier_test.go, v1.31).
const overall = kubeProxyOverallObjects

// kube-proxy's NewFakeProxier: node "test-node" at 192.168.0.2, cluster CIDR 10.0.0.0/8, mark
// "0x4000" (the real proxier formats %#08x: "0x00004000"), a fake iptables without --random-fully.
const fakeProxier: ProxierOptions = {
  mode: 'iptables', nodeName: testNodeName, nodeIPs: [testNodeIP], podCIDRs: ['10.0.0.0/8'],
  iptables: { masqueradeMark: '0x4000', randomFully: false }, seed: 1,
}

/** The fake proxier with `extra` on top; `iptables` is merged into the fake's iptables section. */
function proxier(objects: unknown[], extra: Partial<ProxierOptions> = {}): Proxier {
  const p = new Proxier({ ...fakeProxier, ...extra, iptables: { ...fakeProxier.iptables, ...extra.iptables } })
  p.applyList(objects)
  const s = p.sync()
  if (s.errors.length) throw s.errors[0]!.error
  return p
}

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8')

t.test("TestOverallIPTablesRules: kube-proxy v1.31's expected ruleset, rule for rule after its sort", async (t) => {
  for (const mode of ['iptables', 'native'] as const) {
    const p = proxier(overall, { mode })
    const got = sortIPTablesRules(p.iptablesRestore())
    const want = sortIPTablesRules(fixture('kube-proxy-v1.31-overall.txt'))
    t.equal(got, want, `mode ${mode}`)
  }
  // The real proxier's mark text and --random-fully.
  const real = proxier(overall, { iptables: { masqueradeMark: undefined, randomFully: undefined } }).iptablesRestore()
  t.match(real, /\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000\n/)
  t.match(real, /-j MASQUERADE --random-fully\n/)
})

t.test('kube-proxy TestTracePacket flows through the loaded rules', async (t) => {
  const p = proxier(overall)
  const route = (src: string, dst: string, dport: number, sport = 40000) =>
    p.route({ src, sport, dst, dport, protocol: 'TCP', hook: src === testNodeIP ? 'output' : 'prerouting', now: 1 })
  t.same(route('10.0.0.2', '10.0.0.3', 80), { action: 'accept' })
  t.same(route('10.0.0.2', '172.30.0.41', 80), { action: 'dnat', servicePort: 'ns1/svc1:p80', endpoint: '10.180.0.1:80', address: '10.180.0.1', port: 80, masquerade: false })
  t.same(route(testNodeIP, '192.168.99.22', 80), { action: 'dnat', servicePort: 'ns2/svc2:p80', endpoint: '10.180.0.2:80', address: '10.180.0.2', port: 80, masquerade: true })
  t.same(route(testExternalClient, '192.168.99.22', 80), { action: 'drop', servicePort: 'ns2/svc2:p80', reason: 'no-local-endpoints' })
  t.same(route(testNodeIP, testNodeIP, 30000), { action: 'accept' })
  t.same(route('10.0.0.2', '172.30.0.46', 80), { action: 'reject', servicePort: 'ns6/svc6:p80', reason: 'no-endpoints' })
  t.same(route('203.0.113.130', '5.6.7.8', 80), { action: 'drop', servicePort: 'ns5/svc5:p80', reason: 'source-range' })
  const seen = new Set<string>()
  for (let sport = 1000; sport < 1100; sport++) {
    const r = route('10.0.0.2', '172.30.0.44', 80, sport)
    if (r.action === 'dnat') seen.add(r.endpoint)
  }
  t.same([...seen].sort(), ['10.180.0.4:80', '10.180.0.5:80'], 'statistic rules spread over both endpoints')
  const ipt = p.iptables!
  route('10.0.0.9', '172.30.0.41', 80)
  t.same([...new Set(ipt.lastVisited.map((v) => `${v.ref.table} ${v.ref.chain}`))], [
    'nat PREROUTING', 'nat KUBE-SERVICES', 'nat KUBE-SVC-XPGD46QRK7WJZT7O', 'nat KUBE-SEP-SXIVWICOYRO3J4NJ',
    'filter FORWARD', 'nat POSTROUTING', 'nat KUBE-POSTROUTING',
  ], 'the rules the last packet matched')
  const counter = ipt.counters().find((c) => c.ref.chain === 'KUBE-SEP-SXIVWICOYRO3J4NJ' && c.ref.rule.target?.kind === 'dnat')
  t.equal(counter?.packets, 2, 'per-rule counters')
  t.match(ipt.listChain('nat', 'KUBE-SVC-4SW47YFZTEDKD3PK'), /KUBE-SEP-UKSFD7AGPMPPLUHC/)
  t.match(p.explain({ src: '10.0.0.3', sport: 1, dst: '172.30.0.41', dport: 80, protocol: 'TCP', now: 1 }).steps.map((s) => s.text).join('\n'),
    /the rules chose 10\.180\.0\.1:80 \(nat PREROUTING -> nat KUBE-SERVICES -> nat KUBE-SVC-XPGD46QRK7WJZT7O -> nat KUBE-SEP-SXIVWICOYRO3J4NJ/)
})

t.test('conntrack in front of the rules', async (t) => {
  const svc = makeService('ns', 'web', { clusterIP: '172.30.1.1', ports: [port('p80', 80), port('dns', 53, { protocol: 'UDP' })] })
  const slice = (eps: (string | EP)[]) => makeSlice('ns', 'web', 1, eps, [{ name: 'p80', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }])
  const p = proxier([svc, slice(['10.1.0.1', '10.1.0.2', '10.1.0.3'])])
  const pkt = (protocol: 'TCP' | 'UDP', sport: number, now: number, tcpFlags?: number) =>
    ({ src: '10.0.0.5', sport, dst: '172.30.1.1', dport: protocol === 'TCP' ? 80 : 53, protocol, now, tcpFlags })
  const first = p.route(pkt('TCP', 5000, 1, 0x02))
  t.equal(first.action, 'dnat')
  if (first.action !== 'dnat') return
  for (let i = 0; i < 20; i++) t.same(p.route(pkt('TCP', 5000, 2 + i, 0x10)), first, 'the flow keeps its endpoint')
  t.same(p.iptables!.lastVisited, [], 'established packets walk no rules')
  const [epIP, epPort] = first.endpoint.split(':')
  t.same(p.route({ src: epIP!, sport: Number(epPort), dst: '10.0.0.5', dport: 5000, protocol: 'TCP', now: 3, tcpFlags: 0x12 }), { action: 'accept' }, 'reply direction')
  // The endpoint goes away: TCP conntrack entries stay (kube-proxy only clears UDP).
  p.applyEndpointSlice(slice(['10.1.0.1', '10.1.0.2', '10.1.0.3'].filter((e) => !first.endpoint.startsWith(`${e}:`))))
  p.sync()
  t.same(p.route(pkt('TCP', 5000, 30, 0x10)), first, 'TCP flow to a removed endpoint keeps it')
  t.equal(p.route(pkt('TCP', 5000, 30 + 86400 + 1, 0x10)).action, 'dnat', 'expired flow is decided anew')
  // UDP: flows to endpoints that stop serving are removed at sync.
  p.applyEndpointSlice(slice(['10.1.0.1', '10.1.0.2', '10.1.0.3']))
  p.sync()
  const u = p.route(pkt('UDP', 6000, 100))
  t.equal(u.action, 'dnat')
  if (u.action !== 'dnat') return
  const ip = u.endpoint.split(':')[0]!
  p.applyEndpointSlice(slice(['10.1.0.1', '10.1.0.2', '10.1.0.3'].map((e) => (e === ip ? { ip: e, ready: false, serving: false, terminating: true } : e))))
  const s = p.sync()
  t.ok(s.flowsRemoved >= 1, 'UDP flow removed')
  const again = p.route(pkt('UDP', 6000, 101))
  t.ok(again.action === 'dnat' && again.endpoint !== u.endpoint, 'the UDP flow is decided anew, away from the not-serving endpoint')
  // UDP timeout: 30 s one way.
  const u2 = p.route(pkt('UDP', 6001, 200))
  t.ok(p.iptables!.flows().some((f) => f.orig.includes('|6001|')))
  p.route(pkt('UDP', 6002, 231))
  t.equal(p.iptables!.conntrack.lookup('UDP|10.0.0.5|6001|172.30.1.1|53', 231), undefined, 'one-way UDP flow expired after 30 s')
  t.equal(u2.action, 'dnat')
})

t.test('session affinity: -m recent keeps a client on its endpoint', async (t) => {
  const svc = makeService('ns', 'sticky', { clusterIP: '172.30.2.1', ports: [port('p80', 80)], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })
  const p = proxier([svc, makeSlice('ns', 'sticky', 1, ['10.2.0.1', '10.2.0.2', '10.2.0.3', '10.2.0.4'], p80)])
  const route = (src: string, sport: number, now: number) => p.route({ src, sport, dst: '172.30.2.1', dport: 80, protocol: 'TCP', now })
  const first = route('10.0.0.7', 1, 1)
  for (let i = 2; i < 30; i++) t.same(route('10.0.0.7', i, i), first)
  const other = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const r = route(`10.0.1.${i}`, 1, 30)
    if (r.action === 'dnat') other.add(r.endpoint)
  }
  t.ok(other.size > 1, 'other clients spread')
  // 60 s after the last use the stickiness expires: over many clients' restarts, not all stay.
  let moved = 0
  for (let i = 0; i < 40; i++) {
    const r = route(`10.0.1.${i}`, 2, 30 + 61)
    const before = route(`10.0.1.${i}`, 3, 30 + 62)
    if (JSON.stringify(r) !== JSON.stringify(before)) moved++
  }
  t.equal(moved, 0, 'a new choice is sticky again')
})

t.test('partial sync: changed services, top-level chains, -X for deleted chains', async (t) => {
  const p = proxier(overall)
  const full = p.iptablesRestore()
  t.equal(p.iptablesRestore({ partial: true }), full, 'the first sync is a full one')
  p.applyEndpointSlice(makeSlice('ns1', 'svc1', 1, ['10.180.0.1', '10.180.0.9'], p80))
  p.deleteService(overall[2])
  p.sync()
  const partial = p.iptablesRestore({ partial: true })
  const nat = parseIptablesSave(partial).tables.get('nat')!
  const chains = [...nat.chains.keys()].filter((c) => /^KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(c)).sort()
  // ns1/svc1's chains (rewritten), ns3/svc3's (deleted); nothing of the others.
  t.same(chains.filter((c) => !['KUBE-EXT-X27LE4BHSL4DOUIK', 'KUBE-SVC-X27LE4BHSL4DOUIK', 'KUBE-SEP-OYPFS5VJICHGATKP'].includes(c)).length, 3, 'svc1: SVC and two SEPs')
  t.ok(nat.chains.has('KUBE-SVC-XPGD46QRK7WJZT7O'))
  t.notOk(nat.chains.has('KUBE-SVC-NUKIZ6OKUXPJNT4C'), 'unchanged svc5 not rewritten')
  for (const c of ['KUBE-EXT-X27LE4BHSL4DOUIK', 'KUBE-SVC-X27LE4BHSL4DOUIK', 'KUBE-SEP-OYPFS5VJICHGATKP']) {
    t.match(partial, new RegExp(`\\n:${c} - \\[0:0\\]\\n`), `${c} flushed`)
    t.match(partial, new RegExp(`\\n-X ${c}\\n`), `${c} deleted`)
  }
  t.ok(nat.chains.get('KUBE-SERVICES')!.rules.some((r) => r.comment === 'ns5/svc5:p80 loadbalancer IP'), 'top-level chains list every service')
  const fullAfter = p.iptablesRestore()
  t.match(fullAfter, /\n-X KUBE-SVC-X27LE4BHSL4DOUIK\n/, 'a full sync deletes them too')
  t.match(fullAfter, /:KUBE-SVC-NUKIZ6OKUXPJNT4C /)
  t.equal(p.iptablesRestore({ partial: true }), partial, 'no side effects')
  p.sync()
  t.notMatch(p.iptablesRestore({ partial: true }), /KUBE-SVC-XPGD46QRK7WJZT7O -m/, 'a sync without changes rewrites no service chain')
})

t.test('options: masqueradeBit, localhostNodePorts, masqueradeAll, nfacct, large clusters', async (t) => {
  const bit = proxier(overall, { iptables: { masqueradeBit: 10, masqueradeMark: undefined } }).iptablesRestore()
  t.match(bit, /-A KUBE-MARK-MASQ -j MARK --or-mark 0x00000400\n/)
  t.match(bit, /-m mark ! --mark 0x00000400\/0x00000400 -j RETURN/)
  const noLocal = proxier(overall, { iptables: { localhostNodePorts: false } }).iptablesRestore()
  t.notMatch(noLocal, /KUBE-FIREWALL|127\.0\.0\.0\/8 --dport/)
  t.match(noLocal, /--dst-type LOCAL ! -d 127\.0\.0\.0\/8 -j KUBE-NODEPORTS/)
  const all = proxier(overall, { masqueradeAll: true })
  t.match(all.iptablesRestore(), /-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1\/svc1:p80 cluster IP" -m tcp -p tcp -d 172\.30\.0\.41 --dport 80 -j KUBE-MARK-MASQ/)
  t.match(all.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.41', dport: 80, protocol: 'TCP', now: 1 }), { masquerade: true })
  const noAcct = proxier(overall, { iptables: { nfacct: false } }).iptablesRestore()
  t.notMatch(noAcct, /nfacct/)
  t.match(noAcct, /-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP/)
  t.throws(() => new Proxier({ ...fakeProxier, iptables: { nfacct: 'yes' as unknown as boolean } }), /iptables\.nfacct must be a boolean/)
  t.throws(() => new Proxier({ ...fakeProxier, podCIDRs: ['10.0.0.0/8', '11.0.0.0/8'] }), /one CIDR per family/)

  // kube-proxy drops SVC/SEP comments above 1,000 endpoints.
  const big = (n: number) => [
    makeService('ns', 'big', { clusterIP: '172.30.3.1', ports: [port('p80', 80)] }),
    makeSlice('ns', 'big', 1, Array.from({ length: n }, (_, i) => `10.3.${i >> 8}.${i & 255}`), p80),
  ]
  const small = proxier(big(1000)).iptablesRestore()
  t.match(small, /-A KUBE-SEP-\S+ -m comment --comment ns\/big:p80 -s 10\.3\.0\.0 -j KUBE-MARK-MASQ/)
  const large = proxier(big(1001))
  const text = large.iptablesRestore()
  t.notMatch(text, /-A KUBE-SEP-\S+ -m comment/, 'no comments on SEP rules')
  t.notMatch(text, /-A KUBE-SVC-\S+ -m comment --comment "ns\/big:p80 -> /, 'none on SVC -> SEP rules')
  t.match(text, /-A KUBE-SVC-\S+ -m comment --comment "ns\/big:p80 cluster IP"/, 'the masquerade rule keeps its comment')
  t.match(text, /-A KUBE-SVC-\S+ -m statistic --mode random --probability 0\.0009990010 -j KUBE-SEP-/)
  const r = large.route({ src: '10.0.0.2', sport: 9, dst: '172.30.3.1', dport: 80, protocol: 'TCP', now: 1 })
  t.match(r, { action: 'dnat', servicePort: 'ns/big:p80' }, 'the service is still named (from KUBE-SERVICES)')
})

t.test('dual-stack: one ruleset per family', async (t) => {
  const p = proxier([
    makeService('ns', 'ds', { clusterIP: '172.30.4.1', clusterIPs: ['172.30.4.1', 'fd00:30::4:1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack', ports: [port('p80', 80)] }),
    makeSlice('ns', 'ds', 1, ['10.4.0.1'], p80),
    makeSlice('ns', 'ds', 2, ['fd00:10::4:1'], p80, 'IPv6'),
  ], { nodeIPs: [testNodeIP, '2001:db8::1'], podCIDRs: ['10.0.0.0/8', 'fd00:10::/64'] })
  t.match(p.iptablesRestore({ ipFamily: 'IPv6' }), /DNAT --to-destination \[fd00:10::4:1\]:80/)
  t.match(p.route({ src: 'fd00:10::9', sport: 1, dst: 'fd00:30::4:1', dport: 80, protocol: 'TCP', now: 1 }), { action: 'dnat', endpoint: '[fd00:10::4:1]:80' })
  t.match(p.route({ src: '10.0.0.9', sport: 1, dst: '172.30.4.1', dport: 80, protocol: 'TCP', now: 1 }), { action: 'dnat', endpoint: '10.4.0.1:80' })
  t.match(p.iptables!.ruleset('IPv6'), /:PREROUTING ACCEPT/)
})
