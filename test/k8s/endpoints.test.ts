// v1 Endpoints read as the EndpointSlice mirroring controller writes them; objects kube-proxy's
// informer label selector leaves out; input holding no Kubernetes objects refused.
import t from 'tap'
import { mirrorEndpoints, mirrorSkipReason } from '../../lib/k8s/endpoints.js'
import { parseObjects, splitObjects, requireKubernetesObjects } from '../../lib/k8s/load.js'
import { Proxier } from '../../lib/modes/index.js'

const svc = (name: string, ip: string, labels?: Record<string, string>) => ({
  kind: 'Service', metadata: { namespace: 'ns', name, ...(labels ? { labels } : {}) },
  spec: { clusterIP: ip, ports: [{ name: 'http', port: 80 }] },
})
const endpoints = (name: string, subsets: unknown[], meta: Record<string, unknown> = {}) => ({ kind: 'Endpoints', metadata: { namespace: 'ns', name, ...meta }, subsets })

t.test('mirroring: ready, not ready, ports, node, hostname, targetRef, one slice per family and port set', async (t) => {
  const m = mirrorEndpoints(endpoints('web', [
    { addresses: [{ ip: '10.0.0.1', nodeName: 'node-a', hostname: 'web-1', targetRef: { kind: 'Pod', name: 'p1' } }, { ip: 'fd00::0001' }],
      notReadyAddresses: [{ ip: '10.0.0.2' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
    { addresses: [{ ip: '10.0.0.1' }, { ip: 'not-an-ip' }], ports: [{ name: 'http', port: 8080 }] },
    { addresses: [{ ip: '10.0.0.3' }], ports: [{ name: 'metrics', port: 9090 }] },
  ], { labels: { app: 'web' }, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': 'x', keep: 'y' } }))
  t.equal(m.key, 'ns/web')
  t.equal(m.addressesSkipped, 1, 'the invalid IP')
  const shapes = m.slices.map((s) => [s.addressType, s.ports!.map((p) => `${p.name}:${p.port}`).join(','), s.endpoints!.map((e) => `${e.addresses[0]}${e.conditions!.ready ? '' : ' (not ready)'}`).join(',')])
  t.same(shapes, [
    ['IPv4', 'http:8080', '10.0.0.1,10.0.0.2 (not ready)'],
    ['IPv6', 'http:8080', 'fd00::1'],
    ['IPv4', 'metrics:9090', '10.0.0.3'],
  ])
  const first = m.slices[0]!
  t.match(first.endpoints![0], { nodeName: 'node-a', hostname: 'web-1', targetRef: { kind: 'Pod', name: 'p1' } })
  t.match(first.metadata.labels, { app: 'web', 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.k8s.io' })
  t.same(first.metadata.annotations, { keep: 'y' }, 'the trigger-time annotation is not copied')
  t.equal(new Set(m.slices.map((s) => s.metadata.name)).size, 3, 'distinct names')
  t.equal(mirrorSkipReason(endpoints('x', [], { labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } })), 'it is labelled endpointslice.kubernetes.io/skip-mirror=true')
  t.throws(() => mirrorEndpoints(endpoints('x', [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 0 }] }])), /Endpoints ns\/x: subsets\[0\]\.ports\[0\]\.port must be an integer 1\.\.65535, got 0/)
  t.throws(() => mirrorEndpoints(endpoints('x', [null])), /Endpoints ns\/x: subsets\[0\] must be an object, got null/)
})

t.test('a List with Endpoints routes through a Proxier; slices in the input win; skip-mirror honoured', async (t) => {
  const list = { kind: 'List', items: [
    svc('web', '172.30.0.5'), endpoints('web', [{ addresses: [{ ip: '10.0.0.1' }], notReadyAddresses: [{ ip: '10.0.0.9' }], ports: [{ name: 'http', port: 8080 }] }]),
    svc('sliced', '172.30.0.6'), endpoints('sliced', [{ addresses: [{ ip: '10.0.0.66' }], ports: [{ name: 'http', port: 8080 }] }]),
    { kind: 'EndpointSlice', metadata: { namespace: 'ns', name: 'sliced-1', labels: { 'kubernetes.io/service-name': 'sliced' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.2'] }], ports: [{ name: 'http', port: 8080 }] },
    svc('skip', '172.30.0.7'), endpoints('skip', [{ addresses: [{ ip: '10.0.0.3' }], ports: [{ name: 'http', port: 8080 }] }], { labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } }),
  ] }
  const p = new Proxier({ mode: 'native', nodeName: 'n', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/16'], seed: 1 })
  const r = p.applyList(list)
  t.match(r, { services: 3, endpointSlices: 2 })
  t.same(r.notices.map((n) => n.code), ['mirrored-endpoints', 'endpoints-not-mirrored'])
  t.match(r.notices[0]!.message, /^Endpoints ns\/web: read as 1 EndpointSlice\(s\)/)
  p.sync()
  const to = (dst: string) => p.route({ src: '10.0.0.50', sport: 1, dst, dport: 80, protocol: 'TCP', now: 1 })
  for (let i = 0; i < 4; i++) t.match(to('172.30.0.5'), { action: 'dnat', endpoint: '10.0.0.1:8080' }, 'only the ready address')
  t.match(to('172.30.0.6'), { action: 'dnat', endpoint: '10.0.0.2:8080' }, 'the input\'s slice, not the Endpoints')
  t.match(to('172.30.0.7'), { action: 'reject' }, 'skip-mirror: no endpoints')
})

t.test('Services (and slices, Endpoints) of another proxy or labelled headless are left out', async (t) => {
  const list = [
    svc('mine', '172.30.0.5'),
    svc('theirs', '172.30.0.6', { 'service.kubernetes.io/service-proxy-name': 'other' }),
    svc('hl', '172.30.0.7', { 'service.kubernetes.io/headless': '' }),
    { kind: 'EndpointSlice', metadata: { namespace: 'ns', name: 'theirs-1', labels: { 'kubernetes.io/service-name': 'theirs', 'service.kubernetes.io/service-proxy-name': 'other' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.2'] }], ports: [{ name: 'http', port: 8080 }] },
  ]
  const s = splitObjects(list)
  t.equal(s.services.length, 1)
  t.equal(s.endpointSlices.length, 0)
  t.same(s.notProxied.map((x) => `${x.kind} ${x.key}`), ['Service ns/theirs', 'Service ns/hl', 'EndpointSlice ns/theirs-1'])
  t.match(s.notProxied[0]!.reason, /service-proxy-name=other: another proxy owns it/)
  t.match(s.notProxied[1]!.reason, /headless/)
  const p = new Proxier({ mode: 'native', nodeName: 'n', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/16'] })
  p.applyList(list)
  p.sync()
  t.match(p.route({ src: '10.0.0.50', sport: 1, dst: '172.30.0.6', dport: 80, protocol: 'TCP', now: 1 }), { action: 'accept' }, 'not kube-proxy\'s')
  // An invalid object kube-proxy never sees does not fail the input.
  t.doesNotThrow(() => parseObjects([svc('mine', '172.30.0.5'), { ...svc('bad', 'nope', { 'service.kubernetes.io/service-proxy-name': 'x' }) }]))
})

t.test('input with no Kubernetes objects is refused, naming what it holds', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{}, /input holds no Kubernetes objects: found an empty object \(\{\}\)/],
    [42, /found a number \(42\)/],
    ['NAME         TYPE        CLUSTER-IP', /found text \("NAME         TYPE        CLUSTER-IP"\)/],
    [null, /found null/],
    [[1, 'a'], /found a list of 2 item\(s\), none of them a Kubernetes object/],
    [{ foo: 1, bar: 2 }, /an object without kind or apiVersion \(keys: foo, bar\)/],
  ]
  for (const [input, re] of cases) {
    t.throws(() => requireKubernetesObjects(input), { name: 'TypeError', message: re, code: 'INVALID' }, String(re))
  }
  t.throws(() => splitObjects('{}'), /holds no Kubernetes objects/)
  t.throws(() => parseObjects(42), /holds no Kubernetes objects/)
  for (const ok of [{ kind: 'List', items: [] }, [], { kind: 'Pod', metadata: {} }]) t.doesNotThrow(() => requireKubernetesObjects(ok))
})
