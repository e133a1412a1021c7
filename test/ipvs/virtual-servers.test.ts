// Virtual servers and ipsets from the model, ported from kube-proxy's pkg/proxy/ipvs
// proxier_test.go (TestNodePortIPv4/IPv6, TestClusterIP*, TestExternalIPs*, TestLoadBalancer*,
// TestOnlyLocal*, TestSessionAffinity, terminating endpoints). Same inputs, same expected IPVS
// state and ipset entries.
import t from 'tap'
import { lbStatus, makeService, makeSlice, port } from '../fixtures/objects.js'
import { ipvsModel, summary, type ModelCase } from './ipvs-model.js'

const np = (p: number, nodePort: number, protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP') => port('p80', p, { nodePort, protocol })

interface Case extends ModelCase {
  name: string
  servers: string[]
  ipsets?: Record<string, string[]>
  bound?: string[]
}

const cases: Case[] = [
  {
    name: 'NodePort with an IPv4 and an IPv6 endpoint: the IPv4 proxier takes the IPv4 one',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001)] }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80 }]),
      makeSlice('ns1', 'svc1', 2, ['1002:ab8::2:10'], [{ name: 'p80', port: 80 }], 'IPv6'),
    ],
    nodeIPs: ['100.101.102.103', '2001:db8::1:1'],
    servers: ['10.20.30.41:80/TCP rr -> 10.180.0.1:80@1', '100.101.102.103:3001/TCP rr -> 10.180.0.1:80@1'],
    ipsets: { 'KUBE-CLUSTER-IP': ['10.20.30.41,tcp:80'], 'KUBE-NODE-PORT-TCP': ['3001'], 'KUBE-IPVS-IPS': ['10.20.30.41'] },
  },
  {
    name: 'the same Service for the IPv6 proxier',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '2020::1', ports: [np(80, 3001)] }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80 }]),
      makeSlice('ns1', 'svc1', 2, ['1002:ab8::2:10'], [{ name: 'p80', port: 80 }], 'IPv6'),
    ],
    nodeIPs: ['100.101.102.103', '2001:db8::1:1'],
    family: 'IPv6',
    servers: ['[2001:db8::1:1]:3001/TCP rr -> [1002:ab8::2:10]:80@1', '[2020::1]:80/TCP rr -> [1002:ab8::2:10]:80@1'],
    ipsets: { 'KUBE-CLUSTER-IP': ['2020::1,tcp:80'], 'KUBE-NODE-PORT-TCP': ['3001'] },
  },
  {
    name: 'UDP NodePort, nodePortAddresses 0.0.0.0/0',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001, 'UDP')] }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80, protocol: 'UDP' }]),
    ],
    nodePortAddresses: ['0.0.0.0/0'],
    servers: ['10.20.30.41:80/UDP rr -> 10.180.0.1:80@1', '100.101.102.103:3001/UDP rr -> 10.180.0.1:80@1'],
    ipsets: { 'KUBE-NODE-PORT-UDP': ['3001'], 'KUBE-NODE-PORT-TCP': [] },
  },
  {
    name: 'NodePort without endpoints: virtual servers without real servers',
    objects: [makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001)] })],
    servers: ['10.20.30.41:80/TCP rr -> ', '100.101.102.103:3001/TCP rr -> '],
  },
  {
    name: 'SCTP NodePort on a node with several IPs: hash:ip,port entries per node IP',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001, 'SCTP')] }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80, protocol: 'SCTP' }]),
    ],
    nodeIPs: ['100.101.102.103', '100.101.102.104', '100.101.102.105', '2001:db8::1:1', '2001:db8::1:2', '2001:db8::1:3'],
    servers: [
      '10.20.30.41:80/SCTP rr -> 10.180.0.1:80@1', '100.101.102.103:3001/SCTP rr -> 10.180.0.1:80@1',
      '100.101.102.104:3001/SCTP rr -> 10.180.0.1:80@1', '100.101.102.105:3001/SCTP rr -> 10.180.0.1:80@1',
    ],
    ipsets: { 'KUBE-NODE-PORT-SCTP-HASH': ['100.101.102.103,sctp:3001', '100.101.102.104,sctp:3001', '100.101.102.105,sctp:3001'] },
  },
  {
    name: 'SCTP NodePort with externalTrafficPolicy Local: the NodePort keeps the local endpoint only',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001, 'SCTP')], externalTrafficPolicy: 'Local' }),
      makeSlice('ns1', 'svc1', 1, [{ ip: '10.180.0.1', node: 'test-node' }, { ip: '10.180.1.1', node: 'other-node' }], [{ name: 'p80', port: 80, protocol: 'SCTP' }]),
    ],
    servers: ['10.20.30.41:80/SCTP rr -> 10.180.0.1:80@1,10.180.1.1:80@1', '100.101.102.103:3001/SCTP rr -> 10.180.0.1:80@1'],
    ipsets: {
      'KUBE-NODE-PORT-SCTP-HASH': ['100.101.102.103,sctp:3001'], 'KUBE-NODE-PORT-LOCAL-SCTP-HASH': ['100.101.102.103,sctp:3001'],
      'KUBE-LOOP-BACK': ['10.180.0.1,sctp:80,10.180.0.1'],
    },
  },
  {
    name: 'nodePortAddresses selects the node IPs that get NodePort virtual servers',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001)] }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80 }]),
    ],
    nodeIPs: ['100.101.102.103', '192.168.0.2'],
    nodePortAddresses: ['192.168.0.0/24', '2001:db8::/64'],
    servers: ['10.20.30.41:80/TCP rr -> 10.180.0.1:80@1', '192.168.0.2:3001/TCP rr -> 10.180.0.1:80@1'],
  },
  {
    name: 'ClientIP affinity: persistent virtual servers with the affinity timeout',
    objects: [
      makeService('ns1', 'svc1', {
        type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(80, 3001)], externalIPs: ['50.60.70.81'],
        sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80 }]),
    ],
    servers: [
      '10.20.30.41:80/TCP rr flags=0x1 timeout=10800 -> 10.180.0.1:80@1',
      '100.101.102.103:3001/TCP rr flags=0x1 timeout=10800 -> 10.180.0.1:80@1',
      '50.60.70.81:80/TCP rr flags=0x1 timeout=10800 -> 10.180.0.1:80@1',
    ],
    bound: ['10.20.30.41', '50.60.70.81'],
  },
  {
    name: 'scheduler mh sets the source-hash flag',
    objects: [makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)] })],
    scheduler: 'mh',
    servers: ['10.20.30.41:80/TCP mh flags=0x10 -> '],
  },
  {
    name: 'external IPs: Cluster policy in KUBE-EXTERNAL-IP; a node address is not bound on kube-ipvs0',
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)], externalIPs: ['50.60.70.81', '100.101.102.103'] }),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1', '10.180.1.1'], [{ name: 'p80', port: 80 }]),
    ],
    servers: [
      '10.20.30.41:80/TCP rr -> 10.180.0.1:80@1,10.180.1.1:80@1',
      '100.101.102.103:80/TCP rr -> 10.180.0.1:80@1,10.180.1.1:80@1',
      '50.60.70.81:80/TCP rr -> 10.180.0.1:80@1,10.180.1.1:80@1',
    ],
    ipsets: { 'KUBE-EXTERNAL-IP': ['100.101.102.103,tcp:80', '50.60.70.81,tcp:80'], 'KUBE-EXTERNAL-IP-LOCAL': [] },
    bound: ['10.20.30.41', '50.60.70.81'],
  },
  {
    name: 'external IPs with Local policy: local endpoints on the external IP, all on the cluster IP',
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)], externalIPs: ['50.60.70.81'], externalTrafficPolicy: 'Local' }),
      makeSlice('ns1', 'svc1', 1, [{ ip: '10.180.0.1', node: 'test-node' }, { ip: '10.180.1.1', node: 'other-node' }], [{ name: 'p80', port: 80 }]),
    ],
    servers: ['10.20.30.41:80/TCP rr -> 10.180.0.1:80@1,10.180.1.1:80@1', '50.60.70.81:80/TCP rr -> 10.180.0.1:80@1'],
    ipsets: { 'KUBE-EXTERNAL-IP-LOCAL': ['50.60.70.81,tcp:80'], 'KUBE-EXTERNAL-IP': [], 'KUBE-LOOP-BACK': ['10.180.0.1,tcp:80,10.180.0.1'] },
  },
  {
    name: 'LoadBalancer with Local policy and no local endpoint: IPVS falls back to cluster endpoints (kubernetes#97081)',
    objects: [
      makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: [np(80, 3001)], externalTrafficPolicy: 'Local', healthCheckNodePort: 30000 }, lbStatus('1.2.3.4')),
      makeSlice('ns1', 'svc1', 1, [{ ip: '10.180.1.1', node: 'other-node' }], [{ name: 'p80', port: 80 }]),
    ],
    servers: [
      '1.2.3.4:80/TCP rr -> 10.180.1.1:80@1', '10.20.30.41:80/TCP rr -> 10.180.1.1:80@1', '100.101.102.103:3001/TCP rr -> 10.180.1.1:80@1',
    ],
    ipsets: {
      'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'], 'KUBE-LOAD-BALANCER-LOCAL': ['1.2.3.4,tcp:80'],
      'KUBE-NODE-PORT-TCP': ['3001'], 'KUBE-NODE-PORT-LOCAL-TCP': ['3001'], 'KUBE-HEALTH-CHECK-NODE-PORT': ['30000'],
    },
    bound: ['1.2.3.4', '10.20.30.41'],
  },
  {
    name: 'LoadBalancer source ranges: FW set, source CIDRs, and the VIP as source when a range covers the node',
    objects: [
      makeService('ns1', 'svc1', {
        type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: [np(80, 3001)], loadBalancerSourceRanges: ['100.101.102.0/24', '1.2.3.0/28'],
      }, lbStatus('1.2.3.4')),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], [{ name: 'p80', port: 80 }]),
    ],
    servers: ['1.2.3.4:80/TCP rr -> 10.180.0.1:80@1', '10.20.30.41:80/TCP rr -> 10.180.0.1:80@1', '100.101.102.103:3001/TCP rr -> 10.180.0.1:80@1'],
    ipsets: {
      'KUBE-LOAD-BALANCER-FW': ['1.2.3.4,tcp:80'],
      'KUBE-LOAD-BALANCER-SOURCE-CIDR': ['1.2.3.4,tcp:80,1.2.3.0/28', '1.2.3.4,tcp:80,100.101.102.0/24'],
      'KUBE-LOAD-BALANCER-SOURCE-IP': ['1.2.3.4,tcp:80,1.2.3.4'],
    },
  },
  {
    name: 'only terminating endpoints: the serving ones are the fallback; a not-serving one is left out',
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)] }),
      makeSlice('ns1', 'svc1', 1, [
        { ip: '10.0.1.1', ready: false, serving: true, terminating: true },
        { ip: '10.0.1.2', ready: false, serving: false, terminating: true },
      ], [{ name: 'p80', port: 80 }]),
    ],
    servers: ['10.20.30.41:80/TCP rr -> 10.0.1.1:80@1'],
  },
  {
    name: 'ready endpoints win over terminating ones',
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)] }),
      makeSlice('ns1', 'svc1', 1, ['10.0.1.1', { ip: '10.0.1.2', ready: false, serving: true, terminating: true }], [{ name: 'p80', port: 80 }]),
    ],
    servers: ['10.20.30.41:80/TCP rr -> 10.0.1.1:80@1'],
  },
  {
    name: 'internalTrafficPolicy Local without local endpoints: no real servers',
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)], internalTrafficPolicy: 'Local' }),
      makeSlice('ns1', 'svc1', 1, [{ ip: '10.180.1.1', node: 'other-node' }], [{ name: 'p80', port: 80 }]),
    ],
    servers: ['10.20.30.41:80/TCP rr -> '],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const { ipvs, ipsets } = ipvsModel(c)
    t.same(summary(ipvs.servers.values()), [...c.servers].sort(), 'virtual servers and real servers')
    for (const [name, entries] of Object.entries(c.ipsets ?? {})) t.same(ipsets.entries.get(name), entries, name)
    if (c.bound) t.same([...ipvs.bound].sort(), c.bound, 'kube-ipvs0 addresses')
  })
}
