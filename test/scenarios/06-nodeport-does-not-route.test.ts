// Scenario 6: a NodePort Service does not route. The port outside the node-port range; the
// wrong node address (or the service port instead of the NodePort); localhost NodePorts
// disabled; externalTrafficPolicy Local on a node without endpoints.
import t from 'tap'
import { diagnose } from '../../lib/doctor/index.js'
import { list, node, NODES, objectsOf, service, slice, svcplane, writeDump, MODES, serviceFindings } from './cluster.js'

export const dump = list(
  ...NODES.map(node),
  service('shop', 'api', '10.96.30.10', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }], { type: 'NodePort', externalTrafficPolicy: 'Cluster' }),
  slice('shop', 'api', 'c4d5e', [
    { ip: '10.244.0.71', node: 'node-a', pod: 'api-6f7d8-k2l3m' },
    { ip: '10.244.1.71', node: 'node-b', pod: 'api-6f7d8-n4o5p' },
  ], [{ name: 'http', port: 8080 }]),
  // Created while the API server ran with --service-node-port-range=20000-29999.
  service('shop', 'legacy', '10.96.30.20', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 25080 }], { type: 'NodePort', externalTrafficPolicy: 'Cluster' }),
  slice('shop', 'legacy', 'q6r7s', [{ ip: '10.244.2.72', node: 'node-c', pod: 'legacy-0' }], [{ name: 'http', port: 8080 }]),
  // externalTrafficPolicy Local, the one pod on node-a.
  service('shop', 'pos', '10.96.30.30', [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }], { type: 'NodePort', externalTrafficPolicy: 'Local' }),
  slice('shop', 'pos', 't8u9v', [{ ip: '10.244.0.73', node: 'node-a', pod: 'pos-7d9f-w1x2y' }], [{ name: 'http', port: 8080 }]),
)

t.test('the scan: out of range, and externalTrafficPolicy Local on the nodes without the pod', async (t) => {
  const r = diagnose(objectsOf(dump))
  t.same(r.findings.map((f) => [f.code, f.servicePort, f.nodes]), [
    ['node-port-out-of-range', 'shop/legacy:http', []],
    ['no-local-endpoints-external', 'shop/pos:http', ['node-b', 'node-c']],
  ])
  t.match(r.findings[0].what, /NodePort 25080 is outside the node-port range 30000-32767/)
  t.match(r.findings[1].probe!.result, { action: 'drop', reason: 'no-local-endpoints' })
  const custom = diagnose(objectsOf(dump), { nodePortRange: [20000, 29999], services: ['shop/legacy'] })
  t.same(custom.findings, [], 'inside the cluster\'s own range')
})

// These outcomes hold in the native model (iptables mode decides alike) and in kube-proxy's ipvs
// mode, whose NodePort virtual servers sit on the same node addresses; ipvs's node-wide findings
// left out. (Localhost NodePorts are iptables mode's alone: that test stays in the native model.)

for (const m of MODES) t.test(`${m.name}: the wrong node address`, async (t) => {
  const r = diagnose(objectsOf(dump), { target: { address: '192.168.10.99', port: 30080, protocol: 'TCP' }, ...m.mode })
  const f = r.findings.find((x) => x.code === 'wrong-node-address')!
  t.match(f.what, /nothing answers on 192\.168\.10\.99:30080: 192\.168\.10\.99 is not an address of any node/)
  t.match(f.why, /node-a 192\.168\.10\.11 34\.90\.10\.11; node-b 192\.168\.10\.12 34\.90\.10\.12; node-c/)
  t.match(f.probe!.result, { action: 'accept' })
  // The node's ExternalIP is one of its addresses: it routes.
  const ext = serviceFindings(diagnose(objectsOf(dump), { target: { address: '34.90.10.12', port: 30080, protocol: 'TCP' }, services: ['shop/api'], ...m.mode }))
  t.same(ext.findings, [])
})

for (const m of MODES) t.test(`${m.name}: the service port instead of the NodePort`, async (t) => {
  const r = diagnose(objectsOf(dump), { target: { address: '192.168.10.11', port: 80, protocol: 'TCP' }, ...m.mode })
  const f = r.findings.find((x) => x.code === 'wrong-port')!
  t.match(f, { servicePort: 'shop/api:http', nodes: ['node-a'] })
  t.match(f.why, /80 is the service port of shop\/api:http; on node addresses it answers on its NodePort 30080/)
  t.match(f.fix, /connect to 192\.168\.10\.11:30080/)
})

t.test('localhost NodePorts disabled', async (t) => {
  const on = diagnose(objectsOf(dump), { nodeName: 'node-a', target: { address: '127.0.0.1', port: 30080, protocol: 'TCP' } })
  t.notOk(on.findings.some((f) => f.code === 'localhost-node-ports-disabled'), 'kube-proxy\'s default answers on 127.0.0.1')
  const off = diagnose(objectsOf(dump), { nodeName: 'node-a', localhostNodePorts: false, target: { address: '127.0.0.1', port: 30080, protocol: 'TCP' } })
  const f = off.findings.find((x) => x.code === 'localhost-node-ports-disabled')!
  t.match(f.what, /NodePort 30080 does not answer on 127\.0\.0\.1/)
  t.match(f.fix, /connect to a node address instead \(192\.168\.10\.11:30080, 34\.90\.10\.11:30080\)/)
  t.match(f.probe!.packet, { src: '127.0.0.1', hook: 'output' })
  t.match(f.probe!.result, { action: 'accept' })
})

t.test('externalTrafficPolicy Local at the address the client uses', async (t) => {
  const r = diagnose(objectsOf(dump), { target: { address: '192.168.10.13', port: 30081, protocol: 'TCP' }, client: '198.51.100.7' })
  const f = r.findings.find((x) => x.code === 'no-local-endpoints-external')!
  t.same(f.nodes.includes('node-c'), true)
  t.match(f.probe!.packet, { src: '198.51.100.7', dst: '192.168.10.13', dport: 30081 })
  t.match(f.probe!.result, { action: 'drop', reason: 'no-local-endpoints' })
})

t.test('svcplane doctor --dst', async (t) => {
  const file = writeDump(t.testdir(), dump)
  const wrong = await svcplane('doctor', '--cluster', file, '--dst', '192.168.10.11:80')
  t.equal(wrong.code, 0, wrong.err)
  t.match(wrong.out, /\nshop\/api:http \(TCP\)\n  ERROR wrong-port \(node-a\)\n    what:  nothing answers on 192\.168\.10\.11:80\/TCP: no NodePort 80\n/)
  t.match(wrong.out, /    probe: TCP 203\.0\.113\.10:\d+ -> 192\.168\.10\.11:80 on node-a: ACCEPT \(no service answers there\)\n/)
  const lo = await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--no-localhost-node-ports', '--dst', '127.0.0.1:30080')
  t.match(lo.out, /  ERROR localhost-node-ports-disabled \(node-a\)\n/)
  t.match(lo.out, /    probe: TCP 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:30080 \(from the node\) on node-a: ACCEPT/)
  const range = await svcplane('doctor', '--cluster', file, '--node-port-range', '20000-29999')
  t.notMatch(range.out, /shop\/legacy/)
  const bad = await svcplane('doctor', '--cluster', file, '--node-port-range', '32767-30000')
  t.equal(bad.code, 2)
})
