// The nftables ruleset kube-proxy builds, compared with kube-proxy's own expectations the way
// its tests compare them (sortNFTablesTransaction): TestOverallNFTablesRules, the base rules,
// the chain-name hashing tests, IPv6 and the option variants.
import t from 'tap'
import { hashAndTruncate, servicePortChainNameBase, servicePortEndpointChainNameBase } from '../../lib/nftables/kube-proxy/chain-names.js'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { fakeProxier, fixture, overallObjects, p80 } from './fake-proxier'
import { sortNFTablesTransaction } from './kube-proxy-sort'

const sorted = sortNFTablesTransaction

t.test('chain names hash and truncate like kube-proxy (Test_servicePortChainNameBase, Test_servicePortEndpointChainNameBase)', async (t) => {
  const long = ['very-long-namespace-name-abcdefghijklmnopqrstuvwxyz0123456789xx', 'very-long-service-name-why-would-you-even-do-this-i-mean-really', 'port-443-providing-the-hypertext-transmission-protocol-with-tls'] as const
  const longBase = `${long[0]}/${long[1]}/sctp/${long[2]}`
  const cases: [string, string, string][] = [
    ['simple', servicePortChainNameBase('testing', 'service', 'http', 'tcp'), 'P4ZYZVCF-testing/service/tcp/http'],
    ['another port', servicePortChainNameBase('testing', 'service', 'https', 'tcp'), 'LZBRENCP-testing/service/tcp/https'],
    ['max length', servicePortChainNameBase(...long, 'sctp'), `KR6NACJP-${longBase}`],
    ['endpoint', servicePortEndpointChainNameBase('testing', 'service', 'http', 'tcp', '10.180.0.1:80'), 'JO2XBXZR-testing/service/tcp/http__10.180.0.1/80'],
    ['another endpoint', servicePortEndpointChainNameBase('testing', 'service', 'http', 'tcp', '10.180.0.2:80'), '5S6H3H22-testing/service/tcp/http__10.180.0.2/80'],
    ['ipv6', servicePortEndpointChainNameBase('testing', 'service', 'http', 'tcp', '[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:80'), 'U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80'],
    ['max length without truncation', servicePortEndpointChainNameBase(...long, 'sctp', '[1234:5678:9abc:def0::abc:1234]:443'), `5YS7AFEA-${longBase}__1234.5678.9abc.def0..abc.1234/443`],
    ['truncated', servicePortEndpointChainNameBase(...long, 'sctp', '[1234:5678:9abc:def0::abcd:1234:5678]:443'), `CI6C53Q3-${longBase}__1234.5678.9abc.def0..abcd.1234...`],
    ['truncated, other IP', servicePortEndpointChainNameBase(...long, 'sctp', '[1234:5678:9abc:def0::abcd:1234:8765]:443'), `2FLXFK6X-${longBase}__1234.5678.9abc.def0..abcd.1234...`],
  ]
  for (const [name, got, want] of cases) t.equal(got, want, name)
  t.equal(hashAndTruncate('x'.repeat(300)).length, 240, 'truncated to 240 characters')
})

t.test('the sort compares the way kube-proxy does', async (t) => {
  const a = 'add rule ip kube-proxy c b\nadd chain ip kube-proxy c\n# comment\n\nadd rule ip kube-proxy c a\nadd table ip kube-proxy { comment "x" ; }'
  t.equal(sorted(a), 'add table ip kube-proxy { comment "x" ; }\nadd chain ip kube-proxy c\nadd rule ip kube-proxy c b\nadd rule ip kube-proxy c a', 'rules keep their order')
  t.not(sorted('add rule ip kube-proxy c a\nadd rule ip kube-proxy c b'), sorted('add rule ip kube-proxy c b\nadd rule ip kube-proxy c a'), 'rule order matters')
})

t.test('TestOverallNFTablesRules: the ruleset equals kube-proxy\'s expectation after its sort', async (t) => {
  const p = fakeProxier(overallObjects)
  t.equal(sorted(p.nftablesRuleset()), sorted(fixture('base-rules.nft') + fixture('overall.nft')))
})

t.test('no Services: the base rules', async (t) => {
  const p = fakeProxier()
  t.equal(sorted(p.nftablesRuleset()), sorted(fixture('base-rules.nft')))
})

t.test('options change exactly the rules kube-proxy changes', async (t) => {
  const base = sorted(fixture('base-rules.nft')).split('\n')
  const diff = (text: string) => {
    const got = sorted(text).split('\n')
    return { added: got.filter((l) => !base.includes(l)), removed: base.filter((l) => !got.includes(l)) }
  }
  const all = diff(fakeProxier([], { nodePortAddresses: undefined }).nftablesRuleset())
  t.same(all.added, [
    'add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports',
    'add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
  ], 'NodePorts on every local address: fib daddr type local, no nodeport-ips set')
  t.ok(all.removed.some((l) => l.startsWith('add set ip kube-proxy nodeport-ips')))
  const noCidrs = diff(fakeProxier([], { serviceCIDRs: [] }).nftablesRuleset())
  t.same(noCidrs.removed, ['add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"'])
  const two = diff(fakeProxier([], { serviceCIDRs: ['172.30.0.0/16', '172.50.0.0/16', 'fd00:10:96::/112'] }).nftablesRuleset())
  t.same(two.added, ['add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16,172.50.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"'], 'CIDRs of the family, comma-joined')
  const mark = fakeProxier([], { nftables: { masqueradeBit: 15 } }).nftablesRuleset()
  t.match(mark, /mark-for-masquerade mark set mark or 0x00008000\n/, 'the mark is %#08x of 1 << bit')
  t.match(fakeProxier([], { nftables: {} }).nftablesRuleset(), /mark set mark or 0x00004000\n/, 'default bit 14')
})

t.test('masqueradeAll and no local-traffic detector', async (t) => {
  const objs = [makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [port('p80', 80)] }), makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], p80)]
  const rules = (text: string) => text.split('\n').filter((l) => l.startsWith('add rule ip kube-proxy service-ULMVA6XW'))
  t.same(rules(fakeProxier(objs, { masqueradeAll: true }).nftablesRuleset())[0], 'add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 jump mark-for-masquerade')
  t.same(rules(fakeProxier(objs, { podCIDRs: [] }).nftablesRuleset()), ['add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }'])
})

t.test('LoadBalancerSourceRanges containing the node IP admit the LB IPs (TestLoadBalancer)', async (t) => {
  const objs = [
    makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [port('p80', 80, { nodePort: 3001 })], loadBalancerSourceRanges: ['192.168.0.0/24', ' 203.0.113.0/25'] }, { loadBalancer: { ingress: [{ ip: '1.2.3.4' }, { ip: '5.6.7.8' }] } }),
    makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], p80),
  ]
  const fw = fakeProxier(objs).nftablesRuleset().split('\n').filter((l) => l.startsWith('add rule ip kube-proxy firewall-ULMVA6XW'))
  t.same(fw, ['add rule ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr != { 192.168.0.0/24 , 203.0.113.0/25 , 1.2.3.4 , 5.6.7.8 } drop'])
})

t.test('IPv6: table ip6, ip6 daddr, [addr]:port, no localhost NodePorts', async (t) => {
  const objs = [
    makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: 'fd00:10:96::41', ipFamilies: ['IPv6'], ports: [port('p80', 80, { nodePort: 3001 })] }),
    makeSlice('ns1', 'svc1', 1, ['fd00:10::1'], p80, 'IPv6'),
  ]
  const p = fakeProxier(objs, { nodeIPs: ['2001:db8::1'], podCIDRs: ['fd00:10::/64'], serviceCIDRs: ['fd00:10:96::/112'], nodePortAddresses: undefined })
  const text = p.nftablesRuleset()
  t.match(text, /^add table ip6 kube-proxy \{ comment "rules for kube-proxy" ; \}\n/)
  t.match(text, /add set ip6 kube-proxy cluster-ips \{ type ipv6_addr ; comment "Active ClusterIPs" ; \}\n/)
  t.match(text, /add rule ip6 kube-proxy services fib daddr type local ip6 daddr != ::1 meta l4proto \. th dport vmap @service-nodeports\n/)
  t.match(text, /add rule ip6 kube-proxy cluster-ips-check ip6 daddr \{ fd00:10:96::\/112 \} drop/)
  t.match(text, /ip6 daddr fd00:10:96::41 ip6 saddr != fd00:10::\/64 jump mark-for-masquerade\n/)
  t.match(text, /endpoint-[A-Z2-7]{8}-ns1\/svc1\/tcp\/p80__fd00\.10\.\.1\/80 meta l4proto tcp dnat to \[fd00:10::1\]:80\n/)
  t.match(text, /add element ip6 kube-proxy service-ips \{ fd00:10:96::41 \. tcp \. 80 : goto service-/)
  t.equal(p.nftablesRuleset('IPv6'), text)
  t.throws(() => p.nftablesRuleset('IPv4'), RangeError)
})

t.test('dual stack: one table per family, each loadable on its own', async (t) => {
  const p = fakeProxier(overallObjects, { nodeIPs: ['192.168.0.2', '2001:db8::1'] })
  const v4 = p.nftablesRuleset('IPv4')
  const v6 = p.nftablesRuleset('IPv6')
  t.equal(p.nftablesRuleset(), v4 + v6)
  t.equal(sorted(v4), sorted(fixture('base-rules.nft') + fixture('overall.nft')))
  t.match(v6, /^add table ip6 kube-proxy/)
  t.notMatch(v6, /service-ips \{ [0-9.]+ /, 'no IPv4 service in the ip6 table')
})

t.test('the ruleset methods need mode nftables', async (t) => {
  const p = fakeProxier([], { mode: 'iptables', nftables: undefined })
  t.throws(() => p.nftablesRuleset(), { code: 'WRONG_MODE', message: /needs mode 'nftables'/ })
  t.throws(() => p.nftablesTransaction(), { code: 'WRONG_MODE' })
  t.throws(() => fakeProxier([], { nftables: { masqueradeBit: 32 } }), RangeError)
  t.throws(() => fakeProxier([], { nftables: { masqueradeMark: 'x' } as never }), TypeError)
  t.throws(() => fakeProxier([], { nftables: { bogus: 1 } as never }), { code: 'INVALID', message: /nftables: unknown option "bogus"/ })
})
