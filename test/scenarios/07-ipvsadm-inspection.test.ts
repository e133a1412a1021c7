// Scenario 7: IPVS-style inspection of a Service that does not route. `svcplane dump --format
// ipvsadm` shows each virtual server with its scheduler and persistence, and its real servers,
// or none; the doctor names the cause. Run through the CLI in-process, as a user would: in the
// native mode (its maps in ipvsadm's shape) and in ipvs mode, where the listing is what
// `ipvsadm -Ln` prints on a kube-proxy IPVS node. Unlike the native listing, kube-proxy programs
// only the endpoints it sends traffic to: a Service whose pods are all unready has a virtual
// server and no real server, an endpoint that starts terminating while connected stays at
// weight 0 until its connections end, and a Local NodePort without a local pod falls back to
// the remote one (kubernetes#97081).
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import { ipvsFindings } from '../../lib/doctor/ipvs-checks.js'
import { ownedProber } from '../../lib/doctor/probe.js'
import { list, node, NODES, service, slice, svcplane, writeDump } from './cluster.js'

// ClientIP affinity: persistence; one pod terminating (weight 0, its connections drain).
const session = (terminating: boolean) => slice('shop', 'session', 'v5c4x', [
  { ip: '10.244.0.111', node: 'node-a', pod: 'session-6c5d4-ee3ff' },
  { ip: '10.244.1.111', node: 'node-b', pod: 'session-6c5d4-gg4hh' },
  terminating
    ? { ip: '10.244.2.111', node: 'node-c', pod: 'session-6c5d4-ii5jj', terminating: true, ready: false, serving: true }
    : { ip: '10.244.2.111', node: 'node-c', pod: 'session-6c5d4-ii5jj' },
], [{ name: 'http', port: 8080 }])

const objects = (terminating: boolean) => [
  // Every pod fails its readiness probe: no real servers.
  service('shop', 'orders', '10.96.50.10', [{ name: 'http', port: 80, targetPort: 8080 }]),
  slice('shop', 'orders', 'n1m2b', [
    { ip: '10.244.0.101', node: 'node-a', pod: 'orders-5b6c7-aa1bb', ready: false, serving: false },
    { ip: '10.244.2.101', node: 'node-c', pod: 'orders-5b6c7-cc2dd', ready: false, serving: false },
  ], [{ name: 'http', port: 8080 }]),
  service('shop', 'session', '10.96.50.20', [{ name: 'http', port: 80, targetPort: 8080 }], {
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1800 } },
  }),
  session(terminating),
  // NodePort with externalTrafficPolicy Local, its pod on node-a only.
  service('shop', 'pos', '10.96.50.30', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }], { type: 'NodePort', externalTrafficPolicy: 'Local' }),
  slice('shop', 'pos', 'z9y8x', [{ ip: '10.244.0.121', node: 'node-a', pod: 'pos-7d9f-kk6ll' }], [{ name: 'http', port: 8080 }]),
]

export const dump = list(...NODES.map(node), ...objects(true))

const NODE_B = ['--node-name', 'node-b', '--node-ip', '192.168.10.12', '--pod-cidr', '10.244.1.0/24', '--seed', '1']

t.test('svcplane dump --proxy-mode ipvs --format ipvsadm: ipvsadm -Ln on a kube-proxy IPVS node-b', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('dump', '--cluster', file, ...NODE_B, '--proxy-mode', 'ipvs', '--format', 'ipvsadm')
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

/** node-b in ipvs mode, where 10.244.2.111 starts terminating under a live connection. */
function drainingNodeB(): Proxier {
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
  return p
}

t.test('ipvs mode: an endpoint that starts terminating under a live connection drains at weight 0', async (t) => {
  const p = drainingNodeB()
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

t.test('svcplane dump --format ipvsadm (native mode: its maps in ipvsadm\'s shape)', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('dump', '--cluster', file, ...NODE_B, '--format', 'ipvsadm')
  t.equal(r.code, 0, r.err)
  const lines = r.out.split('\n')
  t.equal(lines[0], 'IP Virtual Server version 1.2.1 (size=65536)')
  // No endpoints: the virtual server exists, no real server takes connections.
  const orders = lines.indexOf('TCP  10.96.50.10:80 random')
  t.ok(orders > 0, 'the virtual server of shop/orders')
  // The listed pods are there at weight 0 (none ready): no real server takes a new connection.
  t.same(lines.slice(orders + 1, orders + 3).map((l) => l.replace(/\s+/g, ' ').trim()), [
    '-> 10.244.0.101:8080 Masq 0 0 0',
    '-> 10.244.2.101:8080 Masq 0 0 0',
  ])
  t.notMatch(lines[orders + 3], /^  -> /)
  // Affinity: persistent 1800; the terminating pod has weight 0.
  const session = lines.indexOf('TCP  10.96.50.20:80 random persistent 1800')
  t.ok(session > 0, 'the virtual server of shop/session, persistent')
  t.same(lines.slice(session + 1, session + 4).map((l) => l.replace(/\s+/g, ' ').trim()), [
    '-> 10.244.0.111:8080 Masq 1 0 0',
    '-> 10.244.1.111:8080 Masq 1 0 0',
    '-> 10.244.2.111:8080 Masq 0 0 0',
  ])
  // externalTrafficPolicy Local on node-b: the NodePort's real server is the remote pod at weight 0.
  const np = lines.indexOf('TCP  192.168.10.12:30081 random')
  t.ok(np > 0, 'the NodePort virtual server on node-b')
  t.match(lines[np + 1], /^  -> 10\.244\.0\.121:8080 +Masq +0 +0 +0$/)

  const json = JSON.parse((await svcplane('dump', '--cluster', file, ...NODE_B, '--format', 'ipvsadm', '--json')).out)
  const vs = json.find((v: { address: string; port: number }) => v.address === '10.96.50.10' && v.port === 80)
  t.match(vs, { protocol: 'TCP', scheduler: 'random', persistentTimeout: 0, servicePort: 'shop/orders:http', realServers: [] })
})

// The doctor in each mode: the same cause for shop/orders; for shop/pos the IPVS node forwards
// to the remote pod where the others drop, and the IPVS node gets its mode's own findings.
const doctorModes: { mode: string[]; pos: RegExp; ipvs: boolean }[] = [
  { mode: [], pos: /\nshop\/pos:http \(TCP\)\n  ERROR no-local-endpoints-external \(node-b\)\n/, ipvs: false },
  { mode: ['--proxy-mode', 'ipvs'], pos: /\nshop\/pos:http \(TCP\)\n  WARNING ipvs-local-policy-fallback \(node-b\)\n    what:  external connections arriving at this node are forwarded to an endpoint on another node\n +\(10\.244\.0\.121:8080\)/, ipvs: true },
]

t.test('the doctor names the causes the listing shows', async (t) => {
  const file = writeDump(t.testdir(), dump)
  for (const c of doctorModes) {
    const name = c.mode.join(' ') || 'default mode'
    const r = await svcplane('doctor', '--cluster', file, '--node-name', 'node-b', ...c.mode)
    t.equal(r.code, 0, r.err)
    t.match(r.out, /\nshop\/orders:http \(TCP\)\n  ERROR no-endpoints\n    what:  every connection is rejected \(ICMP port unreachable \/ connection refused\): no endpoints\n/, `${name}: orders`)
    t.match(r.out, /    why:   2 endpoint\(s\) listed, none ready and none serving while terminating: 10\.244\.0\.101:8080\n +\(not ready on node-a\)/, `${name}: why`)
    t.match(r.out, /    probe: TCP 10\.244\.1\.200:\d+ -> 10\.96\.50\.10:80 on node-b: REJECT \(no-endpoints\)\n/, `${name}: probe`)
    t.match(r.out, c.pos, `${name}: pos`)
    if (c.ipvs) t.match(r.out, /\nproxy\n  WARNING ipvs-deprecated \(node-b\)\n/, `${name}: deprecated`)
    else t.notMatch(r.out, /ipvs-/, `${name}: no ipvs findings`)
  }
})

t.test('doctor in ipvs mode: a draining weight-0 real server, with its connections', async (t) => {
  const p = drainingNodeB()
  const found = ipvsFindings('node-b', p, ownedProber(p))
  const reuse = found.find((f) => f.code === 'ipvs-weight-zero-reuse')
  t.match(reuse, { severity: 'warning', servicePort: 'shop/session:http', details: { virtualServer: '10.96.50.20:80/TCP', weightZero: [{ address: '10.244.2.111', port: 8080, weight: 0 }] } })
  t.match(reuse?.what, /10\.244\.2\.111:8080 \(1 active, 0 inactive connection\(s\)\)/)
  t.same(found.map((f) => f.code), ['ipvs-deprecated', 'ipvs-service-ip-any-port', 'ipvs-strict-arp-off', 'ipvs-weight-zero-reuse'])
  const filter = found.find((f) => f.code === 'ipvs-service-ip-any-port')
  t.match(filter?.probe?.result, { action: 'reject', reason: 'invalid-port' }, 'the probe to an unserved port is rejected by KUBE-IPVS-FILTER')
})
