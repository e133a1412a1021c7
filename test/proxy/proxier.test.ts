// The Proxier through its public API: sync summaries, session affinity in virtual time,
// conntrack behaviour, health checks, dual-stack, explain, and refusal of bad input.
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import type { SchedulerName } from '../../lib/dataplane/types.js'
import { lbStatus, makeService, makeSlice, port, testExternalClient, testNodeIP, testNodeName } from '../fixtures/objects'

const opts: ProxierOptions = { mode: 'native', nodeName: testNodeName, nodeIPs: [testNodeIP], podCIDRs: ['10.0.0.0/8'], seed: 3 }
const p80 = [{ name: 'p80', port: 80 }]
const svc = (n: number, extra = {}) => makeService('ns', `svc${n}`, { clusterIP: `172.30.${n >> 8}.${n & 255}`, ports: [port('p80', 80)], ...extra })
const pkt = (dst: string, sport: number, extra = {}) => ({ src: '10.0.0.2', sport, dst, dport: 80, protocol: 'TCP' as const, now: 1, ...extra })

t.test('sync applies only what changed and summarises it', async (t) => {
  const p = new Proxier(opts)
  for (let i = 1; i <= 50; i++) {
    p.applyService(svc(i))
    p.applyEndpointSlice(makeSlice('ns', `svc${i}`, 1, [`10.1.0.${i}`], p80))
  }
  const first = p.sync()
  t.same({ sp: first.servicePorts, ep: first.endpoints }, { sp: { added: 50, changed: 0, removed: 0 }, ep: { added: 50, changed: 0, removed: 0 } })
  t.type(first.durationMs, 'number')
  const steps: [string, () => void, object, object][] = [
    ['nothing pending', () => {}, { added: 0, changed: 0, removed: 0 }, { added: 0, changed: 0, removed: 0 }],
    ['same object again', () => p.applyService(svc(7)), { added: 0, changed: 0, removed: 0 }, { added: 0, changed: 0, removed: 0 }],
    ['one endpoint added', () => p.applyEndpointSlice(makeSlice('ns', 'svc7', 1, ['10.1.0.7', '10.2.0.7'], p80)), { added: 0, changed: 1, removed: 0 }, { added: 1, changed: 0, removed: 0 }],
    ['one endpoint turns not ready', () => p.applyEndpointSlice(makeSlice('ns', 'svc7', 1, ['10.1.0.7', { ip: '10.2.0.7', ready: false }], p80)), { added: 0, changed: 1, removed: 0 }, { added: 0, changed: 1, removed: 0 }],
    ['a port added', () => p.applyService(svc(8, { ports: [port('p80', 80), port('p81', 81)] })), { added: 1, changed: 0, removed: 0 }, { added: 0, changed: 0, removed: 0 }],
    ['a service deleted', () => p.deleteService(svc(9)), { added: 0, changed: 0, removed: 1 }, { added: 0, changed: 0, removed: 1 }],
    ['a slice deleted', () => p.deleteEndpointSlice('ns/svc10-1'), { added: 0, changed: 1, removed: 0 }, { added: 0, changed: 0, removed: 1 }],
  ]
  for (const [name, change, sp, ep] of steps) {
    change()
    const s = p.sync()
    t.same({ sp: s.servicePorts, ep: s.endpoints }, { sp, ep }, name)
  }
  t.equal(p.route(pkt('172.30.0.9', 1)).action, 'accept', 'deleted service is gone')
  t.equal(p.route(pkt('172.30.0.10', 1)).action, 'reject', 'service without slices rejects')
})

t.test('sessionAffinity ClientIP keeps a client on one endpoint until the timeout passes (virtual time)', async (t) => {
  const schedulers: SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']
  for (const scheduler of schedulers) {
    const p = new Proxier({ ...opts, native: { scheduler } })
    p.applyService(svc(1, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 100 } } }))
    p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4'], p80))
    p.sync()
    const first = p.route(pkt('172.30.0.1', 1000, { now: 10 }))
    if (first.action !== 'dnat') throw new Error('expected dnat')
    const within = [20, 50, 105].map((now, i) => p.route(pkt('172.30.0.1', 2000 + i, { now })))
    t.same(within.map((r) => (r.action === 'dnat' ? r.endpoint : r.action)), [first.endpoint, first.endpoint, first.endpoint], `${scheduler}: same endpoint within the timeout (last use refreshes it)`)
    // After the timeout other endpoints become possible again: over many new clients' ports, a
    // fresh choice is made (the previous entry expired).
    const after = p.explain(pkt('172.30.0.1', 3000, { now: 400 }))
    t.notOk(after.steps.some((s) => s.kind === 'affinity'), `${scheduler}: affinity expired after the timeout`)
  }
})

t.test('affinity default timeout is 10800 s', async (t) => {
  const p = new Proxier(opts)
  p.applyService(svc(1, { sessionAffinity: 'ClientIP' }))
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.1', '10.1.0.2', '10.1.0.3'], p80))
  p.sync()
  t.equal(p.state.servicePorts()[0].info.affinityTimeoutSeconds, 10800)
  const a = p.route(pkt('172.30.0.1', 1, { now: 0 }))
  const b = p.explain(pkt('172.30.0.1', 2, { now: 10000 }))
  t.same(b.result, a)
  t.ok(b.steps.some((s) => s.kind === 'affinity'))
})

t.test('conntrack through the Proxier', async (t) => {
  const p = new Proxier(opts)
  p.applyService(makeService('ns', 'tcp', { clusterIP: '172.30.0.1', ports: [port('p80', 80)] }))
  p.applyService(makeService('ns', 'udp', { clusterIP: '172.30.0.2', ports: [port('dns', 53, { protocol: 'UDP' })] }))
  p.applyEndpointSlice(makeSlice('ns', 'tcp', 1, ['10.1.0.1'], p80))
  p.applyEndpointSlice(makeSlice('ns', 'udp', 1, ['10.1.0.2'], [{ name: 'dns', port: 53, protocol: 'UDP' }]))
  p.sync()
  const tcp = pkt('172.30.0.1', 5000)
  const udp = { ...pkt('172.30.0.2', 5001), dport: 53, protocol: 'UDP' as const }
  t.same(p.route(tcp), { action: 'dnat', servicePort: 'ns/tcp:p80', endpoint: '10.1.0.1:80', address: '10.1.0.1', port: 80, masquerade: false })
  t.same(p.route(udp), { action: 'dnat', servicePort: 'ns/udp:dns', endpoint: '10.1.0.2:53', address: '10.1.0.2', port: 53, masquerade: false })

  // Terminating but serving, plus a new ready endpoint: established flows stay, new ones move.
  p.applyEndpointSlice(makeSlice('ns', 'tcp', 1, [{ ip: '10.1.0.1', ready: false, serving: true, terminating: true }, '10.1.0.9'], p80))
  p.sync()
  t.match(p.route(tcp), { endpoint: '10.1.0.1:80' }, 'established TCP flow keeps its terminating endpoint')
  t.match(p.route({ ...tcp, sport: 5002 }), { endpoint: '10.1.0.9:80' }, 'new flow goes to the ready endpoint')
  t.match(p.explain(tcp).steps.find((s) => s.kind === 'conntrack'), { text: /established/ })

  // UDP endpoint stops serving but stays listed: the reconciler removes its flows at sync.
  p.applyEndpointSlice(makeSlice('ns', 'udp', 1, [{ ip: '10.1.0.2', ready: false, serving: false, terminating: true }], [{ name: 'dns', port: 53, protocol: 'UDP' }]))
  const s = p.sync()
  t.equal(s.flowsRemoved, 1, 'one UDP flow removed')
  t.match(p.route(udp), { action: 'reject', reason: 'no-endpoints' }, 'the UDP flow is gone')

  // A TCP endpoint removed from the slices: its flows go with it.
  p.applyEndpointSlice(makeSlice('ns', 'tcp', 1, ['10.1.0.9'], p80))
  p.sync()
  t.match(p.route(tcp), { endpoint: '10.1.0.9:80' }, 'flow to a deleted endpoint was removed; a new choice is made')
})

t.test('health check node ports report local ready endpoints', async (t) => {
  const p = new Proxier(opts)
  p.applyService(makeService('ns', 'lb', { type: 'LoadBalancer', clusterIP: '172.30.0.1', externalTrafficPolicy: 'Local', healthCheckNodePort: 30000, ports: [port('a', 80, { nodePort: 3001 }), port('b', 81, { nodePort: 3002 })] }, lbStatus('1.2.3.4')))
  p.applyService(makeService('ns', 'cluster-lb', { type: 'LoadBalancer', clusterIP: '172.30.0.2', healthCheckNodePort: 30001, ports: [port('a', 80, { nodePort: 3003 })] }))
  p.applyService(makeService('ns', 'nodeport', { type: 'NodePort', clusterIP: '172.30.0.3', externalTrafficPolicy: 'Local', healthCheckNodePort: 30002, ports: [port('a', 80, { nodePort: 3004 })] }))
  p.applyEndpointSlice(makeSlice('ns', 'lb', 1, [
    { ip: '10.1.0.1', node: testNodeName }, { ip: '10.1.0.2', node: testNodeName, ready: false, serving: true, terminating: true }, { ip: '10.1.0.3', node: 'other' },
  ], [{ name: 'a', port: 80 }, { name: 'b', port: 81 }]))
  p.sync()
  t.same(p.healthChecks(), [{ service: 'ns/lb', healthCheckNodePort: 30000, localEndpoints: 1 }])
  t.same(p.route({ src: '1.2.3.4', sport: 1, dst: testNodeIP, dport: 30000, protocol: 'TCP' }), { action: 'accept' })
})

t.test('dual-stack: one Proxier for both families', async (t) => {
  const p = new Proxier({ ...opts, nodeIPs: [testNodeIP, '2001:db8::1'], podCIDRs: ['10.0.0.0/8', 'fd00:10::/64'] })
  p.applyService(makeService('ns', 'ds', { clusterIP: '172.30.0.1', clusterIPs: ['172.30.0.1', 'fd00:172:30::1'], ipFamilies: ['IPv4', 'IPv6'], ports: [port('p80', 80)] }))
  p.applyService(makeService('ns', 'v6only', { clusterIP: 'fd00:172:30::2', ipFamilies: ['IPv6'], ports: [port('', 80)] }))
  p.applyEndpointSlice(makeSlice('ns', 'ds', 1, ['10.1.0.1'], p80))
  p.applyEndpointSlice(makeSlice('ns', 'ds', 2, ['fd00:10:1::1'], p80, 'IPv6'))
  const s = p.sync()
  t.same(s.servicePorts, { added: 3, changed: 0, removed: 0 })
  t.same(p.route(pkt('172.30.0.1', 1)), { action: 'dnat', servicePort: 'ns/ds:p80', endpoint: '10.1.0.1:80', address: '10.1.0.1', port: 80, masquerade: false })
  t.same(p.route({ ...pkt('fd00:172:30::1', 1), src: 'fd00:10::5' }), { action: 'dnat', servicePort: 'ns/ds:p80', endpoint: '[fd00:10:1::1]:80', address: 'fd00:10:1::1', port: 80, masquerade: false })
  t.same(p.route({ ...pkt('fd00:172:30::2', 1), src: 'fd00:10::5' }), { action: 'reject', servicePort: 'ns/v6only', reason: 'no-endpoints' })
  const v4only = new Proxier(opts)
  v4only.applyService(makeService('ns', 'v6only', { clusterIP: 'fd00:172:30::2', ipFamilies: ['IPv6'], ports: [port('', 80)] }))
  t.same(v4only.sync().servicePorts, { added: 0, changed: 0, removed: 0 }, 'other-family services are skipped')
})

t.test('explain gives the steps as data and text', async (t) => {
  const p = new Proxier(opts)
  p.applyService(makeService('ns', 'lb', { type: 'LoadBalancer', clusterIP: '172.30.0.1', externalTrafficPolicy: 'Local', ports: [port('p80', 80, { nodePort: 3001 })] }, lbStatus('1.2.3.4')))
  p.applyEndpointSlice(makeSlice('ns', 'lb', 1, [{ ip: '10.1.0.1', node: 'other' }, { ip: '10.1.0.2', node: testNodeName, ready: false, serving: true, terminating: true }], p80))
  p.sync()
  const e = p.explain({ src: testExternalClient, sport: 9, dst: '1.2.3.4', dport: 80, protocol: 'TCP', now: 1 })
  t.same(e.result, { action: 'dnat', servicePort: 'ns/lb:p80', endpoint: '10.1.0.2:80', address: '10.1.0.2', port: 80, masquerade: false })
  t.same(e.steps.map((s) => s.kind), ['source', 'frontend', 'policy', 'endpoints', 'endpoint'])
  t.match(e.text, /loadBalancer of ns\/lb:p80[\s\S]*externalTrafficPolicy Local[\s\S]*falling back to serving terminating[\s\S]*=> DNAT ns\/lb:p80 -> 10\.1\.0\.2:80/)
  const again = p.explain({ src: testExternalClient, sport: 9, dst: '1.2.3.4', dport: 80, protocol: 'TCP', now: 2 })
  t.equal(again.steps.at(-1)!.kind, 'conntrack')
})

t.test('bad input is refused, naming the object and field; nothing is half-applied', async (t) => {
  const p = new Proxier(opts)
  p.applyService(svc(1))
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.1'], p80))
  p.sync()
  const bad: [string, () => void, RegExp, ErrorConstructor][] = [
    ['missing spec', () => p.applyService({ metadata: { namespace: 'ns', name: 'x' } }), /Service ns\/x: spec must be an object/, TypeError],
    ['missing name', () => p.applyService({ metadata: { namespace: 'ns' }, spec: {} }), /Service ns\/<no name>: metadata.name/, TypeError],
    ['unparsable cluster IP', () => p.applyService(makeService('ns', 'x', { clusterIP: '300.1.1.1' })), /Service ns\/x: spec.clusterIP must be an IP address, got "300.1.1.1"/, TypeError],
    ['port out of range', () => p.applyService(makeService('ns', 'x', { clusterIP: '172.30.0.9', ports: [port('a', 70000)] })), /Service ns\/x: spec.ports\[0\].port must be an integer 1..65535, got 70000/, RangeError],
    ['unknown protocol', () => p.applyService(makeService('ns', 'x', { clusterIP: '172.30.0.9', ports: [{ name: 'a', port: 80, protocol: 'ICMP' as 'TCP' }] })), /spec.ports\[0\].protocol must be one of TCP, UDP, SCTP, got "ICMP"/, TypeError],
    ['bad source range', () => p.applyService(makeService('ns', 'x', { clusterIP: '172.30.0.9', loadBalancerSourceRanges: ['nope'] })), /spec.loadBalancerSourceRanges\[0\] must be a CIDR/, TypeError],
    ['slice without service-name label', () => p.applyEndpointSlice({ metadata: { namespace: 'ns', name: 's' }, addressType: 'IPv4', endpoints: [] }), /EndpointSlice ns\/s: metadata.labels\["kubernetes.io\/service-name"\]/, TypeError],
    ['slice with bad address', () => p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.999'], p80)), /EndpointSlice ns\/svc1-1: endpoints\[0\].addresses\[0\] must be an IP address/, TypeError],
    ['slice port out of range', () => p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.1'], [{ name: 'p80', port: 99999 }])), /EndpointSlice ns\/svc1-1: ports\[0\].port must be an integer 0..65535/, RangeError],
    ['a List with one bad item', () => p.applyList({ kind: 'List', items: [svc(2), makeService('ns', 'y', { clusterIP: 'x' })] }), /Service ns\/y: spec.clusterIP/, TypeError],
  ]
  for (const [name, fn, message, type] of bad) {
    // The library's errors are coded subclasses: instanceof and the name are the contract.
    t.throws(fn, { message, name: type.name }, name)
    try {
      fn()
    } catch (e) {
      t.ok(e instanceof type, `${name}: a ${type.name}`)
    }
  }
  t.equal(p.pendingChanges, 0, 'nothing recorded')
  t.same(p.sync().servicePorts, { added: 0, changed: 0, removed: 0 })
  t.match(p.route(pkt('172.30.0.1', 1)), { action: 'dnat', endpoint: '10.1.0.1:80' }, 'the other service keeps working')
  t.throws(() => p.route({ ...pkt('172.30.0.1', 1), dport: 70000 }), RangeError)
  t.throws(() => new Proxier({ ...opts, nodeIPs: ['x'] }), /nodeIPs\[0\] must be an IP address/)
})

t.test('a full table fails the sync with code FULL, names the service, and is retried; other services keep working', async (t) => {
  const p = new Proxier({ ...opts, native: { capacity: { services: 2, frontends: 8, backends: 4, conntrack: 64, affinity: 64 } } })
  p.applyService(svc(1))
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.1'], p80))
  t.same(p.sync().errors, [])
  p.applyService(svc(2))
  p.applyEndpointSlice(makeSlice('ns', 'svc2', 1, ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'], p80))
  t.throws(() => p.sync(), { name: 'RangeError', code: 'FULL', services: ['ns/svc2'], message: /1 Service\(s\) could not be programmed, ns\/svc2 first \(backends map is full \(capacity 4\); raise capacity\.backends\)/ })
  t.match(p.route(pkt('172.30.0.1', 1)), { endpoint: '10.1.0.1:80' })
  t.same(p.route(pkt('172.30.0.2', 1)), { action: 'drop', servicePort: 'ns/svc2:p80', reason: 'not-programmed' }, 'the failed service is not half-programmed, and route() says so')
  p.applyEndpointSlice(makeSlice('ns', 'svc2', 1, ['10.1.0.2'], p80))
  t.same(p.sync().errors, [], 'retried at the next sync')
  t.match(p.route(pkt('172.30.0.2', 1)), { endpoint: '10.1.0.2:80' })
})

t.test('a frontend moving between the local and cluster sets is reprogrammed, not refused', async (t) => {
  // internalTrafficPolicy Local with only a remote endpoint; then that endpoint terminates and
  // stops serving: the cluster IP moves between the two dataplane services of the port.
  const p = new Proxier(opts)
  p.applyService(svc(1, { internalTrafficPolicy: 'Local' }))
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, [{ ip: '10.1.0.1', node: 'other-node' }], p80))
  t.same(p.sync().errors, [])
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, [{ ip: '10.1.0.1', node: 'other-node', ready: false, serving: false, terminating: true }], p80))
  t.same(p.sync().errors, [], 'second sync programs without a frontend conflict')
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, [{ ip: '10.1.0.1', node: testNodeName }], p80))
  t.same(p.sync().errors, [], 'and back')
  const r = p.route(pkt('172.30.0.1', 7))
  t.same(r, { action: 'dnat', servicePort: 'ns/svc1:p80', endpoint: '10.1.0.1:80', address: '10.1.0.1', port: 80, masquerade: false })
})

t.test('two Services on one external IP and port: the sync error names both Services and the address, not internal ids', async (t) => {
  const p = new Proxier(opts)
  t.teardown(() => p.dataplane?.destroy())
  p.applyService(makeService('ns', 'first', { clusterIP: '172.30.0.1', externalIPs: ['198.51.100.9'], ports: [port('p80', 80)] }))
  p.applyService(makeService('ns', 'second', { clusterIP: '172.30.0.2', externalIPs: ['198.51.100.9'], ports: [port('p80', 80)] }))
  const { errors } = p.sync()
  t.equal(errors.length, 1, 'one Service could not be programmed')
  const e = errors[0]!.error as Error & { code?: string }
  t.equal(e.code, 'CONFLICT')
  t.match(e.message, /ns\/first/)
  t.match(e.message, /ns\/second/)
  t.match(e.message, /198\.51\.100\.9:80/)
  t.notMatch(e.message, /service \d+:|frontends\[\d+\]/, 'no internal ids')
})

t.test('a Service labelled for another proxy or headless is not proxied, and labelling one removes it', async (t) => {
  const labelled = (labels: Record<string, string>) => {
    const s = svc(1)
    s.metadata.labels = labels
    return s
  }
  const cases: Record<string, string>[] = [{ 'service.kubernetes.io/service-proxy-name': 'other-proxy' }, { 'service.kubernetes.io/headless': '' }]
  for (const labels of cases) {
    const p = new Proxier(opts)
    p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.0.1'], p80))
    p.applyService(labelled(labels))
    p.sync()
    t.equal(p.route(pkt('172.30.0.1', 1)).action, 'accept', `${Object.keys(labels)[0]}: never programmed`)
    p.applyService(svc(1))
    p.sync()
    t.equal(p.route(pkt('172.30.0.1', 2)).action, 'dnat', 'label gone: programmed')
    p.applyService(labelled(labels))
    const s = p.sync()
    t.equal(s.servicePorts.removed, 1, 'label added: removed as kube-proxy\'s informer deletes it')
    t.equal(p.route(pkt('172.30.0.1', 3)).action, 'accept')
  }
})
