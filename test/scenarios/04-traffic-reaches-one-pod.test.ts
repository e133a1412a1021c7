// Scenario 4: traffic reaches only one pod although several are healthy. ClientIP session
// affinity pinning clients behind one address; only one endpoint ready; topology hints
// sending everything to the local zone; externalTrafficPolicy Local with one local endpoint.
import t from 'tap'
import { diagnose, diagnoseProxier, loadNode } from '../../lib/doctor/index.js'
import { list, node, NODES, objectsOf, service, slice, svcplane, writeDump, MODES, serviceFindings } from './cluster.js'

const INGRESS_POD = '10.244.0.15' // the ingress controller on node-a: every client arrives from it

export const dump = list(
  ...NODES.map(node),
  service('shop', 'session', '10.96.20.10', [{ name: 'http', port: 80, targetPort: 8080 }], {
    sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
  }),
  slice('shop', 'session', 'b7x2m', [
    { ip: '10.244.0.31', node: 'node-a', pod: 'session-69d8c-2kq8w' },
    { ip: '10.244.1.31', node: 'node-b', pod: 'session-69d8c-8fj2n' },
    { ip: '10.244.2.31', node: 'node-c', pod: 'session-69d8c-x4t6r' },
  ], [{ name: 'http', port: 8080 }]),
  service('shop', 'search', '10.96.20.20', [{ name: 'http', port: 80, targetPort: 9200 }]),
  slice('shop', 'search', 'm3c9d', [
    { ip: '10.244.0.41', node: 'node-a', pod: 'search-5c7b9-4hx2k' },
    { ip: '10.244.1.41', node: 'node-b', pod: 'search-5c7b9-p9s3q', ready: false, serving: false },
    { ip: '10.244.2.41', node: 'node-c', pod: 'search-5c7b9-w7e1z', ready: false, serving: false },
  ], [{ name: 'http', port: 9200 }]),
  service('shop', 'recs', '10.96.20.30', [{ name: 'grpc', port: 9090 }], {}),
  slice('shop', 'recs', 'k2v8n', [
    { ip: '10.244.0.51', node: 'node-a', pod: 'recs-7b5d4-a1b2c', zones: ['europe-west4-a'] },
    { ip: '10.244.1.51', node: 'node-b', pod: 'recs-7b5d4-d3e4f', zones: ['europe-west4-b'] },
    { ip: '10.244.1.52', node: 'node-b', pod: 'recs-7b5d4-g5h6i', zones: ['europe-west4-b'] },
  ], [{ name: 'grpc', port: 9090 }]),
  service('shop', 'web', '10.96.20.40', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 31080 }], {
    type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32002,
  }, { loadBalancer: { ingress: [{ ip: '34.120.5.40', ipMode: 'VIP' }] } }),
  slice('shop', 'web', 'f6g7h', [
    { ip: '10.244.0.61', node: 'node-a', pod: 'web-5f9c8-1aa2b' },
    { ip: '10.244.1.61', node: 'node-b', pod: 'web-5f9c8-3cc4d' },
    { ip: '10.244.1.62', node: 'node-b', pod: 'web-5f9c8-5ee6f' },
  ], [{ name: 'http', port: 8080 }]),
)

// Each outcome in the native model (iptables mode decides alike) and in kube-proxy's ipvs mode,
// whose endpoint choice follows the same categorisation; ipvs's node-wide findings left out.

for (const m of MODES) t.test(`${m.name}: the scan: one ready endpoint (everywhere), topology hints (node-a)`, async (t) => {
  const r = serviceFindings(diagnose(objectsOf(dump), m.mode))
  t.same(r.findings.map((f) => [f.code, f.servicePort, f.nodes]), [
    ['topology-single-zone', 'shop/recs:grpc', ['node-a']],
    ['one-ready-endpoint', 'shop/search:http', []],
  ])
  const [topo, one] = r.findings
  t.match(topo.what, /connections from node-a \(zone europe-west4-a\) go only to the 1 endpoint\(s\) hinted for that zone: 10\.244\.0\.51:9090/)
  t.match(topo.why, /the other 2 ready endpoint\(s\) get nothing from this node/)
  t.match(topo.probe!.result, { action: 'dnat', endpoint: '10.244.0.51:9090' })
  t.match(one.what, /all new connections go to 10\.244\.0\.41:9200: it is the only ready endpoint of 3/)
  t.match(one.why, /10\.244\.1\.41:9200 \(not ready on node-b\), 10\.244\.2\.41:9200 \(not ready on node-c\)/)
  t.match(one.probe!.result, { action: 'dnat', endpoint: '10.244.0.41:9200' })
})

for (const m of MODES) t.test(`${m.name}: asked about: session affinity and externalTrafficPolicy Local notes`, async (t) => {
  const r = diagnose(objectsOf(dump), { services: ['shop/session', 'shop/web'], nodeName: 'node-a', ...m.mode })
  const aff = r.findings.find((f) => f.code === 'affinity-pinning')!
  t.match(aff, { severity: 'info', servicePort: 'shop/session:http' })
  t.match(aff.what, /each client address sticks to one endpoint for 10800 s \(sessionAffinity: ClientIP\)/)
  t.match(aff.why, /two connections from 10\.244\.0\.200 both went to 10\.244\.\d\.31:8080/)
  const local = r.findings.find((f) => f.code === 'local-policy-single-endpoint')!
  t.match(local, { severity: 'info', servicePort: 'shop/web:http', nodes: ['node-a'] })
  t.match(local.what, /goes to one pod only: 10\.244\.0\.61:8080/)
  t.match(local.probe!.result, { action: 'dnat', endpoint: '10.244.0.61:8080', masquerade: false })
})

t.test('a running proxy: affinity concentrates the ingress controller\'s connections on one pod', async (t) => {
  const objects = objectsOf(dump)
  const proxier = loadNode(objects.nodes[0], objects, {})
  const seen = new Set<string>()
  for (let i = 0; i < 12; i++) {
    const r = proxier.route({ src: INGRESS_POD, sport: 41000 + i, dst: '10.96.20.10', dport: 80, protocol: 'TCP', now: 100 + i })
    if (r.action === 'dnat') seen.add(r.endpoint)
  }
  t.equal(seen.size, 1, 'every connection of the one client went to one pod')
  const r = diagnoseProxier(proxier, { services: ['shop/session'], now: 120 })
  const f = r.findings.find((x) => x.code === 'affinity-pinning' && x.severity === 'warning')!
  t.ok(f, 'a warning from the live conntrack')
  t.match(f.what, new RegExp(`all 12 tracked connections go to ${[...seen][0].replace(/\./g, '\\.')}, one of 3 ready endpoints`))
  t.match(f.why, /these connections come from 1 client address\(es\) \(10\.244\.0\.15\)/)
  proxier.dataplane?.destroy()
})

t.test('svcplane doctor text', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const r = await svcplane('doctor', '--cluster', file)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /\nshop\/recs:grpc \(TCP\)\n  WARNING topology-single-zone \(node-a\)\n/)
  t.match(r.out, /\nshop\/search:http \(TCP\)\n  WARNING one-ready-endpoint \(every node\)\n    what:  all new connections go to 10\.244\.0\.41:9200: it is the only ready endpoint of 3\n/)
  const s = await svcplane('doctor', '--cluster', file, '--service', 'shop/session', '--node-name', 'node-b')
  t.match(s.out, /\nshop\/session:http \(TCP\)\n  NOTE affinity-pinning \(node-b\)\n/)
  t.match(s.out, /    probe: TCP 10\.244\.1\.200:\d+ -> 10\.96\.20\.10:80 on node-b: DNAT to 10\.244\.\d\.31:8080\n/)
})
