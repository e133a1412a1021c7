import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { base32, endpointChainName, serviceClusterChainName, serviceExternalChainName, serviceFirewallChainName, serviceLocalChainName } from '../../lib/iptables/kube-proxy/chain-names.js'
import { IptablesEvaluator } from '../../lib/iptables/netfilter/evaluator.js'
import { parseIptablesSave } from '../../lib/iptables/save/parser.js'
import { serializeIptables } from '../../lib/iptables/save/serialize.js'
import { computeProbability, formatMasqueradeMark, renderIptablesRestore, renderJumpRules, renderNodeRuleset } from '../../lib/iptables/kube-proxy/render.js'
import type { RenderServicePort } from '../../lib/iptables/kube-proxy/render-types.js'
import type { Rule } from '../../lib/iptables/save/types.js'

const ep = (s: string) => ({ ip: s.split(':')[0]!, port: Number(s.split(':')[1]) })

// The services of fixtures/node-a.iptables-save.txt (node-a, pod CIDR 10.0.0.0/8).
const NODE_A_PORTS: RenderServicePort[] = [
  { name: 'default/kubernetes:https', protocol: 'TCP', clusterIP: '172.30.0.1', port: 443, clusterEndpoints: [ep('192.168.0.2:6443'), ep('192.168.0.3:6443')], localEndpoints: [] },
  { name: 'ns1/svc1:p80', protocol: 'TCP', clusterIP: '172.30.0.41', port: 80, clusterEndpoints: ['10.180.0.1:80', '10.180.1.1:80', '10.180.2.1:80'].map(ep), localEndpoints: [] },
  {
    name: 'ns2/svc2:p80', protocol: 'TCP', clusterIP: '172.30.0.42', port: 80, nodePort: 3001, loadBalancerIPs: ['1.2.3.4'],
    externalIPs: ['192.168.99.22'], externalPolicyLocal: true, healthCheckNodePort: 30000,
    clusterEndpoints: [ep('10.180.0.2:80'), ep('10.180.1.2:80')], localEndpoints: [ep('10.180.0.2:80')],
  },
  { name: 'ns3/svc3:p80', protocol: 'TCP', clusterIP: '172.30.0.43', port: 80, nodePort: 3003, clusterEndpoints: [ep('10.180.0.3:80')], localEndpoints: [] },
  {
    name: 'ns5/svc5:p80', protocol: 'TCP', clusterIP: '172.30.0.45', port: 80, nodePort: 3002, loadBalancerIPs: ['5.6.7.8'],
    loadBalancerSourceRanges: [' 203.0.113.0/25'], sessionAffinityTimeoutSeconds: 10800,
    clusterEndpoints: [ep('10.180.0.3:80'), ep('10.180.1.3:80')], localEndpoints: [],
  },
  { name: 'ns6/svc6:p80', protocol: 'TCP', clusterIP: '172.30.0.46', port: 80, clusterEndpoints: [], localEndpoints: [] },
  { name: 'ns7/dns:dns', protocol: 'UDP', clusterIP: '172.30.0.10', port: 53, clusterEndpoints: [ep('10.180.0.7:53'), ep('10.180.1.7:53')], localEndpoints: [] },
  {
    name: 'ns8/svc8:http', protocol: 'TCP', clusterIP: '172.30.0.48', port: 8080, nodePort: 3008, loadBalancerIPs: ['5.6.7.9'],
    externalPolicyLocal: true, healthCheckNodePort: 30008, clusterEndpoints: [ep('10.180.1.8:8080')], localEndpoints: [],
  },
]
const NODE_A_OPTS = { podCIDR: '10.0.0.0/8', nodeIPs: ['192.168.0.2'] }

t.test('chain names hash like kube-proxy', async (t) => {
  t.equal(base32(new Uint8Array([0x66, 0x6f, 0x6f, 0x62, 0x61, 0x72])), 'MZXW6YTBOI======', 'RFC 4648 test vector')
  // names as they appear in kube-proxy's TestOverallIPTablesRules expectations
  t.equal(serviceClusterChainName('ns1/svc1:p80', 'tcp'), 'KUBE-SVC-XPGD46QRK7WJZT7O')
  t.equal(serviceExternalChainName('ns2/svc2:p80', 'tcp'), 'KUBE-EXT-GNZBNJ2PO5MGZ6GT')
  t.equal(serviceLocalChainName('ns2/svc2:p80', 'tcp'), 'KUBE-SVL-GNZBNJ2PO5MGZ6GT')
  t.equal(serviceFirewallChainName('ns5/svc5:p80', 'tcp'), 'KUBE-FW-NUKIZ6OKUXPJNT4C')
  t.equal(endpointChainName('ns1/svc1:p80', 'tcp', '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ')
  t.equal(endpointChainName('ns5/svc5:p80', 'tcp', '10.180.0.3:80'), 'KUBE-SEP-I77PXRDZVX7PMWMN')
})

t.test('probability and mark formatting', async (t) => {
  const cases: Array<[number, string]> = [
    [1, '1.0000000000'], [2, '0.5000000000'], [3, '0.3333333333'], [6, '0.1666666667'], [7, '0.1428571429'],
    [1024, '0.0009765625'], [2048, '0.0004882812'], [4096, '0.0002441406'], [1000, '0.0010000000'],
  ]
  for (const [n, want] of cases) t.equal(computeProbability(n), want, `1/${n}`)
  t.throws(() => computeProbability(0), RangeError)
  t.equal(formatMasqueradeMark(14), '0x00004000')
  t.equal(formatMasqueradeMark(31), '0x80000000')
  t.throws(() => formatMasqueradeMark(32), RangeError)
})

/** A rule's meaning, independent of argument order, quoting and spelling. */
function meaning(r: Rule): string {
  const cidr = (s?: { negated: boolean; cidrs: Array<{ w: readonly number[]; bits: number }> }) =>
    s ? `${s.negated ? '!' : ''}${s.cidrs.map((c) => `${c.w.join('.')}/${c.bits}`).join(',')}` : ''
  const ms = r.matches.map((m) => {
    const { pos: _pos, options: _options, implicit: _implicit, module: _module, ...rest } = m as unknown as Record<string, unknown>
    if (rest.kind === 'recent' && rest.mask === undefined) rest.mask = '255.255.255.255' // iptables-save prints the default
    // the kernel keeps round(p * 2^31); iptables-save prints that back with 11 digits
    if (rest.kind === 'statistic' && typeof rest.probability === 'number') rest.probability = Math.round(rest.probability * 0x80000000)
    return JSON.stringify(rest, Object.keys(rest).sort())
  }).sort()
  let tgt = ''
  if (r.target) {
    const { pos: _pos, options: _options, ...rest } = r.target as unknown as Record<string, unknown>
    if (rest.kind === 'reject' && rest.rejectWith === undefined) rest.rejectWith = 'icmp-port-unreachable'
    tgt = JSON.stringify(rest)
  }
  return [cidr(r.ip.src), cidr(r.ip.dst), r.ip.protocol?.name ?? '', ms.join(' '), tgt].join(' | ')
}

t.test('renders the rules found on a node, rule for rule', async (t) => {
  const text = renderIptablesRestore(NODE_A_PORTS, { ...NODE_A_OPTS, masqueradeMark: '0x4000' })
  const rendered = parseIptablesSave(text)
  const saved = parseIptablesSave(readFileSync(join(__dirname, 'fixtures', 'node-a.iptables-save.txt'), 'utf8'))
  for (const table of ['filter', 'nat']) {
    const kubeChains = [...saved.tables.get(table)!.chains.values()].filter((c) => c.name.startsWith('KUBE-') && !/CANARY|HINT/.test(c.name))
    t.same([...rendered.tables.get(table)!.chains.keys()].filter((n) => n.startsWith('KUBE-')).sort(), kubeChains.map((c) => c.name).sort(), `${table}: same chains`)
    for (const c of kubeChains) {
      const mine = rendered.tables.get(table)!.chains.get(c.name)!.rules.map(meaning)
      t.same(mine, c.rules.map(meaning), `${table} ${c.name}`)
    }
  }
})

t.test('restore text details', async (t) => {
  const text = renderIptablesRestore(NODE_A_PORTS, NODE_A_OPTS)
  const lines = text.split('\n')
  t.equal(lines[0], '*filter')
  t.equal(lines.at(-1), '')
  t.ok(lines.includes('-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000'))
  t.ok(lines.includes('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully'))
  t.ok(lines.includes('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ'))
  t.ok(lines.includes('-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ'))
  t.ok(lines.includes('-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80'))
  t.ok(lines.includes('-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C'))
  t.equal(lines.filter((l) => l.startsWith('-A KUBE-SERVICES')).at(-1),
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
  // round-trips through the parser unchanged
  t.equal(serializeIptables(parseIptablesSave(text)), text)
})

t.test('options: nfacct, localhost node ports, masqueradeAll, large clusters, IPv6', async (t) => {
  const plain = renderIptablesRestore(NODE_A_PORTS, { ...NODE_A_OPTS, nfacct: false, localhostNodePorts: false, randomFully: false })
  t.notMatch(plain, /nfacct/)
  t.notMatch(plain, /KUBE-FIREWALL/)
  t.match(plain, /--dst-type LOCAL ! -d 127\.0\.0\.0\/8 -j KUBE-NODEPORTS/)
  t.match(plain, /-j MASQUERADE\n/)

  const all = renderIptablesRestore(NODE_A_PORTS, { masqueradeAll: true })
  t.match(all, /-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1\/svc1:p80 cluster IP" -m tcp -p tcp -d 172\.30\.0\.41 --dport 80 -j KUBE-MARK-MASQ/)

  const large = renderIptablesRestore(NODE_A_PORTS, { ...NODE_A_OPTS, largeClusterEndpointsThreshold: 5 })
  t.ok(large.includes('-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1 -j KUBE-MARK-MASQ'), 'SEP comments dropped')
  t.ok(large.includes('-A KUBE-SVC-XPGD46QRK7WJZT7O -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ'))
  t.ok(large.includes('"ns1/svc1:p80 cluster IP"'), 'KUBE-SERVICES comments kept')

  const v6 = renderIptablesRestore([{ name: 'ns1/svc1:p80', protocol: 'TCP', clusterIP: 'fd00:30:0::41', port: 80, nodePort: 3001, clusterEndpoints: [ep('fd00::1:80')].map(() => ({ ip: 'fd00:10:180::1', port: 80 })), localEndpoints: [] }], { ipFamily: 6, podCIDR: 'fd00:10::/64' })
  t.match(v6, /-d fd00:30::41 --dport 80/)
  t.match(v6, /DNAT --to-destination \[fd00:10:180::1\]:80/)
  t.match(v6, /--dst-type LOCAL ! -d ::1\/128 -j KUBE-NODEPORTS/)
  t.notMatch(v6, /127\.0\.0\.0/)
  t.throws(() => renderIptablesRestore([{ ...NODE_A_PORTS[0]!, protocol: 'ICMP' as 'TCP' }]), TypeError)
  t.throws(() => renderIptablesRestore([{ ...NODE_A_PORTS[0]!, clusterIP: 'x' }]), /invalid IP/)
})

t.test('partial sync writes only changed services and deletes stale chains', async (t) => {
  const text = renderIptablesRestore(NODE_A_PORTS, {
    ...NODE_A_OPTS, changedServices: ['ns1/svc1'], existingNatChains: ['KUBE-SVC-XPGD46QRK7WJZT7O', 'KUBE-SEP-GONEGONEGONEGONE', 'KUBE-SERVICES', 'FLANNEL-POSTRTG'],
  })
  const doc = parseIptablesSave(text)
  const nat = doc.tables.get('nat')!
  t.ok(nat.chains.has('KUBE-SVC-XPGD46QRK7WJZT7O'))
  t.notOk(nat.chains.has('KUBE-SVC-NUKIZ6OKUXPJNT4C'), 'unchanged service chains not rewritten')
  t.notOk(nat.chains.has('KUBE-SEP-GONEGONEGONEGONE'), 'stale chain deleted')
  t.match(text, /:KUBE-SEP-GONEGONEGONEGONE - \[0:0\]\n/)
  t.match(text, /\n-X KUBE-SEP-GONEGONEGONEGONE\n/)
  t.notMatch(text, /-X FLANNEL-POSTRTG/)
  // top-level rules still reference every service
  t.ok(nat.chains.get('KUBE-SERVICES')!.rules.some((r) => r.comment === 'ns5/svc5:p80 cluster IP'))
  t.equal(parseIptablesSave(text, { noflush: true }).unsupported.length, 0)
})

t.test('the rendered node ruleset evaluates like the saved node dump', async (t) => {
  const saved = new IptablesEvaluator(readFileSync(join(__dirname, 'fixtures', 'node-a.iptables-save.txt'), 'utf8'), { localAddresses: ['192.168.0.2'], seed: 3 })
  const rendered = new IptablesEvaluator(renderNodeRuleset(NODE_A_PORTS, NODE_A_OPTS), { localAddresses: ['192.168.0.2'], seed: 3 })
  t.same(renderJumpRules().nat, [
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  ])
  const dsts: Array<[string, number]> = [['172.30.0.41', 80], ['172.30.0.42', 80], ['1.2.3.4', 80], ['192.168.0.2', 3001], ['192.168.0.2', 3003],
    ['5.6.7.8', 80], ['172.30.0.46', 80], ['5.6.7.9', 8080], ['192.168.0.2', 3008], ['172.30.0.1', 443], ['127.0.0.1', 3002]]
  const srcs = ['10.180.0.10', '192.168.0.2', '203.0.113.7', '198.51.100.1', '127.0.0.1']
  let compared = 0
  for (const [dst, dport] of dsts) {
    for (const src of srcs) {
      for (const hook of ['output', 'prerouting'] as const) {
        if (hook === 'prerouting' && src === '127.0.0.1') continue
        const p = { src, sport: 40000, dst, dport, protocol: 'TCP', hook, now: compared }
        const a = saved.evaluate(p)
        const b = rendered.evaluate(p)
        // flannel's masquerade rules exist only in the saved dump: compare kube-proxy's decision
        t.same([b.action, b.endpoint, b.servicePort], [a.action, a.endpoint, a.servicePort], `${hook} ${src} -> ${dst}:${dport}`)
        compared++
      }
    }
  }
  t.ok(compared > 90)
})
