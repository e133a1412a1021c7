// The iptables rules of IPVS mode, ported from kube-proxy's ipvs proxier_test.go checkIptables
// expectations (jump target and matched set per chain, in order), and the full restore text of
// writeIptablesRules for one Service.
import t from 'tap'
import { renderIpvsIptables, type IpvsIptablesOptions } from '../../lib/ipvs/iptables-rules.js'
import { lbStatus, makeService, makeSlice, port } from '../fixtures/objects.js'
import { ipvsModel, type ModelCase } from './ipvs-model.js'

const options: IpvsIptablesOptions = { masqueradeMark: '0x00004000', masqueradeAll: false, podCIDR: undefined, randomFully: true }

/** Chain -> "JUMP set" per rule, tables merged (as kube-proxy's fake iptables keys them). */
function chains(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const line of text.split('\n')) {
    const m = /^-A (\S+) (.*)$/.exec(line)
    if (m === null) continue
    const jump = / -j (\S+)/.exec(` ${m[2]}`)![1]
    const set = /--match-set (\S+)/.exec(m[2]!)?.[1]
    const src = /^-s (\S+)/.exec(m[2]!)?.[1]
    ;(out[m[1]!] ??= []).push([jump, set ?? src ?? ''].join(' ').trim())
  }
  return out
}

interface Case extends ModelCase {
  name: string
  chains: Record<string, string[]>
}

const np = (nodePort: number, protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP') => port('p80', 80, { nodePort, protocol })
const ep = (protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP') => [{ name: 'p80', port: 80, protocol }]
const local = [{ ip: '10.180.0.1', node: 'test-node' }, { ip: '10.180.1.1', node: 'other-node' }]

const cases: Case[] = [
  {
    name: 'TestNodePortIPv4: UDP NodePort',
    objects: [makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(3001, 'UDP')] }), makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], ep('UDP'))],
    chains: {
      'KUBE-NODE-PORT': ['KUBE-MARK-MASQ KUBE-NODE-PORT-UDP', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'],
      'KUBE-SERVICES': ['RETURN 127.0.0.0/8', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP'],
    },
  },
  {
    name: 'TestNodePortIPv4: SCTP NodePort with Local policy',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(3001, 'SCTP')], externalTrafficPolicy: 'Local' }),
      makeSlice('ns1', 'svc1', 1, local, ep('SCTP')),
    ],
    chains: { 'KUBE-NODE-PORT': ['RETURN KUBE-NODE-PORT-LOCAL-SCTP-HASH', 'KUBE-MARK-MASQ KUBE-NODE-PORT-SCTP-HASH', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'] },
  },
  {
    name: 'TestOnlyLocalNodePorts',
    objects: [
      makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '10.20.30.41', ports: [np(3001)], externalTrafficPolicy: 'Local' }),
      makeSlice('ns1', 'svc1', 1, local, ep()),
    ],
    nodePortAddresses: ['100.101.102.0/24'],
    chains: {
      'KUBE-SERVICES': ['RETURN 127.0.0.0/8', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP'],
      'KUBE-NODE-PORT': ['RETURN KUBE-NODE-PORT-LOCAL-TCP', 'KUBE-MARK-MASQ KUBE-NODE-PORT-TCP', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'],
    },
  },
  {
    name: 'TestLoadBalancerSourceRanges',
    objects: [
      makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: [port('p80', 80, { nodePort: 3001 })], loadBalancerSourceRanges: ['10.0.0.0/8'] }, lbStatus('1.2.3.4')),
      makeSlice('ns1', 'svc1', 1, ['10.180.0.1'], ep()),
    ],
    chains: {
      'KUBE-SERVICES': ['RETURN 127.0.0.0/8', 'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP', 'ACCEPT KUBE-LOAD-BALANCER'],
      'KUBE-PROXY-FIREWALL': ['KUBE-SOURCE-RANGES-FIREWALL KUBE-LOAD-BALANCER-FW'],
      'KUBE-SOURCE-RANGES-FIREWALL': ['RETURN KUBE-LOAD-BALANCER-SOURCE-CIDR', 'DROP'],
      // The node IP is outside 10.0.0.0/8: the node's own connections to the VIP are dropped.
      'KUBE-IPVS-OUT-FILTER': ['DROP 1.2.3.4'],
    },
  },
  {
    name: 'TestAcceptIPVSTraffic',
    objects: [
      makeService('ns1', 'svc1', { clusterIP: '10.20.30.40', ports: [port('p80', 80)], externalIPs: ['5.6.7.8'] }),
      makeService('ns1', 'svc2', { type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: [np(80)] }, lbStatus('1.2.3.4')),
      makeService('ns1', 'svc3', { type: 'NodePort', clusterIP: '10.20.30.42', ports: [np(81)] }),
    ],
    chains: {
      'KUBE-SERVICES': [
        'RETURN 127.0.0.0/8', 'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-MARK-MASQ KUBE-EXTERNAL-IP',
        'ACCEPT KUBE-EXTERNAL-IP', 'ACCEPT KUBE-EXTERNAL-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP', 'ACCEPT KUBE-LOAD-BALANCER',
      ],
    },
  },
  {
    name: 'TestOnlyLocalLoadBalancing',
    objects: [
      makeService('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: [np(3001)], externalTrafficPolicy: 'Local' }, lbStatus('1.2.3.4')),
      makeSlice('ns1', 'svc1', 1, local, ep()),
    ],
    chains: {
      'KUBE-SERVICES': ['RETURN 127.0.0.0/8', 'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP', 'ACCEPT KUBE-LOAD-BALANCER'],
      'KUBE-LOAD-BALANCER': ['RETURN KUBE-LOAD-BALANCER-LOCAL', 'KUBE-MARK-MASQ'],
    },
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const { ipsets } = ipvsModel(c)
    const got = chains(renderIpvsIptables(ipsets, options))
    for (const [chain, rules] of Object.entries(c.chains)) t.same(got[chain], rules, chain)
  })
}

t.test('the whole restore text for a ClusterIP Service, as writeIptablesRules writes it', async (t) => {
  const { ipsets } = ipvsModel({
    objects: [makeService('ns1', 'svc1', { clusterIP: '10.20.30.41', ports: [port('p80', 80)] }), makeSlice('ns1', 'svc1', 1, [{ ip: '10.180.0.1', node: 'test-node' }], ep())],
  })
  t.equal(renderIpvsIptables(ipsets, { ...options, podCIDR: '10.0.0.0/8' }), [
    '*nat',
    ':KUBE-SERVICES - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-NODE-PORT - [0:0]', ':KUBE-LOAD-BALANCER - [0:0]', ':KUBE-MARK-MASQ - [0:0]',
    '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN',
    '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE',
    '-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
    '-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ',
    '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000',
    'COMMIT',
    '*filter',
    ':KUBE-FORWARD - [0:0]', ':KUBE-NODE-PORT - [0:0]', ':KUBE-PROXY-FIREWALL - [0:0]', ':KUBE-SOURCE-RANGES-FIREWALL - [0:0]', ':KUBE-IPVS-FILTER - [0:0]', ':KUBE-IPVS-OUT-FILTER - [0:0]',
    '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN',
    '-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT',
    'COMMIT',
    '',
  ].join('\n'))
})

t.test('masqueradeAll, IPv6 set names and loopback', async (t) => {
  const { ipsets } = ipvsModel({
    objects: [makeService('ns1', 'svc1', { clusterIP: '2020::1', ports: [port('p80', 80)] })],
    nodeIPs: ['2001:db8::1:1'],
    family: 'IPv6',
  })
  const text = renderIpvsIptables(ipsets, { ...options, masqueradeAll: true, randomFully: false })
  t.match(text, '-A KUBE-SERVICES -s ::1/128 -j RETURN')
  t.match(text, '--match-set KUBE-6-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ\n')
  t.match(text, '--match-set KUBE-6-IPVS-IPS dst -j REJECT')
  t.match(text, '-j MASQUERADE\n')
})
