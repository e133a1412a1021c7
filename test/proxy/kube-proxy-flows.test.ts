// Packet-flow expectations from kube-proxy v1.31's iptables proxier tests (TestOverallIPTablesRules /
// TestTracePacket, TestNoEndpointsReject, TestClusterIPGeneral, TestLoadBalancer, TestNodePorts,
// TestExternalTrafficPolicyLocal/Cluster, TestInternalTrafficPolicy,
// TestTerminatingEndpointsTrafficPolicyLocal/Cluster, TestInternalExternalMasquerade), encoded as
// data. `output` is kube-proxy's tracer output: the endpoints a new connection can reach, or
// REJECT / DROP, or "" when the packet is not service traffic.
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import { checkPacket } from '../../lib/proxy/packet.js'
import { classifySource, traceKubeProxy } from '../../lib/proxy/trace.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import {
  lbStatus, makeService, makeSlice, port, testExternalClient, type KubeProxyFlow, clusterIPGeneralObjects, testExternalClientBlocked, testExternalIP,
  testNodeIP, testNodeIPAlt, testNodeIPv6, testNodeName, type EP,
} from '../fixtures/objects'

type Flow = KubeProxyFlow

interface Case {
  name: string
  options?: Partial<ProxierOptions>
  objects: unknown[]
  flows: Flow[]
}

const baseOptions: ProxierOptions = {
  mode: 'native',
  nodeName: testNodeName,
  nodeIPs: [testNodeIP, testNodeIPAlt, testExternalIP],
  podCIDRs: ['10.0.0.0/8'],
  seed: 7,
}

const ep = (ip: string, node?: string, cond: Partial<EP> = {}): EP => ({ ip, node, ...cond })

const overallServices = [
  makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [port('p80', 80)] }),
  makeService('ns2', 'svc2', {
    type: 'LoadBalancer', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.42',
    ports: [port('p80', 80, { nodePort: 3001 })], externalIPs: ['192.168.99.22'], healthCheckNodePort: 30000,
  }, lbStatus('1.2.3.4')),
  makeService('ns3', 'svc3', { type: 'NodePort', clusterIP: '172.30.0.43', ports: [port('p80', 80, { nodePort: 3003 })] }),
  makeService('ns4', 'svc4', { type: 'NodePort', clusterIP: '172.30.0.44', externalIPs: ['192.168.99.33'], ports: [port('p80', 80)] }),
  makeService('ns5', 'svc5', {
    type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', clusterIP: '172.30.0.45',
    ports: [port('p80', 80, { nodePort: 3002 })], healthCheckNodePort: 30000,
    loadBalancerSourceRanges: [' 203.0.113.0/25'],
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
  }, lbStatus('5.6.7.8')),
  makeService('ns6', 'svc6', { clusterIP: '172.30.0.46', ports: [port('p80', 80)] }),
]
const p80 = [{ name: 'p80', port: 80 }]
const overallSlices = [
  makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], p80),
  makeSlice('ns2', 'svc2', 1, ['10.180.0.2'], p80),
  makeSlice('ns3', 'svc3', 1, ['10.180.0.3'], p80),
  makeSlice('ns4', 'svc4', 1, [ep('10.180.0.4'), ep('10.180.0.5', testNodeName)], p80),
  makeSlice('ns5', 'svc5', 1, ['10.180.0.3'], p80),
]

function lbService(extra: Record<string, unknown>, status = lbStatus('1.2.3.4')) {
  return makeService('ns1', 'svc1', {
    type: 'LoadBalancer', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'],
    ports: [port('p80', 80, { nodePort: 3001 })], healthCheckNodePort: 30000, ...extra,
  }, status)
}

function terminatingCase(policy: 'Local' | 'Cluster', name: string, eps: EP[], flows: Flow[]): Case {
  return {
    name: `TestTerminatingEndpointsTrafficPolicy${policy}: ${name}`,
    objects: [
      makeService('ns1', 'svc1', { type: 'LoadBalancer', externalTrafficPolicy: policy, clusterIP: '172.30.1.1', ports: [port('', 80)], healthCheckNodePort: 30000 }, lbStatus('1.2.3.4')),
      makeSlice('ns1', 'svc1', 1, eps, [{ name: '', port: 80 }]),
    ],
    flows,
  }
}
const T = (ready: boolean, serving: boolean, terminating: boolean) => ({ ready, serving, terminating })

const masqServices = [
  makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [port('p80', 80, { nodePort: 3001 })], healthCheckNodePort: 30001 }, lbStatus('1.2.3.4')),
  makeService('ns2', 'svc2', { type: 'LoadBalancer', clusterIP: '172.30.0.42', ports: [port('p80', 80, { nodePort: 3002 })], healthCheckNodePort: 30002, externalTrafficPolicy: 'Local' }, lbStatus('5.6.7.8')),
  makeService('ns3', 'svc3', { type: 'LoadBalancer', clusterIP: '172.30.0.43', ports: [port('p80', 80, { nodePort: 3003 })], healthCheckNodePort: 30003, internalTrafficPolicy: 'Local' }, lbStatus('9.10.11.12')),
  makeSlice('ns1', 'svc1', 1, [ep('10.180.0.1', testNodeName), ep('10.180.1.1', 'remote')], p80),
  makeSlice('ns2', 'svc2', 1, [ep('10.180.0.2', testNodeName), ep('10.180.1.2', 'remote')], p80),
  makeSlice('ns3', 'svc3', 1, [ep('10.180.0.3', testNodeName), ep('10.180.1.3', 'remote')], p80),
]
const s1 = '10.180.0.1:80, 10.180.1.1:80'
const s2 = '10.180.0.2:80, 10.180.1.2:80'
const s3 = '10.180.0.3:80, 10.180.1.3:80'
const masqFlows: Flow[] = [
  { name: 'pod to ClusterIP', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: s1, masq: false },
  { name: 'pod to NodePort', src: '10.0.0.2', dst: testNodeIP, dport: 3001, output: s1, masq: true },
  { name: 'pod to LB', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: s1, masq: true },
  { name: 'node to ClusterIP', src: testNodeIP, dst: '172.30.0.41', dport: 80, output: s1, masq: true },
  { name: 'node to NodePort', src: testNodeIP, dst: testNodeIP, dport: 3001, output: s1, masq: true },
  { name: 'localhost to NodePort', src: '127.0.0.1', dst: '127.0.0.1', dport: 3001, output: s1, masq: true },
  { name: 'node to LB', src: testNodeIP, dst: '1.2.3.4', dport: 80, output: s1, masq: true },
  { name: 'external to ClusterIP', src: testExternalClient, dst: '172.30.0.41', dport: 80, output: s1, masq: true },
  { name: 'external to NodePort', src: testExternalClient, dst: testNodeIP, dport: 3001, output: s1, masq: true },
  { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: s1, masq: true },
  { name: 'pod to ClusterIP with eTP:Local', src: '10.0.0.2', dst: '172.30.0.42', dport: 80, output: s2, masq: false },
  { name: 'pod to NodePort with eTP:Local', src: '10.0.0.2', dst: testNodeIP, dport: 3002, output: s2, masq: false },
  { name: 'pod to LB with eTP:Local', src: '10.0.0.2', dst: '5.6.7.8', dport: 80, output: s2, masq: false },
  { name: 'node to ClusterIP with eTP:Local', src: testNodeIP, dst: '172.30.0.42', dport: 80, output: s2, masq: true },
  { name: 'node to NodePort with eTP:Local', src: testNodeIP, dst: testNodeIP, dport: 3001, output: s1, masq: true },
  { name: 'localhost to NodePort with eTP:Local', src: '127.0.0.1', dst: '127.0.0.1', dport: 3002, output: s2, masq: true },
  { name: 'node to LB with eTP:Local', src: testNodeIP, dst: '5.6.7.8', dport: 80, output: s2, masq: true },
  { name: 'external to ClusterIP with eTP:Local', src: testExternalClient, dst: '172.30.0.42', dport: 80, output: s2, masq: true },
  { name: 'external to NodePort with eTP:Local', src: testExternalClient, dst: testNodeIP, dport: 3002, output: '10.180.0.2:80', masq: false },
  { name: 'external to LB with eTP:Local', src: testExternalClient, dst: '5.6.7.8', dport: 80, output: '10.180.0.2:80', masq: false },
  { name: 'pod to ClusterIP with iTP:Local', src: '10.0.0.2', dst: '172.30.0.43', dport: 80, output: '10.180.0.3:80', masq: false },
  { name: 'pod to NodePort with iTP:Local', src: '10.0.0.2', dst: testNodeIP, dport: 3003, output: s3, masq: true },
  { name: 'pod to LB with iTP:Local', src: '10.0.0.2', dst: '9.10.11.12', dport: 80, output: s3, masq: true },
  { name: 'node to ClusterIP with iTP:Local', src: testNodeIP, dst: '172.30.0.43', dport: 80, output: '10.180.0.3:80', masq: true },
  { name: 'node to NodePort with iTP:Local', src: testNodeIP, dst: testNodeIP, dport: 3003, output: s3, masq: true },
  { name: 'localhost to NodePort with iTP:Local', src: '127.0.0.1', dst: '127.0.0.1', dport: 3003, output: s3, masq: true },
  { name: 'node to LB with iTP:Local', src: testNodeIP, dst: '9.10.11.12', dport: 80, output: s3, masq: true },
  { name: 'external to ClusterIP with iTP:Local', src: testExternalClient, dst: '172.30.0.43', dport: 80, output: '10.180.0.3:80', masq: true },
  { name: 'external to NodePort with iTP:Local', src: testExternalClient, dst: testNodeIP, dport: 3003, output: s3, masq: true },
  { name: 'external to LB with iTP:Local', src: testExternalClient, dst: '9.10.11.12', dport: 80, output: s3, masq: true },
]
function override(flows: Flow[], o: Record<string, Partial<Flow>>): Flow[] {
  return flows.map((f) => (o[f.name] ? { ...f, ...o[f.name] } : f))
}

const cases: Case[] = [
  {
    name: 'TestOverallIPTablesRules / TestTracePacket',
    objects: [...overallServices, ...overallSlices],
    flows: [
      { name: 'no match', src: '10.0.0.2', dst: '10.0.0.3', dport: 80, output: '' },
      { name: 'single endpoint', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80' },
      { name: 'multiple endpoints', src: '10.0.0.2', dst: '172.30.0.44', dport: 80, output: '10.180.0.4:80, 10.180.0.5:80' },
      { name: 'LOCAL, KUBE-MARK-MASQ', src: testNodeIP, dst: '192.168.99.22', dport: 80, output: '10.180.0.2:80', masq: true },
      { name: 'DROP', src: testExternalClient, dst: '192.168.99.22', dport: 80, output: 'DROP' },
      { name: 'ACCEPT (NodePortHealthCheck)', src: testNodeIP, dst: testNodeIP, dport: 30000, output: '' },
      { name: 'REJECT', src: '10.0.0.2', dst: '172.30.0.46', dport: 80, output: 'REJECT' },
      { name: 'svc2 LB IP from outside, no local endpoints', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: 'DROP' },
      { name: 'svc2 LB IP from a pod: short-circuit', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: '10.180.0.2:80' },
      { name: 'svc2 NodePort from outside', src: testExternalClient, dst: testNodeIP, dport: 3001, output: 'DROP' },
      { name: 'svc3 NodePort from outside', src: testExternalClient, dst: testNodeIP, dport: 3003, output: '10.180.0.3:80', masq: true },
      { name: 'svc3 localhost NodePort', src: '127.0.0.1', dst: '127.0.0.1', dport: 3003, output: '10.180.0.3:80', masq: true },
      { name: 'svc4 external IP from a pod', src: '10.0.0.2', dst: '192.168.99.33', dport: 80, output: '10.180.0.4:80, 10.180.0.5:80', masq: true },
      { name: 'svc5 LB IP from an allowed client', src: testExternalClient, dst: '5.6.7.8', dport: 80, output: '10.180.0.3:80', masq: true },
      { name: 'svc5 LB IP from a blocked client', src: testExternalClientBlocked, dst: '5.6.7.8', dport: 80, output: 'DROP' },
      { name: 'svc5 NodePort bypasses source ranges', src: testExternalClientBlocked, dst: testNodeIP, dport: 3002, output: '10.180.0.3:80', masq: true },
      { name: 'svc5 cluster IP from outside the pod CIDR', src: testExternalClientBlocked, dst: '172.30.0.45', dport: 80, output: '10.180.0.3:80', masq: true },
    ],
  },
  {
    name: 'TestNoEndpointsReject',
    objects: [makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [port('p80', 80, { nodePort: 3001 })] }, lbStatus('1.2.3.4'))],
    flows: [
      { name: 'pod to cluster IP with no endpoints', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: 'REJECT' },
      { name: 'external to external IP with no endpoints', src: testExternalClient, dst: '192.168.99.11', dport: 80, output: 'REJECT' },
      { name: 'pod to NodePort with no endpoints', src: '10.0.0.2', dst: testNodeIP, dport: 3001, output: 'REJECT' },
      { name: 'external to NodePort with no endpoints', src: testExternalClient, dst: testNodeIP, dport: 3001, output: 'REJECT' },
      { name: 'pod to LoadBalancer IP with no endpoints', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: 'REJECT' },
      { name: 'external to LoadBalancer IP with no endpoints', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: 'REJECT' },
    ],
  },
  {
    name: 'TestClusterIPGeneral',
    objects: clusterIPGeneralObjects,
    flows: [
      { name: 'simple clusterIP', src: '10.180.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80', masq: false },
      { name: 'hairpin to cluster IP', src: '10.180.0.1', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80', masq: true },
      { name: 'clusterIP with multiple endpoints', src: '10.180.0.2', dst: '172.30.0.42', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'clusterIP with TargetPort', src: '10.180.0.2', dst: '172.30.0.42', dport: 443, output: '10.180.0.1:8443, 10.180.2.1:8443' },
      { name: 'same port (TCP)', src: '10.180.0.2', dst: '172.30.0.42', dport: 53, protocol: 'TCP', output: '10.180.0.1:5353, 10.180.2.1:5353' },
      { name: 'same port (UDP)', src: '10.180.0.2', dst: '172.30.0.42', dport: 53, protocol: 'UDP', output: '10.180.0.1:53, 10.180.2.1:53' },
      { name: 'same port (SCTP)', src: '10.180.0.2', dst: '172.30.0.42', dport: 53, protocol: 'SCTP', output: '10.180.0.1:53, 10.180.2.1:53' },
      { name: 'TCP-only port does not match UDP traffic', src: '10.180.0.2', dst: '172.30.0.42', dport: 80, protocol: 'UDP', output: '' },
      { name: "svc1 does not accept svc2's ports", src: '10.180.0.2', dst: '172.30.0.41', dport: 443, output: '' },
    ],
  },
  {
    name: 'TestLoadBalancer',
    objects: [
      makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: [port('p80', 80, { nodePort: 3001 })], loadBalancerSourceRanges: ['192.168.0.0/24', ' 203.0.113.0/25'] }, lbStatus('1.2.3.4', '5.6.7.8')),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], p80),
    ],
    flows: [
      { name: 'pod to cluster IP', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80', masq: false },
      { name: 'external to nodePort', src: testExternalClient, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80', masq: true },
      { name: 'nodePort bypasses LoadBalancerSourceRanges', src: testExternalClientBlocked, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80', masq: true },
      { name: 'accepted external to LB1', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80', masq: true },
      { name: 'accepted external to LB2', src: testExternalClient, dst: '5.6.7.8', dport: 80, output: '10.180.0.1:80', masq: true },
      { name: 'blocked external to LB1', src: testExternalClientBlocked, dst: '1.2.3.4', dport: 80, output: 'DROP' },
      { name: 'blocked external to LB2', src: testExternalClientBlocked, dst: '5.6.7.8', dport: 80, output: 'DROP' },
      { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: 'DROP' },
      { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', src: '10.0.0.2', dst: '5.6.7.8', dport: 80, output: 'DROP' },
      { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', src: testNodeIP, dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80', masq: true },
      { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', src: testNodeIP, dst: '5.6.7.8', dport: 80, output: '10.180.0.1:80', masq: true },
      { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', src: '1.2.3.4', dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80', masq: true },
      { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', src: '5.6.7.8', dst: '5.6.7.8', dport: 80, output: '10.180.0.1:80', masq: true },
    ],
  },
  ...([true, false] as const).map((localhostNodePorts): Case => ({
    name: `TestNodePorts ipv4, localhost-nodeports ${localhostNodePorts ? 'enabled' : 'disabled'}`,
    options: { iptables: { localhostNodePorts } },
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '172.30.0.41', ports: [port('p80', 80, { nodePort: 3001 })] }),
      makeSlice('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', testNodeName)], p80),
    ],
    flows: [
      { name: 'pod to cluster IP', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'external to nodePort', src: testExternalClient, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'node to nodePort', src: testNodeIP, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to nodePort on secondary IP', src: testExternalClient, dst: testNodeIPAlt, dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      localhostNodePorts
        ? { name: 'localhost to nodePort gets masqueraded', src: '127.0.0.1', dst: '127.0.0.1', dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true }
        : { name: 'localhost to nodePort is ignored', src: '127.0.0.1', dst: '127.0.0.1', dport: 3001, output: '' },
    ],
  })),
  {
    name: 'TestNodePorts ipv6',
    options: { nodeIPs: [testNodeIPv6, '2001:db8:1::2'], podCIDRs: ['fd00:10::/64'] },
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: 'fd00:172:30::41', ipFamilies: ['IPv6'], ports: [port('p80', 80, { nodePort: 3001 })] }),
      makeSlice('ns1', 'svc1', 1, [ep('fd00:10:180::1'), ep('fd00:10:180::2:1', testNodeName)], p80, 'IPv6'),
    ],
    flows: [
      { name: 'pod to cluster IP', src: 'fd00:10::2', dst: 'fd00:172:30::41', dport: 80, output: '[fd00:10:180::1]:80, [fd00:10:180::2:1]:80', masq: false },
      { name: 'external to nodePort', src: '2600:5200::1', dst: testNodeIPv6, dport: 3001, output: '[fd00:10:180::1]:80, [fd00:10:180::2:1]:80', masq: true },
      { name: 'node to nodePort', src: testNodeIPv6, dst: testNodeIPv6, dport: 3001, output: '[fd00:10:180::1]:80, [fd00:10:180::2:1]:80', masq: true },
      { name: 'external to nodePort on secondary IP', src: '2600:5200::1', dst: '2001:db8:1::2', dport: 3001, output: '[fd00:10:180::1]:80, [fd00:10:180::2:1]:80', masq: true },
      { name: 'localhost to nodePort is ignored', src: '::1', dst: '::1', dport: 3001, output: '' },
    ],
  },
  {
    name: 'TestExternalTrafficPolicyLocal',
    objects: [lbService({ externalTrafficPolicy: 'Local' }), makeSlice('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', testNodeName)], p80)],
    flows: [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'pod to external IP hits both endpoints, unmasqueraded', src: '10.0.0.2', dst: '192.168.99.11', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'external to external IP hits only local endpoint, unmasqueraded', src: testExternalClient, dst: '192.168.99.11', dport: 80, output: '10.180.2.1:80', masq: false },
      { name: 'pod to LB IP hits only both endpoints, unmasqueraded', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'external to LB IP hits only local endpoint, unmasqueraded', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.180.2.1:80', masq: false },
      { name: 'pod to NodePort hits both endpoints, unmasqueraded', src: '10.0.0.2', dst: testNodeIP, dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'external to NodePort hits only local endpoint, unmasqueraded', src: testExternalClient, dst: testNodeIP, dport: 3001, output: '10.180.2.1:80', masq: false },
    ],
  },
  {
    name: 'TestExternalTrafficPolicyCluster',
    objects: [lbService({ externalTrafficPolicy: 'Cluster' }), makeSlice('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', testNodeName)], p80)],
    flows: [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', src: '10.0.0.2', dst: '172.30.0.41', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: false },
      { name: 'pod to external IP hits both endpoints, masqueraded', src: '10.0.0.2', dst: '192.168.99.11', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to external IP hits both endpoints, masqueraded', src: testExternalClient, dst: '192.168.99.11', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'pod to LB IP hits both endpoints, masqueraded', src: '10.0.0.2', dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to LB IP hits both endpoints, masqueraded', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'pod to NodePort hits both endpoints, masqueraded', src: '10.0.0.2', dst: testNodeIP, dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to NodePort hits both endpoints, masqueraded', src: testExternalClient, dst: testNodeIP, dport: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    ],
  },
  ...([
    ['internalTrafficPolicy is cluster', 'Cluster', [testNodeName, 'node1', 'node2'], '10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80'],
    ['internalTrafficPolicy is local and there is one local endpoint', 'Local', [testNodeName, 'node1', 'node2'], '10.0.1.1:80'],
    ['internalTrafficPolicy is local and there are multiple local endpoints', 'Local', [testNodeName, testNodeName, 'node2'], '10.0.1.1:80, 10.0.1.2:80'],
    ['internalTrafficPolicy is local and there are no local endpoints', 'Local', ['node0', 'node1', 'node2'], 'DROP'],
  ] as const).map(([name, itp, nodes, output]): Case => ({
    name: `TestInternalTrafficPolicy: ${name}`,
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '172.30.1.1', internalTrafficPolicy: itp, ports: [port('', 80)] }),
      makeSlice('ns1', 'svc1', 1, nodes.map((n, i) => ep(`10.0.1.${i + 1}`, n, { ready: true })), [{ name: '', port: 80 }]),
    ],
    flows: [{ name: 'pod to ClusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output, masq: false }],
  })),
  terminatingCase('Local', 'ready endpoints exist', [
    ep('10.0.1.1', testNodeName, T(true, true, false)), ep('10.0.1.2', testNodeName, T(true, true, false)),
    ep('10.0.1.3', testNodeName, T(false, true, true)), ep('10.0.1.4', testNodeName, T(false, false, true)), ep('10.0.1.5', 'node-1', T(true, true, false)),
  ], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', masq: false },
    { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.0.1.1:80, 10.0.1.2:80', masq: false },
  ]),
  terminatingCase('Local', 'only terminating endpoints exist', [
    ep('10.0.1.2', testNodeName, T(false, true, true)), ep('10.0.1.3', testNodeName, T(false, true, true)),
    ep('10.0.1.4', testNodeName, T(false, false, true)), ep('10.0.1.5', 'node-1', T(true, true, false)),
  ], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: '10.0.1.5:80', masq: false },
    { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.0.1.2:80, 10.0.1.3:80', masq: false },
  ]),
  terminatingCase('Local', 'terminating endpoints on remote node', [ep('10.0.1.5', 'node-1', T(false, true, true))], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: '10.0.1.5:80' },
    { name: 'external to LB, no locally-usable endpoints', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: 'DROP' },
  ]),
  terminatingCase('Local', 'no usable endpoints on any node', [ep('10.0.1.5', testNodeName, T(false, false, true)), ep('10.0.1.6', 'node-1', T(false, false, true))], [
    { name: 'pod to clusterIP, no usable endpoints', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: 'REJECT' },
    { name: 'external to LB, no usable endpoints', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: 'REJECT' },
  ]),
  terminatingCase('Cluster', 'ready endpoints exist', [
    ep('10.0.1.1', testNodeName, T(true, true, false)), ep('10.0.1.2', testNodeName, T(true, true, false)),
    ep('10.0.1.3', 'another-node', T(false, true, true)), ep('10.0.1.4', 'another-node', T(false, false, true)), ep('10.0.1.5', 'another-node', T(true, true, false)),
  ], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', masq: false },
    { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', masq: true },
  ]),
  terminatingCase('Cluster', 'only terminating endpoints exist', [
    ep('10.0.1.2', testNodeName, T(false, true, true)), ep('10.0.1.3', testNodeName, T(false, true, true)),
    ep('10.0.1.4', 'another-node', T(false, false, true)), ep('10.0.1.5', 'another-node', T(false, true, true)),
  ], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', masq: false },
    { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', masq: true },
  ]),
  terminatingCase('Cluster', 'terminating endpoints on remote node', [ep('10.0.1.5', 'node-1', T(false, true, true))], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: '10.0.1.5:80', masq: false },
    { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: '10.0.1.5:80', masq: true },
  ]),
  terminatingCase('Cluster', 'no usable endpoints on any node', [ep('10.0.1.5', testNodeName, T(false, false, true)), ep('10.0.1.6', 'node-1', T(false, false, true))], [
    { name: 'pod to clusterIP', src: '10.0.0.2', dst: '172.30.1.1', dport: 80, output: 'REJECT' },
    { name: 'external to LB', src: testExternalClient, dst: '1.2.3.4', dport: 80, output: 'REJECT' },
  ]),
  { name: 'TestInternalExternalMasquerade: base', objects: masqServices, flows: masqFlows },
  {
    name: 'TestInternalExternalMasquerade: no LocalTrafficDetector',
    options: { podCIDRs: [] },
    objects: masqServices,
    flows: override(masqFlows, {
      'node to ClusterIP': { masq: false }, 'node to ClusterIP with eTP:Local': { masq: false }, 'node to ClusterIP with iTP:Local': { masq: false },
      'external to ClusterIP': { masq: false }, 'external to ClusterIP with eTP:Local': { masq: false }, 'external to ClusterIP with iTP:Local': { masq: false },
      'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' }, 'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
    }),
  },
  {
    name: 'TestInternalExternalMasquerade: masqueradeAll',
    options: { masqueradeAll: true },
    objects: masqServices,
    flows: override(masqFlows, {
      'pod to ClusterIP': { masq: true }, 'pod to ClusterIP with eTP:Local': { masq: true }, 'pod to ClusterIP with iTP:Local': { masq: true },
    }),
  },
]

function traceOutput(proxier: Proxier, f: Flow): { output: string; masq: boolean; baseMasq: boolean } {
  const p = checkPacket({ src: f.src, sport: 1, dst: f.dst, dport: f.dport, protocol: f.protocol ?? 'TCP', hook: hookFor(f.src) })
  const tr = traceKubeProxy(proxier.state, p, classifySource(proxier.state, p))
  if (tr.action === 'accept') return { output: '', masq: false, baseMasq: false }
  if (tr.action !== 'dnat') return { output: tr.action.toUpperCase(), masq: false, baseMasq: false }
  // kube-proxy's tracer walks every endpoint chain, so a hairpin on any of them shows as masquerade.
  const hairpin = tr.candidates.some((c) => c.ip === p.src)
  return { output: tr.candidates.map((c) => c.endpoint).join(', '), masq: tr.masquerade || hairpin, baseMasq: tr.masquerade }
}

function hookFor(src: string): 'output' | 'prerouting' {
  return [testNodeIP, testNodeIPAlt, testExternalIP, testNodeIPv6, '2001:db8:1::2', '127.0.0.1', '::1'].includes(src) ? 'output' : 'prerouting'
}

for (const c of cases) {
  t.test(c.name, async (t) => {
    const proxier = new Proxier({ ...baseOptions, ...c.options })
    proxier.applyList(c.objects)
    const summary = proxier.sync()
    t.same(summary.errors, [], 'programs without errors')
    for (const f of c.flows) {
      t.test(f.name, async (t) => {
        const traced = traceOutput(proxier, f)
        t.equal(traced.output, f.output, 'model trace gives kube-proxy output')
        t.equal(traced.masq, f.masq ?? false, 'model trace gives kube-proxy masquerade')
        // The native dataplane: every new connection lands on one of kube-proxy's endpoints.
        const seen = new Set<string>()
        for (let sport = 20000; sport < 20040; sport++) {
          const r = proxier.route({ src: f.src, sport, dst: f.dst, dport: f.dport, protocol: f.protocol ?? 'TCP', hook: hookFor(f.src), now: 1 })
          if (f.output === '') t.same(r, { action: 'accept' })
          else if (f.output === 'REJECT' || f.output === 'DROP') t.equal(r.action, f.output.toLowerCase())
          else {
            if (r.action !== 'dnat') {
              t.fail(`expected dnat, got ${JSON.stringify(r)}`)
              break
            }
            seen.add(r.endpoint)
            const hairpin = r.endpoint.startsWith(`${f.src}:`)
            t.equal(r.masquerade, traced.baseMasq || hairpin, 'route masquerade: the rules, plus hairpin')
          }
        }
        if (f.output !== '' && f.output !== 'REJECT' && f.output !== 'DROP') {
          t.same([...seen].sort(), f.output.split(', ').sort(), 'new connections spread over exactly those endpoints')
        }
      })
    }
  })
}
