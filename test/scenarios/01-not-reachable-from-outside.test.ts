// Scenario 1: a Service is not reachable from outside the cluster. Four causes, each found by
// `svcplane doctor` from probe packets: type ClusterIP; a LoadBalancer without an IP and
// without NodePorts; externalTrafficPolicy Local on a node without endpoints; a client outside
// loadBalancerSourceRanges. A healthy Service next to them reports nothing.
import t from 'tap'
import { diagnose } from '../../lib/doctor/index.js'
import { list, node, NODES, objectsOf, service, slice, svcplane, writeDump, MODES, serviceFindings } from './cluster.js'

const CLIENT = '198.51.100.7'

const web = [
  { ip: '10.244.0.21', node: 'node-a', pod: 'web-7c9d8f6b5-2xkqp' },
  { ip: '10.244.0.22', node: 'node-a', pod: 'web-7c9d8f6b5-9wz7m' },
]

export const dump = list(
  ...NODES.map(node),
  // Healthy: nothing to say.
  service('shop', 'cart', '10.96.14.20', [{ name: 'http', port: 80, targetPort: 8080 }]),
  slice('shop', 'cart', 'x7k2p', [
    { ip: '10.244.1.30', node: 'node-b', pod: 'cart-5d4f7-abcde' },
    { ip: '10.244.2.31', node: 'node-c', pod: 'cart-5d4f7-fghij' },
  ], [{ name: 'http', port: 8080 }]),
  // ClusterIP: the user expects to reach it from outside.
  service('shop', 'catalog', '10.96.14.30', [{ name: 'http', port: 80, targetPort: 8080 }]),
  slice('shop', 'catalog', 'q8n4c', [{ ip: '10.244.1.40', node: 'node-b', pod: 'catalog-6b8d9-kq2lx' }], [{ name: 'http', port: 8080 }]),
  // LoadBalancer, nothing provisioned, no NodePorts either.
  service('shop', 'checkout', '10.96.14.40', [{ name: 'https', port: 443, targetPort: 8443 }], { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, externalTrafficPolicy: 'Cluster' }),
  slice('shop', 'checkout', 'p2m9v', [{ ip: '10.244.2.50', node: 'node-c', pod: 'checkout-7f6c5-zt8rw' }], [{ name: 'https', port: 8443 }]),
  // externalTrafficPolicy Local, both pods on node-a.
  service('shop', 'web', '10.96.14.10', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 31080 }], {
    type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32001,
  }, { loadBalancer: { ingress: [{ ip: '34.120.5.10', ipMode: 'VIP' }] } }),
  slice('shop', 'web', 'h5t8s', web, [{ name: 'http', port: 8080 }]),
  // loadBalancerSourceRanges: only the office network.
  service('shop', 'admin', '10.96.14.50', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 31500 }], {
    type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', loadBalancerSourceRanges: ['203.0.113.0/24'],
  }, { loadBalancer: { ingress: [{ ip: '34.120.5.20', ipMode: 'VIP' }] } }),
  slice('shop', 'admin', 'r4d6w', [{ ip: '10.244.1.60', node: 'node-b', pod: 'admin-84c7d-m2x9q' }], [{ name: 'http', port: 8080 }]),
)

// Each outcome in the native model (iptables mode decides alike) and in kube-proxy's ipvs mode;
// the ipvs node-wide findings (the deprecation, kube-ipvs0) are left out of these comparisons.

for (const m of MODES) t.test(`${m.name}: a full scan: only what is broken on every node is reported`, async (t) => {
  const r = serviceFindings(diagnose(objectsOf(dump), m.mode))
  t.same(r.nodes, ['node-a', 'node-b', 'node-c'])
  t.equal(r.services, 5)
  t.same(r.findings.map((f) => [f.code, f.servicePort]), [['no-node-port', 'shop/checkout:https']],
    'the LoadBalancer with externalTrafficPolicy Local is steered by its health check; the ClusterIP Service is internal by design')
  const f = r.findings[0]
  t.equal(f.severity, 'error')
  t.same(f.nodes, [])
  t.match(f.why, /status\.loadBalancer\.ingress has no IP/)
  t.match(f.why, /allocateLoadBalancerNodePorts: false/)
})

for (const m of MODES) t.test(`${m.name}: type ClusterIP, asked about from outside`, async (t) => {
  const r = serviceFindings(diagnose(objectsOf(dump), { services: ['shop/catalog'], client: CLIENT, ...m.mode }))
  t.equal(r.findings.length, 1)
  const f = r.findings[0]
  t.match(f, { code: 'not-exposed', severity: 'error', servicePort: 'shop/catalog:http' })
  t.match(f.what, /type ClusterIP, no NodePort, no external or load-balancer IP/)
  t.match(f.probe!.result, { action: 'accept' }, 'nothing answers on the node address at port 80')
  t.equal(f.probe!.packet.src, CLIENT)
})

t.test('externalTrafficPolicy Local: dropped on the nodes without an endpoint', async (t) => {
  const r = diagnose(objectsOf(dump), { services: ['shop/web'], client: CLIENT })
  const f = r.findings.find((x) => x.code === 'no-local-endpoints-external')!
  t.ok(f)
  t.same(f.nodes, ['node-b', 'node-c'])
  t.match(f.why, /runs none of the 2 ready endpoint\(s\) \(they run on node-a\)/)
  t.match(f.why, /healthCheckNodePort 32001\) answers 503/)
  t.match(f.probe!.result, { action: 'drop', reason: 'no-local-endpoints', servicePort: 'shop/web:http' })
  t.equal(f.probe!.packet.dport, 31080)
  // From node-a the same client is served by a local pod, source kept.
  const a = diagnose(objectsOf(dump), { nodeName: 'node-a', services: ['shop/web'], client: CLIENT })
  t.notOk(a.findings.some((x) => x.code === 'no-local-endpoints-external'))
  const b = diagnose(objectsOf(dump), { nodeName: 'node-b' })
  t.ok(b.findings.some((x) => x.code === 'no-local-endpoints-external' && x.servicePort === 'shop/web:http'), 'asked about node-b, it is reported')
})

t.test('ipvs: externalTrafficPolicy Local forwards to the remote endpoints instead (kubernetes#97081)', async (t) => {
  const r = diagnose(objectsOf(dump), { services: ['shop/web'], client: CLIENT, mode: 'ipvs' })
  t.notOk(r.findings.some((x) => x.code === 'no-local-endpoints-external'), 'not dropped in ipvs mode')
  const f = r.findings.find((x) => x.code === 'ipvs-local-policy-fallback')!
  t.ok(f)
  t.same(f.nodes, ['node-b', 'node-c'])
  t.match(f.probe!.result, { action: 'dnat', servicePort: 'shop/web:http' })
  t.equal(f.probe!.packet.dport, 31080)
})

for (const m of MODES) t.test(`${m.name}: client outside loadBalancerSourceRanges`, async (t) => {
  const r = serviceFindings(diagnose(objectsOf(dump), { services: ['shop/admin'], client: CLIENT, ...m.mode }))
  t.same(r.findings.map((f) => f.code), ['source-range'])
  const f = r.findings[0]
  t.match(f.what, /connections from 198\.51\.100\.7 to the load-balancer IP 34\.120\.5\.20 are dropped/)
  t.match(f.fix, /add 198\.51\.100\.7\/32/)
  t.match(f.probe!.result, { action: 'drop', reason: 'source-range' })
  const inside = serviceFindings(diagnose(objectsOf(dump), { services: ['shop/admin'], client: '203.0.113.44', ...m.mode }))
  t.same(inside.findings, [], 'a client inside the ranges gets through')
})

t.test('svcplane doctor: text and JSON', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const scan = await svcplane('doctor', '--cluster', file)
  t.equal(scan.code, 0, scan.err)
  t.match(scan.out, /^Checked 5 service\(s\), 5 service port\(s\) from 3 nodes \(node-a, node-b, node-c\)\.\n/)
  t.match(scan.out, /\nshop\/checkout:https \(TCP\)\n  ERROR no-node-port \(every node\)\n    what:  not reachable from outside: no load-balancer IP and no NodePort\n/)
  t.match(scan.out, /\n1 finding\(s\): 1 error\(s\), 0 warning\(s\)\.\n$/)
  t.notMatch(scan.out, /shop\/cart/, 'the healthy Service prints nothing')

  const failing = await svcplane('doctor', '--cluster', file, '--fail-on-findings')
  t.equal(failing.code, 3)

  const web = await svcplane('doctor', '--cluster', file, '--service', 'shop/web,shop/admin,shop/catalog', '--client', CLIENT)
  t.equal(web.code, 0, web.err)
  t.match(web.out, /\nshop\/web:http \(TCP\)\n  ERROR no-local-endpoints-external \(node-b, node-c\)\n    what:  external connections arriving at this node are dropped \(NodePort 31080\)\n/)
  t.match(web.out, /    probe: TCP 198\.51\.100\.7:\d+ -> 192\.168\.10\.12:31080 on node-b: DROP \(no-local-endpoints\)\n/)
  t.match(web.out, /\nshop\/admin:http \(TCP\)\n  ERROR source-range/)
  t.match(web.out, /\nshop\/catalog:http \(TCP\)\n  ERROR not-exposed/)

  const json = await svcplane('doctor', '--cluster', file, '--service', 'shop/admin', '--client', CLIENT, '--json')
  const j = JSON.parse(json.out)
  t.match(j.findings[0], { code: 'source-range', servicePort: 'shop/admin:http', probe: { result: { action: 'drop', reason: 'source-range' } } })

  const healthy = await svcplane('doctor', '--cluster', file, '--service', 'shop/cart')
  t.equal(healthy.out, 'Checked 1 service(s), 1 service port(s) from 3 nodes (node-a, node-b, node-c).\nNo findings.\n')

  const bad = await svcplane('doctor', '--cluster', file, '--service', 'shop/nope')
  t.equal(bad.code, 2)
  t.match(bad.err, /Service shop\/nope is not in the dump/)
})
