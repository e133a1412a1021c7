import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { IptablesEvaluator, type EvalPacket, type EvaluatorOptions } from '../../lib/iptables/netfilter/evaluator.js'
import { parseIptablesSave } from '../../lib/iptables/save/parser.js'

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8')
const NODE_A = fixture('node-a.iptables-save.txt')
const NODE_IP = '192.168.0.2'
const LOCAL_POD = '10.180.0.10' // a pod on this node (flannel subnet 10.180.0.0/24)
const OUTSIDE = '203.0.113.200'

function nodeA(opts: EvaluatorOptions = {}): IptablesEvaluator {
  return new IptablesEvaluator(NODE_A, { localAddresses: [NODE_IP, '1.2.3.4'], seed: 7, ...opts })
}

/** Returns the queued values in turn, then repeats the last one. */
function scripted(values: number[]): () => number {
  let i = 0
  return () => values[Math.min(i++, values.length - 1)]!
}

const tcp = (src: string, dst: string, dport: number, hook: EvalPacket['hook'], extra: Partial<EvalPacket> = {}): EvalPacket =>
  ({ src, sport: 40000, dst, dport, protocol: 'TCP', hook, ...extra })

t.test('kube-proxy decisions on a real node dump (table-driven)', async (t) => {
  const cases: Array<{ name: string; packet: EvalPacket; random?: number[]; want: Record<string, unknown>; endpoints?: string[] }> = [
    {
      name: 'ClusterIP from a local pod: DNAT, no masquerade',
      packet: tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting', { inIface: 'cni0' }),
      random: [0.1],
      want: { action: 'dnat', endpoint: '10.180.0.1:80', servicePort: 'ns1/svc1:p80', masquerade: false, path: 'forward' },
    },
    {
      name: 'ClusterIP second endpoint by the statistic rules',
      packet: tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting'),
      random: [0.9, 0.2],
      want: { action: 'dnat', endpoint: '10.180.1.1:80', masquerade: false },
    },
    {
      name: 'ClusterIP last endpoint catches the rest',
      packet: tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting'),
      random: [0.9, 0.9],
      want: { action: 'dnat', endpoint: '10.180.2.1:80' },
    },
    {
      name: 'ClusterIP from the node itself (outside the pod CIDR): masquerade',
      packet: tcp(NODE_IP, '172.30.0.41', 80, 'output'),
      random: [0.1],
      want: { action: 'dnat', endpoint: '10.180.0.1:80', masquerade: true, path: 'output', mark: 0 },
    },
    {
      name: 'UDP ClusterIP',
      packet: { src: LOCAL_POD, sport: 5353, dst: '172.30.0.10', dport: 53, protocol: 'udp', hook: 'prerouting' },
      random: [0.4],
      want: { action: 'dnat', endpoint: '10.180.0.7:53', servicePort: 'ns7/dns:dns' },
    },
    {
      // not service traffic; flannel masquerades pod traffic leaving the pod network
      name: 'wrong port on a ClusterIP is not service traffic',
      packet: tcp(LOCAL_POD, '172.30.0.41', 81, 'prerouting'),
      want: { action: 'accept', masquerade: true },
    },
    {
      name: 'NodePort from outside: DNAT and masquerade',
      packet: tcp(OUTSIDE, NODE_IP, 3003, 'prerouting', { inIface: 'eth0' }),
      want: { action: 'dnat', endpoint: '10.180.0.3:80', servicePort: 'ns3/svc3:p80', masquerade: true, path: 'forward' },
    },
    {
      name: 'NodePort on localhost from the node',
      packet: tcp('127.0.0.1', '127.0.0.1', 3003, 'output'),
      want: { action: 'dnat', endpoint: '10.180.0.3:80', masquerade: true },
    },
    {
      name: 'LoadBalancer with source ranges: allowed source',
      packet: tcp('203.0.113.5', '5.6.7.8', 80, 'prerouting'),
      random: [0.9],
      want: { action: 'dnat', endpoint: '10.180.1.3:80', servicePort: 'ns5/svc5:p80', masquerade: true },
    },
    {
      name: 'LoadBalancer with source ranges: other sources dropped by KUBE-PROXY-FIREWALL',
      packet: tcp('198.51.100.1', '5.6.7.8', 80, 'prerouting'),
      want: {
        action: 'drop', servicePort: 'ns5/svc5:p80', path: 'forward',
        reason: 'ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C',
      },
    },
    {
      name: 'externalTrafficPolicy Local from outside: only the local endpoint, source kept',
      packet: tcp(OUTSIDE, '1.2.3.4', 80, 'prerouting'),
      random: [0.9],
      want: { action: 'dnat', endpoint: '10.180.0.2:80', servicePort: 'ns2/svc2:p80', masquerade: false },
    },
    {
      name: 'externalTrafficPolicy Local from a pod: short-circuit to the cluster-wide chain',
      packet: tcp(LOCAL_POD, '1.2.3.4', 80, 'prerouting'),
      random: [0.9],
      want: { action: 'dnat', endpoint: '10.180.1.2:80', masquerade: false },
    },
    {
      name: 'externalTrafficPolicy Local from the node: masquerade and cluster-wide chain',
      packet: tcp(NODE_IP, '192.168.99.22', 80, 'output'),
      random: [0.9],
      want: { action: 'dnat', endpoint: '10.180.1.2:80', masquerade: true },
    },
    {
      name: 'externalTrafficPolicy Local without local endpoints: LB traffic dropped',
      packet: tcp(OUTSIDE, '5.6.7.9', 8080, 'prerouting'),
      want: { action: 'drop', servicePort: 'ns8/svc8:http', reason: 'ns8/svc8:http has no local endpoints' },
    },
    {
      name: 'externalTrafficPolicy Local without local endpoints: NodePort dropped on INPUT',
      packet: tcp(OUTSIDE, NODE_IP, 3008, 'prerouting'),
      want: { action: 'drop', servicePort: 'ns8/svc8:http', path: 'input' },
    },
    {
      name: 'externalTrafficPolicy Local without local endpoints: pods still reach it',
      packet: tcp(LOCAL_POD, '5.6.7.9', 8080, 'prerouting'),
      want: { action: 'dnat', endpoint: '10.180.1.8:8080' },
    },
    {
      name: 'no endpoints: REJECT from a pod (FORWARD)',
      packet: tcp(LOCAL_POD, '172.30.0.46', 80, 'prerouting'),
      want: { action: 'reject', servicePort: 'ns6/svc6:p80', reason: 'ns6/svc6:p80 has no endpoints', path: 'forward' },
    },
    {
      name: 'no endpoints: REJECT from the node (OUTPUT)',
      packet: tcp(NODE_IP, '172.30.0.46', 80, 'output'),
      want: { action: 'reject', servicePort: 'ns6/svc6:p80' },
    },
    {
      name: 'host-network endpoint: DNAT to a local address goes to INPUT, no POSTROUTING',
      packet: tcp(LOCAL_POD, '172.30.0.1', 443, 'prerouting'),
      random: [0.1],
      want: { action: 'dnat', endpoint: '192.168.0.2:6443', path: 'input', masquerade: false },
    },
    {
      name: 'martian to localhost from outside: kubelet KUBE-FIREWALL drops',
      packet: tcp(OUTSIDE, '127.0.0.1', 9999, 'prerouting'),
      want: { action: 'drop', reason: 'block incoming localnet connections', path: 'input' },
    },
    {
      name: 'established flow: nat skipped, KUBE-FORWARD accepts',
      packet: tcp(LOCAL_POD, '10.180.1.1', 80, 'prerouting', { ctstate: 'ESTABLISHED' }),
      want: { action: 'accept' },
    },
    {
      name: 'INVALID packets dropped in KUBE-FORWARD',
      packet: tcp(LOCAL_POD, '10.180.1.1', 80, 'prerouting', { ctstate: 'INVALID' }),
      want: { action: 'drop' },
    },
    {
      name: 'forwarded non-pod traffic hits the FORWARD DROP policy',
      packet: tcp('192.168.0.9', '198.51.100.7', 22, 'prerouting'),
      want: { action: 'drop', reason: 'chain policy DROP' },
    },
  ]
  for (const c of cases) {
    const ev = nodeA(c.random ? { random: scripted(c.random) } : {})
    const r = ev.evaluate(c.packet)
    t.match(r, c.want, c.name)
    if (c.want.action === 'accept') t.equal(r.servicePort, undefined, `${c.name}: no service port`)
    if (c.want.action !== 'dnat') t.equal(r.endpoint, undefined, `${c.name}: no endpoint`)
    t.same(r.unsupported, [], `${c.name}: nothing unsupported on the walk`)
  }
})

t.test('visited rules are the path through the chains', async (t) => {
  const ev = nodeA({ random: scripted([0.1]) })
  const r = ev.evaluate(tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting'))
  const path = r.visited.map((v) => `${v.ref.table} ${v.ref.chain} ${v.ref.num}`)
  t.same(path.slice(0, 4), [
    'nat PREROUTING 1',
    'nat KUBE-SERVICES 2',
    'nat KUBE-SVC-XPGD46QRK7WJZT7O 2',
    'nat KUBE-SEP-SXIVWICOYRO3J4NJ 2',
  ])
  t.ok(r.visited.every((v) => v.matched))
  t.ok(r.visited.some((v) => v.ref.chain === 'FLANNEL-FWD'), 'accepted by flannel in FORWARD')
  t.equal(r.visited[1]!.ref.line, parseIptablesSave(NODE_A).tables.get('nat')!.chains.get('KUBE-SERVICES')!.rules[1]!.line)

  const all = nodeA({ trace: 'all', random: scripted([0.1]) }).evaluate(tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting'))
  t.same(all.visited.slice(0, 3).map((v) => [v.ref.chain, v.ref.num, v.matched]), [
    ['PREROUTING', 1, true], ['KUBE-SERVICES', 1, false], ['KUBE-SERVICES', 2, true],
  ])
  const none = nodeA({ trace: 'none' }).evaluate(tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting'))
  t.same(none.visited, [])
})

t.test('session affinity with -m recent over virtual time', async (t) => {
  // First connection picks endpoint 1 (draw 0.1); afterwards every draw would pick endpoint 2.
  const ev = nodeA({ random: scripted([0.1, 0.9]) })
  const client = '10.180.0.10'
  const at = (now: number, src = client) => ev.evaluate(tcp(src, '172.30.0.45', 80, 'prerouting', { now }))
  t.equal(at(0).endpoint, '10.180.0.3:80', 'first connection: random choice')
  t.equal(at(100).endpoint, '10.180.0.3:80', 'sticky within the timeout')
  t.equal(at(100 + 10800).endpoint, '10.180.0.3:80', 'the window is inclusive and renewed by each connection')
  t.equal(at(200 + 2 * 10800).endpoint, '10.180.1.3:80', 'expired: chosen again at random')
  t.equal(at(200 + 2 * 10800 + 1).endpoint, '10.180.1.3:80', 'sticky to the new choice')
  t.equal(at(5, '10.180.0.11').endpoint, '10.180.1.3:80', 'another client is independent')
  t.same(ev.recent.entries('KUBE-SEP-YCFYP3HJLF2AOHNO').length, 2)
  // the affinity rcheck rule for endpoint 2 matched for the sticky connection
  const sticky = at(200 + 2 * 10800 + 2)
  t.ok(sticky.visited.some((v) => v.ref.chain === 'KUBE-SVC-NUKIZ6OKUXPJNT4C' && v.ref.num === 3))
})

t.test('probability spread with a seeded RNG matches 1/n per endpoint', async (t) => {
  const ev = nodeA({ seed: 12345, trace: 'none' })
  const counts = new Map<string, number>()
  const n = 30000
  for (let i = 0; i < n; i++) {
    const r = ev.evaluate({ src: LOCAL_POD, sport: 1024 + (i % 60000), dst: '172.30.0.41', dport: 80, protocol: 'TCP', hook: 'prerouting' })
    counts.set(r.endpoint!, (counts.get(r.endpoint!) ?? 0) + 1)
  }
  t.same([...counts.keys()].sort(), ['10.180.0.1:80', '10.180.1.1:80', '10.180.2.1:80'])
  for (const [ep, c] of counts) t.ok(Math.abs(c / n - 1 / 3) < 0.015, `${ep}: ${c} of ${n}`)
  // same seed, same sequence
  const a = nodeA({ seed: 99 })
  const b = nodeA({ seed: 99 })
  const seq = (e: IptablesEvaluator) => Array.from({ length: 50 }, () => e.evaluate(tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting')).endpoint)
  t.same(seq(a), seq(b))
})

t.test('per-rule counters like iptables -L -v', async (t) => {
  const ev = nodeA({ random: scripted([0.1]) })
  for (let i = 0; i < 5; i++) ev.evaluate(tcp(NODE_IP, '172.30.0.41', 80, 'output', { length: 100 }))
  const svcRule = ev.chainRules('nat', 'KUBE-SERVICES')[1]!
  t.same(ev.counterOf(svcRule), { packets: 5, bytes: 500 })
  const markMasq = ev.chainRules('nat', 'KUBE-MARK-MASQ')[0]!
  t.same(ev.counterOf(markMasq), { packets: 5, bytes: 500 })
  t.same(ev.counterOf(ev.chainRules('nat', 'KUBE-POSTROUTING')[2]!), { packets: 5, bytes: 500 }, 'MASQUERADE rule')
  t.same(ev.counterOf(ev.chainRules('nat', 'KUBE-POSTROUTING')[0]!), { packets: 0, bytes: 0 }, 'RETURN rule skipped')
  const counted = ev.counters()
  t.ok(counted.every((c) => c.packets > 0))
  t.ok(counted.some((c) => c.ref === svcRule))
  const filterOut = ev.policyCounters().find((c) => c.table === 'filter' && c.chain === 'OUTPUT')!
  t.match(filterOut, { policy: 'ACCEPT', packets: 5, bytes: 500 })
  t.match(ev.listChain('nat', 'KUBE-MARK-MASQ'), /^Chain KUBE-MARK-MASQ\n.*\n\s+5\s+500\s+-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000\/0x4000$/)
  ev.resetCounters()
  t.same(ev.counterOf(svcRule), { packets: 0, bytes: 0 })
})

t.test('chain semantics: jump, goto, RETURN, policies, marks', async (t) => {
  const text = [
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':A - [0:0]',
    ':B - [0:0]',
    ':C - [0:0]',
    '-A INPUT -j MARK --set-xmark 0x1/0xff',
    '-A INPUT -p tcp -m tcp --dport 1 -j A',
    '-A INPUT -p tcp -m tcp --dport 2 -g B',
    '-A INPUT -p tcp -m tcp --dport 3 -j C',
    '-A INPUT -m mark --mark 0x3/0xff -j ACCEPT',
    '-A INPUT -p tcp -m tcp --dport 4 -j RETURN',
    '-A INPUT -j ACCEPT',
    '-A A -j MARK --or-mark 0x2',
    '-A A -j RETURN',
    '-A A -j DROP',
    '-A B -j MARK --xor-mark 0x1',
    '-A C -m mark ! --mark 0x1/0xff -j ACCEPT',
    '-A C -j REJECT',
    'COMMIT',
    '',
  ].join('\n')
  const ev = new IptablesEvaluator(text, { localAddresses: ['10.0.0.1'] })
  const pkt = (dport: number) => tcp('10.0.0.9', '10.0.0.1', dport, 'prerouting')
  t.match(ev.evaluate(pkt(1)), { action: 'accept', mark: 3 }, 'jump, mark, RETURN back, then mark rule accepts')
  t.match(ev.evaluate(pkt(2)), { action: 'drop', mark: 0, reason: 'chain policy DROP' }, 'goto chain falls off: the built-in policy applies')
  t.match(ev.evaluate(pkt(3)), { action: 'reject', reason: 'filter C rule 2' })
  t.match(ev.evaluate(pkt(4)), { action: 'drop' }, 'RETURN from a built-in chain applies the policy')
  t.match(ev.evaluate(pkt(5)), { action: 'accept' })
  t.match(ev.evaluate({ ...pkt(5), mark: 0xff00 }), { mark: 0xff01 }, 'set-xmark keeps bits outside the mask')
})

t.test('statistic nth, multiport, addrtype, physdev, state', async (t) => {
  const text = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    '-A PREROUTING -p udp -m multiport --dports 53,5300:5310 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.9.0.1',
    '-A PREROUTING -p udp -m multiport --dports 53,5300:5310 -j DNAT --to-destination 10.9.0.2:5353',
    '-A PREROUTING -m addrtype --dst-type MULTICAST -j DNAT --to-destination 10.9.0.3',
    '-A PREROUTING -m physdev --physdev-in veth7 --physdev-is-bridged -j DNAT --to-destination 10.9.0.4',
    'COMMIT',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A FORWARD -m state --state NEW -d 10.9.0.4/32 -j DROP',
    'COMMIT',
    '',
  ].join('\n')
  const ev = new IptablesEvaluator(text)
  const udp = (dport: number): EvalPacket => ({ src: '10.1.0.1', sport: 999, dst: '10.2.0.1', dport, protocol: 'udp', hook: 'prerouting' })
  t.same([1, 2, 3, 4].map(() => ev.evaluate(udp(53)).endpoint), ['10.9.0.1:53', '10.9.0.2:5353', '10.9.0.1:53', '10.9.0.2:5353'])
  t.equal(ev.evaluate(udp(5305)).action, 'dnat')
  t.equal(ev.evaluate(udp(5400)).action, 'accept')
  t.equal(ev.evaluate({ ...udp(1), dst: '239.1.1.1' }).endpoint, '10.9.0.3:1')
  t.equal(ev.evaluate({ ...udp(1), physdevIn: 'veth7' }).action, 'drop')
  t.equal(ev.evaluate({ ...udp(1), physdevIn: 'veth8' }).action, 'accept')
})

t.test('IPv6 dumps', async (t) => {
  const text = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-SEP-V6 - [0:0]',
    '-A PREROUTING -j KUBE-SERVICES',
    '-A KUBE-SERVICES -d fd00:30::41/128 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SEP-V6',
    '-A KUBE-SEP-V6 -s fd00:10:180::1/128 -m comment --comment "ns1/svc1:p80" -j MARK --or-mark 0x4000',
    '-A KUBE-SEP-V6 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination [fd00:10:180::1]:80',
    'COMMIT',
    '',
  ].join('\n')
  const doc = parseIptablesSave(text)
  t.equal(doc.family, 6)
  const ev = new IptablesEvaluator(doc, { localAddresses: ['fd00:1::2'] })
  t.match(ev.evaluate({ src: 'fd00:10:180::9', sport: 1, dst: 'fd00:30::41', dport: 80, protocol: 'tcp', hook: 'prerouting' }), {
    action: 'dnat', endpoint: '[fd00:10:180::1]:80', servicePort: 'ns1/svc1:p80', mark: 0,
  })
  t.match(ev.evaluate({ src: 'fd00:10:180::1', sport: 1, dst: 'fd00:30::41', dport: 80, protocol: 'tcp', hook: 'prerouting' }), { mark: 0x4000 }, 'hairpin mark')
  t.equal(ev.evaluate({ src: 'fd00:10:180::9', sport: 1, dst: 'fd00:30::42', dport: 80, protocol: 'tcp', hook: 'prerouting' }).action, 'accept')
})

t.test('unsupported matches: reported on the walk, and ipsets can be supplied', async (t) => {
  const calico = fixture('calico-node.iptables-save.txt')
  const pod = { src: '10.244.1.5', sport: 3333, dst: '8.8.8.8', dport: 53, protocol: 'udp', hook: 'prerouting', inIface: 'tunl0' } as const
  const ev = new IptablesEvaluator(calico, { localAddresses: ['192.168.0.5'] })
  const r = ev.evaluate(pod)
  t.equal(r.masquerade, false, 'unknown set contents never match by default')
  t.same(r.unsupported.map((u) => `${u.chain} ${u.num}`), ['cali-nat-outgoing 1'])

  const lenient = new IptablesEvaluator(calico, { localAddresses: ['192.168.0.5'], unsupportedMatch: 'match' })
  t.equal(lenient.evaluate(pod).masquerade, true, "'match' treats unknown matches as matching")

  const withSets = new IptablesEvaluator(calico, {
    localAddresses: ['192.168.0.5'],
    ipsets: { 'cali40masq-ipam-pools': ['10.244.0.0/16'], 'cali40all-ipam-pools': ['10.244.0.0/16'], 'cali40all-hosts-net': ['192.168.0.0/24'] },
  })
  const r2 = withSets.evaluate(pod)
  t.equal(r2.masquerade, true, 'pod to internet is masqueraded by calico')
  t.same(r2.unsupported, [])
  t.equal(withSets.evaluate({ ...pod, dst: '10.244.2.9' }).masquerade, false, 'pod to pod is not')
})

t.test('bad input is refused with the field named', async (t) => {
  const ev = nodeA()
  const base = tcp(LOCAL_POD, '172.30.0.41', 80, 'prerouting')
  const cases: Array<[string, Partial<EvalPacket>, typeof TypeError | typeof RangeError, RegExp]> = [
    ['src', { src: 'nope' }, TypeError, /packet\.src/],
    ['dst', { dst: '1.2.3' }, TypeError, /packet\.dst/],
    ['family mix', { dst: 'fd00::1' }, TypeError, /different families/],
    ['protocol', { protocol: 'xyz' }, TypeError, /packet\.protocol/],
    ['dport', { dport: 70000 }, RangeError, /packet\.dport/],
    ['hook', { hook: 'input' as EvalPacket['hook'] }, TypeError, /packet\.hook/],
    ['ctstate', { ctstate: 'OLD' as EvalPacket['ctstate'] }, TypeError, /packet\.ctstate/],
    ['now', { now: Number.NaN }, RangeError, /packet\.now/],
  ]
  for (const [name, patch, type, re] of cases) {
    t.throws(() => ev.evaluate({ ...base, ...patch }), type, name)
    t.throws(() => ev.evaluate({ ...base, ...patch }), re, name)
  }
  t.throws(() => new IptablesEvaluator(NODE_A, { localAddresses: ['x'] }), /options\.localAddresses/)
  t.throws(() => new IptablesEvaluator('*filter\n-A INPUT -j BOGUS-\n'), /line 3: COMMIT expected/)
})

t.test('jump loops are stopped', async (t) => {
  // iptables-restore refuses loops; a hand-built document can still contain one.
  const doc = parseIptablesSave('*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\nCOMMIT\n')
  const b = doc.tables.get('filter')!.chains.get('B')!
  const a = doc.tables.get('filter')!.chains.get('A')!
  b.rules.push({ ...a.rules[0]!, chain: 'B', target: { kind: 'jump', chain: 'A', name: 'A', goto: false, pos: 0, options: [] } })
  const ev = new IptablesEvaluator(doc, { maxDepth: 16, localAddresses: ['10.0.0.2'] })
  t.throws(() => ev.evaluate(tcp('10.0.0.1', '10.0.0.2', 1, 'prerouting')), RangeError)
  t.throws(() => ev.evaluate(tcp('10.0.0.1', '10.0.0.2', 1, 'prerouting')), /jump depth exceeds 16/)
})
