// Scenario 7: IPVS-style inspection of a Service that does not route. `svcplane dump --format
// ipvsadm` shows each virtual server with its scheduler and persistence, and its real servers,
// or none; the doctor names the cause. Run through the CLI in-process, as a user would.
import t from 'tap'
import { list, node, NODES, service, slice, svcplane, writeDump } from './cluster.js'

export const dump = list(
  ...NODES.map(node),
  // Every pod fails its readiness probe: no real servers.
  service('shop', 'orders', '10.96.50.10', [{ name: 'http', port: 80, targetPort: 8080 }]),
  slice('shop', 'orders', 'n1m2b', [
    { ip: '10.244.0.101', node: 'node-a', pod: 'orders-5b6c7-aa1bb', ready: false, serving: false },
    { ip: '10.244.2.101', node: 'node-c', pod: 'orders-5b6c7-cc2dd', ready: false, serving: false },
  ], [{ name: 'http', port: 8080 }]),
  // ClientIP affinity: persistence; one pod terminating (weight 0, its connections drain).
  service('shop', 'session', '10.96.50.20', [{ name: 'http', port: 80, targetPort: 8080 }], {
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1800 } },
  }),
  slice('shop', 'session', 'v5c4x', [
    { ip: '10.244.0.111', node: 'node-a', pod: 'session-6c5d4-ee3ff' },
    { ip: '10.244.1.111', node: 'node-b', pod: 'session-6c5d4-gg4hh' },
    { ip: '10.244.2.111', node: 'node-c', pod: 'session-6c5d4-ii5jj', terminating: true, ready: false, serving: true },
  ], [{ name: 'http', port: 8080 }]),
  // NodePort with externalTrafficPolicy Local, its pod on node-a only.
  service('shop', 'pos', '10.96.50.30', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }], { type: 'NodePort', externalTrafficPolicy: 'Local' }),
  slice('shop', 'pos', 'z9y8x', [{ ip: '10.244.0.121', node: 'node-a', pod: 'pos-7d9f-kk6ll' }], [{ name: 'http', port: 8080 }]),
)

const NODE_B = ['--node-name', 'node-b', '--node-ip', '192.168.10.12', '--pod-cidr', '10.244.1.0/24', '--seed', '1']

t.test('svcplane dump --format ipvsadm', async (t) => {
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

t.test('the doctor names the causes the listing shows', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('doctor', '--cluster', file, '--node-name', 'node-b')
  t.equal(r.code, 0, r.err)
  t.match(r.out, /\nshop\/orders:http \(TCP\)\n  ERROR no-endpoints\n    what:  every connection is rejected \(ICMP port unreachable \/ connection refused\): no endpoints\n/)
  t.match(r.out, /    why:   2 endpoint\(s\) listed, none ready and none serving while terminating: 10\.244\.0\.101:8080\n +\(not ready on node-a\)/)
  t.match(r.out, /    probe: TCP 10\.244\.1\.200:\d+ -> 10\.96\.50\.10:80 on node-b: REJECT \(no-endpoints\)\n/)
  t.match(r.out, /\nshop\/pos:http \(TCP\)\n  ERROR no-local-endpoints-external \(node-b\)\n/)
})
