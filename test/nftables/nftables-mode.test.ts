// The Proxier in mode 'nftables' deciding packets by walking the table it programmed:
// kube-proxy's nftables packet-flow tests (runPacketFlowTests cases of TestClusterIPGeneral,
// TestNoEndpointsReject, TestLoadBalancer) and flows on TestOverallNFTablesRules' objects,
// with the nftables-only verdicts (reject on an unserved ClusterIP port, drop on an
// unallocated ClusterIP, no localhost NodePorts); conntrack in front; affinity sets on
// virtual time; explain().
import t, { type Test } from 'tap'
import type { Proxier, ProxierOptions } from '../../lib/modes/index.js'
import {
  lbStatus, makeService, makeSlice, port, testExternalClient, type KubeProxyFlow, clusterIPGeneralObjects, testExternalClientBlocked, testExternalIP, testNodeIP, testNodeIPAlt,
} from '../fixtures/objects'
import { fakeProxier, overallObjects, p80 } from './fake-proxier'

// kube-proxy's packet-flow tests treat every address of the fake node as local.
const flowNode: Partial<ProxierOptions> = { nodeIPs: [testNodeIP, testNodeIPAlt, testExternalIP] }
const nodeAddresses = new Set([testNodeIP, testNodeIPAlt, testExternalIP])

interface Flow extends KubeProxyFlow {
  reason?: string
}

function runFlows(t: Test, p: Proxier, flows: Flow[]): void {
  for (const f of flows) {
    const seen = new Set<string>()
    const hook = nodeAddresses.has(f.src) ? 'output' : 'prerouting'
    for (let sport = 30000; sport < 30024; sport++) {
      const r = p.route({ src: f.src, sport, dst: f.dst, dport: f.dport, protocol: f.protocol ?? 'TCP', hook, now: 1 })
      if (f.output === '') {
        t.same(r, { action: 'accept' }, f.name)
        break
      }
      if (f.output === 'REJECT' || f.output === 'DROP') {
        t.equal(r.action, f.output.toLowerCase(), f.name)
        if (f.reason !== undefined && r.action !== 'dnat' && r.action !== 'accept') t.equal(r.reason, f.reason, `${f.name}: reason`)
        break
      }
      if (r.action !== 'dnat') {
        t.fail(`${f.name}: expected dnat, got ${JSON.stringify(r)}`)
        break
      }
      seen.add(r.endpoint)
      if (r.masquerade !== (f.masq ?? false)) {
        t.fail(`${f.name}: masquerade ${r.masquerade}, kube-proxy says ${f.masq ?? false}`)
        break
      }
    }
    if (!['', 'REJECT', 'DROP'].includes(f.output)) t.same([...seen].sort(), f.output.split(', ').sort(), `${f.name}: ${f.output}`)
    // The general nft evaluator, loaded from the same table, decides alike.
    const e = p.nftables!.evaluator().evaluate({ src: f.src, sport: 1, dst: f.dst, dport: f.dport, protocol: (f.protocol ?? 'TCP').toLowerCase(), hook, now: 1 })
    const want = f.output === '' ? 'accept' : f.output === 'REJECT' ? 'reject' : f.output === 'DROP' ? 'drop' : 'dnat'
    t.equal(e.action, want, `${f.name}: the nft evaluator agrees`)
    if (want === 'dnat') {
      t.ok(f.output.split(', ').includes(e.endpoint!), `${f.name}: the nft evaluator picks ${e.endpoint}`)
      t.equal(e.masquerade, f.masq ?? false, `${f.name}: the nft evaluator's masquerade`)
    }
  }
}

t.test('TestClusterIPGeneral', async (t) => {
  const p = fakeProxier(clusterIPGeneralObjects, flowNode)
  runFlows(t, p, [
    { name: 'simple clusterIP', src: '10.180.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80' },
    { name: 'hairpin to cluster IP', src: '10.180.0.1', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80', masq: true },
    { name: 'clusterIP with multiple endpoints', src: '10.180.0.2', dst: '172.30.0.42', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'clusterIP with TargetPort', src: '10.180.0.2', dst: '172.30.0.42', dport: 443, output: '10.180.0.1:8443, 10.180.2.1:8443' },
    { name: 'TCP on a shared port', src: '10.180.0.2', dst: '172.30.0.42', dport: 53, output: '10.180.0.1:5353, 10.180.2.1:5353' },
    { name: 'UDP on a shared port', src: '10.180.0.2', protocol: 'UDP', dst: '172.30.0.42', dport: 53, output: '10.180.0.1:53, 10.180.2.1:53' },
    { name: 'SCTP on a shared port', src: '10.180.0.2', protocol: 'SCTP', dst: '172.30.0.42', dport: 53, output: '10.180.0.1:53, 10.180.2.1:53' },
    { name: 'TCP-only port does not match UDP traffic', src: '10.180.0.2', protocol: 'UDP', dst: '172.30.0.42', dport: 80, output: 'REJECT', reason: 'invalid-port' },
    { name: "svc1 does not accept svc2's ports", src: '10.180.0.2', dst: '172.30.0.41', dport: 443, output: 'REJECT', reason: 'invalid-port' },
    { name: 'packet to unallocated cluster ip', src: '10.180.0.2', dst: '172.30.0.50', dport: 80, output: 'DROP', reason: 'unallocated-cluster-ip' },
    { name: 'outside the service CIDRs: not service traffic', src: '10.180.0.2', dst: '10.180.0.9', dport: 80, output: '' },
  ])
})

t.test('TestNoEndpointsReject', async (t) => {
  const p = fakeProxier([
    makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [port('p80', 80, { nodePort: 3001 })] }, lbStatus('1.2.3.4')),
  ], flowNode)
  const reject = (name: string, src: string, dst: string, dport: number): Flow => ({ name, src, dst, dport, output: 'REJECT', reason: 'no-endpoints' })
  runFlows(t, p, [
    reject('pod to cluster IP with no endpoints', '10.0.0.2', '172.30.0.41', 80),
    reject('external to external IP with no endpoints', testExternalClient, '192.168.99.11', 80),
    reject('pod to NodePort with no endpoints', '10.0.0.2', testNodeIP, 3001),
    reject('external to NodePort with no endpoints', testExternalClient, testNodeIP, 3001),
    reject('pod to LoadBalancer IP with no endpoints', '10.0.0.2', '1.2.3.4', 80),
    reject('external to LoadBalancer IP with no endpoints', testExternalClient, '1.2.3.4', 80),
  ])
  const r = p.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.41', dport: 80, protocol: 'TCP' })
  t.same(r, { action: 'reject', servicePort: 'ns1/svc1:p80', reason: 'no-endpoints' }, 'the element comment names the service port')
})

t.test('TestLoadBalancer', async (t) => {
  const p = fakeProxier([
    makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [port('p80', 80, { nodePort: 3001 })], loadBalancerSourceRanges: ['192.168.0.0/24', ' 203.0.113.0/25'] }, lbStatus('1.2.3.4', '5.6.7.8')),
    makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], p80),
  ], flowNode)
  runFlows(t, p, [
    { name: 'pod to cluster IP', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80' },
    { name: 'external to nodePort', src: testExternalClient, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80', masq: true },
    { name: 'nodePort bypasses LoadBalancerSourceRanges', src: testExternalClientBlocked, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80', masq: true },
    { name: 'accepted external to LB1', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80', masq: true },
    { name: 'accepted external to LB2', src: testExternalClient, dst: '5.6.7.8', dport: 80, output: '10.180.0.1:80', masq: true },
    { name: 'blocked external to LB', src: testExternalClientBlocked, dst: '1.2.3.4', dport: 80, output: 'DROP', reason: 'source-range' },
    { name: 'pod to LB (outside the ranges)', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: 'DROP', reason: 'source-range' },
    { name: 'node to LB (the node is in a range)', src: testNodeIP, dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80', masq: true },
    { name: 'NodePort on the alternate node IP: not in --nodeport-addresses', src: testExternalClient, dst: testNodeIPAlt, dport: 3001, output: '' },
  ])
})

t.test("TestOverallNFTablesRules' objects", async (t) => {
  const p = fakeProxier(overallObjects, flowNode)
  runFlows(t, p, [
    { name: 'pod to svc1', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80' },
    { name: 'external to ClusterIP: masqueraded', src: testExternalClient, dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80', masq: true },
    { name: 'external to svc2 LB, eTP:Local without local endpoints', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: 'DROP', reason: 'no-local-endpoints' },
    { name: 'pod to svc2 LB: short-circuit to the cluster endpoints', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: '10.180.0.2:80' },
    { name: 'node to svc2 NodePort: masqueraded, cluster endpoints', src: testNodeIP, dst: testNodeIP, dport: 3001, output: '10.180.0.2:80', masq: true },
    { name: 'external to svc2 NodePort', src: testExternalClient, dst: testNodeIP, dport: 3001, output: 'DROP', reason: 'no-local-endpoints' },
    { name: 'external to svc3 NodePort', src: testExternalClient, dst: testNodeIP, dport: 3003, output: '10.180.0.3:80', masq: true },
    { name: 'no localhost NodePorts', src: '127.0.0.1', dst: '127.0.0.1', dport: 3003, output: '' },
    { name: 'svc4 external IP', src: testExternalClient, dst: '192.168.99.33', dport: 80, output: '10.180.0.4:80, 10.180.0.5:80', masq: true },
    { name: 'svc5 LB from an allowed source', src: testExternalClient, dst: '5.6.7.8', dport: 80, output: '10.180.0.3:80', masq: true },
    { name: 'svc5 LB from a blocked source', src: testExternalClientBlocked, dst: '5.6.7.8', dport: 80, output: 'DROP', reason: 'source-range' },
    { name: 'svc6 has no endpoints', src: '10.0.0.2', dst: '172.30.0.46', dport: 80, output: 'REJECT', reason: 'no-endpoints' },
  ])
})

t.test('conntrack in front: an established flow keeps its endpoint; the table is walked once', async (t) => {
  const p = fakeProxier([
    makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [port('p80', 80)] }),
    makeSlice('ns1', 'svc1', 1, ['10.180.0.1', '10.180.0.2', '10.180.0.3'], p80),
  ])
  const pkt = { src: '10.0.0.2', sport: 40000, dst: '172.30.0.41', dport: 80, protocol: 'TCP' as const, now: 1 }
  const first = p.route({ ...pkt, tcpFlags: 0x02 })
  t.equal(first.action, 'dnat')
  const again = p.explain({ ...pkt, tcpFlags: 0x10 })
  t.same(again.result, first)
  t.match(again.steps.map((s) => s.text).join('\n'), /established flow: keeps/)
  t.equal(p.nftables!.flows().length, 1)
  const fresh = p.explain({ ...pkt, sport: 40001 })
  t.match(fresh.steps.map((s) => s.text).join('\n'), /the ruleset chose 10\.180\.0\.\d:80 \(filter-prerouting-pre-dnat -> nat-prerouting -> services -> service-ULMVA6XW-ns1\/svc1\/tcp\/p80 -> endpoint-/)
})

t.test('session affinity: the endpoint sets remember a client for timeoutSeconds of virtual time', async (t) => {
  const p = fakeProxier([
    makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [port('p80', 80)], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
    makeSlice('ns1', 'svc1', 1, ['10.180.0.1', '10.180.0.2', '10.180.0.3', '10.180.0.4'], p80),
  ])
  const at = (src: string, sport: number, now: number) => {
    const r = p.route({ src, sport, dst: '172.30.0.41', dport: 80, protocol: 'TCP', now })
    return r.action === 'dnat' ? r.endpoint : r.action
  }
  const first = at('10.0.0.2', 1000, 100)
  for (let i = 1; i < 20; i++) t.equal(at('10.0.0.2', 1000 + i, 100 + i), first, `new connection ${i} sticks`)
  // Each new connection refreshes the entry; after 60 s of silence it is gone.
  const later = new Set<string>()
  for (let c = 0; c < 40; c++) later.add(at(`10.0.1.${c}`, 2000, 500))
  t.ok(later.size > 1, 'other clients spread')
  const after = new Set<string>()
  for (let i = 0; i < 40; i++) after.add(at('10.0.0.2', 3000 + i, 200 + 61 * (i + 1)))
  t.ok(after.size > 1, 'after the timeout a client is placed anew')
})

t.test('route needs a sync; dual stack routes each family through its table', async (t) => {
  const p = fakeProxier([], { nodeIPs: ['192.168.0.2', '2001:db8::1'], podCIDRs: ['10.0.0.0/8', 'fd00:10::/64'], serviceCIDRs: ['172.30.0.0/16', 'fd00:10:96::/112'] })
  p.applyList([
    makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', clusterIPs: ['172.30.0.41', 'fd00:10:96::41'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack', ports: [port('p80', 80)] }),
    makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], p80),
    makeSlice('ns1', 'svc1', 2, ['fd00:10::1'], p80, 'IPv6'),
  ])
  t.same(p.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.41', dport: 80, protocol: 'TCP' }), { action: 'drop', servicePort: '', reason: 'unallocated-cluster-ip' }, 'before the sync the cluster IP is not allocated in the table')
  p.sync()
  t.same(p.route({ src: '10.0.0.2', sport: 2, dst: '172.30.0.41', dport: 80, protocol: 'TCP' }), { action: 'dnat', servicePort: 'ns1/svc1:p80', endpoint: '10.180.0.1:80', address: '10.180.0.1', port: 80, masquerade: false })
  t.same(p.route({ src: 'fd00:10::2', sport: 2, dst: 'fd00:10:96::41', dport: 80, protocol: 'TCP' }), { action: 'dnat', servicePort: 'ns1/svc1:p80', endpoint: '[fd00:10::1]:80', address: 'fd00:10::1', port: 80, masquerade: false })
  t.same(p.route({ src: 'fd00:10::2', sport: 3, dst: 'fd00:10:96::99', dport: 80, protocol: 'TCP' }), { action: 'drop', servicePort: '', reason: 'unallocated-cluster-ip' })
})
