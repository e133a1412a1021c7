// Scenario 7 on a node that runs kube-proxy's IPVS mode: `svcplane dump --mode ipvs --format
// ipvsadm` prints what `ipvsadm -Ln` would show there. Unlike the native listing, kube-proxy
// programs only the endpoints it sends traffic to: a Service whose pods are all unready has a
// virtual server and no real server, an endpoint that starts terminating while connected stays
// at weight 0 until its connections end, and a Local NodePort without a local pod falls back
// to the remote one (kubernetes#97081).
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import { list, node, NODES, service, slice, svcplane, writeDump } from '../scenarios/cluster.js'

const session = (terminating: boolean) => slice('shop', 'session', 'v5c4x', [
  { ip: '10.244.0.111', node: 'node-a', pod: 'session-6c5d4-ee3ff' },
  { ip: '10.244.1.111', node: 'node-b', pod: 'session-6c5d4-gg4hh' },
  terminating
    ? { ip: '10.244.2.111', node: 'node-c', pod: 'session-6c5d4-ii5jj', terminating: true, ready: false, serving: true }
    : { ip: '10.244.2.111', node: 'node-c', pod: 'session-6c5d4-ii5jj' },
], [{ name: 'http', port: 8080 }])

const objects = (terminating: boolean) => [
  service('shop', 'orders', '10.96.50.10', [{ name: 'http', port: 80, targetPort: 8080 }]),
  slice('shop', 'orders', 'n1m2b', [
    { ip: '10.244.0.101', node: 'node-a', pod: 'orders-5b6c7-aa1bb', ready: false, serving: false },
    { ip: '10.244.2.101', node: 'node-c', pod: 'orders-5b6c7-cc2dd', ready: false, serving: false },
  ], [{ name: 'http', port: 8080 }]),
  service('shop', 'session', '10.96.50.20', [{ name: 'http', port: 80, targetPort: 8080 }], {
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1800 } },
  }),
  session(terminating),
  service('shop', 'pos', '10.96.50.30', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }], { type: 'NodePort', externalTrafficPolicy: 'Local' }),
  slice('shop', 'pos', 'z9y8x', [{ ip: '10.244.0.121', node: 'node-a', pod: 'pos-7d9f-kk6ll' }], [{ name: 'http', port: 8080 }]),
]

const dump = list(...NODES.map(node), ...objects(true))

const NODE_B = ['--node-name', 'node-b', '--node-ip', '192.168.10.12', '--pod-cidr', '10.244.1.0/24', '--seed', '1', '--mode', 'ipvs']

t.test('svcplane dump --mode ipvs --format ipvsadm: ipvsadm -Ln on node-b', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('dump', '--cluster', file, ...NODE_B, '--format', 'ipvsadm')
  t.equal(r.code, 0, r.err)
  t.equal(r.out, [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  10.96.50.10:80 rr',
    'TCP  10.96.50.20:80 rr persistent 1800',
    '  -> 10.244.0.111:8080            Masq    1      0          0         ',
    '  -> 10.244.1.111:8080            Masq    1      0          0         ',
    'TCP  10.96.50.30:80 rr',
    '  -> 10.244.0.121:8080            Masq    1      0          0         ',
    'TCP  192.168.10.12:30081 rr',
    '  -> 10.244.0.121:8080            Masq    1      0          0         ',
    '',
  ].join('\n'))
})

t.test('an endpoint that starts terminating under a live connection drains at weight 0', async (t) => {
  const p = new Proxier({ mode: 'ipvs', nodeName: 'node-b', nodeIPs: ['192.168.10.12'], podCIDRs: ['10.244.1.0/24'], seed: 1 })
  p.applyList(objects(false))
  p.sync()
  // Three clients, scheduled rr; the third lands on 10.244.2.111 and stays connected.
  for (const [i, src] of ['10.244.1.7', '10.244.1.8', '10.244.1.9'].entries()) {
    p.route({ src, sport: 40000, dst: '10.96.50.20', dport: 80, protocol: 'TCP', tcpFlags: 0x02, now: 1 + i })
    p.route({ src, sport: 40000, dst: '10.96.50.20', dport: 80, protocol: 'TCP', tcpFlags: 0x10, now: 1.5 + i })
  }
  p.applyEndpointSlice(session(true))
  p.sync()
  const lines = p.ipvs!.ipvsadm().split('\n')
  const at = lines.indexOf('TCP  10.96.50.20:80 rr persistent 1800')
  t.same(lines.slice(at + 1, at + 4).map((l) => l.replace(/\s+/g, ' ').trim()), [
    '-> 10.244.0.111:8080 Masq 1 1 0',
    '-> 10.244.1.111:8080 Masq 1 1 0',
    '-> 10.244.2.111:8080 Masq 0 1 0',
  ])
  // The persistent client of the draining pod is scheduled anew (expire_quiescent_template).
  t.not((p.route({ src: '10.244.1.9', sport: 40001, dst: '10.96.50.20', dport: 80, protocol: 'TCP', tcpFlags: 0x02, now: 5 }) as { endpoint: string }).endpoint, '10.244.2.111:8080')
  p.route({ src: '10.244.1.9', sport: 40000, dst: '10.96.50.20', dport: 80, protocol: 'TCP', tcpFlags: 0x04, now: 6 })
  // Time passes (a packet at t=20 on another connection): the closed connection's 10 s are over.
  p.route({ src: '10.244.1.7', sport: 40000, dst: '10.96.50.20', dport: 80, protocol: 'TCP', tcpFlags: 0x10, now: 20 })
  p.sync()
  t.notMatch(p.ipvs!.ipvsadm(), /10\.244\.2\.111/, 'gone once its last connection closed')
})
