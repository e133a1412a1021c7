// Loading Kubernetes objects: kubectl -o json Lists, typed lists, arrays, single objects, JSON
// text and @kubernetes/client-node shaped objects (Date timestamps, no kind on list items).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseObjects, splitObjects } from '../../lib/k8s/load.js'
import { parseService } from '../../lib/k8s/service.js'
import { parseEndpointSlice } from '../../lib/k8s/endpointslice.js'
import { Proxier } from '../../lib/modes/index.js'

const text = readFileSync(join(__dirname, '../fixtures/cluster.json'), 'utf8')
const list = JSON.parse(text)

t.test('input shapes', async (t) => {
  const svc = list.items[0]
  const slice = list.items.find((i: { kind: string }) => i.kind === 'EndpointSlice')
  const clientNode = { metadata: { ...svc.metadata, creationTimestamp: new Date('2024-08-13T10:00:00Z') }, spec: svc.spec }
  const cases: [string, unknown, number, number, number][] = [
    ['kubectl List', list, 6, 7, 0],
    ['JSON text', text, 6, 7, 0],
    ['array', list.items, 6, 7, 0],
    ['single Service', svc, 1, 0, 0],
    ['single EndpointSlice', slice, 0, 1, 0],
    ['ServiceList from client-node (items without kind)', { kind: 'ServiceList', items: [clientNode] }, 1, 0, 0],
    ['client-node items by shape', [clientNode, { metadata: slice.metadata, addressType: 'IPv4', endpoints: [] }], 1, 1, 0],
    ['other kinds are skipped', { kind: 'List', items: [{ kind: 'Pod', metadata: {} }, svc] }, 1, 0, 1],
  ]
  for (const [name, input, services, slices, skipped] of cases) {
    const s = splitObjects(input)
    t.same([s.services.length, s.endpointSlices.length, s.skipped], [services, slices, skipped], name)
  }
  t.throws(() => splitObjects('{'), { name: 'TypeError', message: /not valid JSON/ })
  t.throws(() => splitObjects(42), TypeError)
  t.equal(parseService(clientNode).key, 'default/kubernetes', 'Date in metadata is fine')
})

t.test('normalisation with API defaults', async (t) => {
  const parsed = parseObjects(list)
  const web = parsed.services.find((s) => s.key === 'shop/web')!
  t.same(web.clusterIPs, { IPv4: '172.30.10.5', IPv6: 'fd00:172:30::5' })
  t.same(web.loadBalancerIPs, ['198.51.100.10'], 'hostname-only and ipMode Proxy ingress skipped')
  t.same(web.loadBalancerSourceRanges, ['203.0.113.0/25', '2001:db8:ffff::/48'], 'whitespace tolerated')
  t.equal(web.affinityTimeoutSeconds, 600)
  const cache = parsed.services.find((s) => s.key === 'shop/cache')!
  t.same(cache.ports, [{ name: '', protocol: 'TCP', port: 6379, nodePort: 30379 }])
  t.equal(parsed.services.find((s) => s.key === 'shop/db')!.headless, true)
  const slice = parseEndpointSlice({ metadata: { namespace: 'a', name: 'b', labels: { 'kubernetes.io/service-name': 'c' } }, addressType: 'IPv6', endpoints: [{ addresses: ['FD00::0001'] }], ports: [{ port: 80 }] })
  t.same(slice.endpoints[0], { address: 'fd00::1', ready: true, serving: true, terminating: false, nodeName: null, zone: null, zoneHints: [] }, 'unset conditions default like kube-proxy')
  t.same(slice.ports[0], { name: null, port: 80, protocol: 'TCP' })
})

t.test('the fixture cluster through a Proxier', async (t) => {
  const p = new Proxier({ mode: 'native', nodeName: 'node-a', nodeIPs: ['192.168.0.2', '2001:db8::2'], podCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'], zone: 'zone-a', seed: 1 })
  t.match(p.applyList(text), { services: 6, endpointSlices: 7, skipped: 0, notices: [] })
  const s = p.sync()
  t.same(s.servicePorts.added, 6, 'kubernetes, 2x kube-dns, web v4 + v6, cache; headless and ExternalName skipped')
  t.same(p.state.servicePorts().map((sp) => `${sp.info.name}/${sp.info.protocol}/${sp.info.family}`), [
    'default/kubernetes:https/TCP/IPv4', 'kube-system/kube-dns:dns/UDP/IPv4', 'kube-system/kube-dns:dns-tcp/TCP/IPv4',
    'shop/cache/TCP/IPv4', 'shop/web:http/TCP/IPv4', 'shop/web:http/TCP/IPv6',
  ])
  const dns = { src: '10.244.0.9', sport: 1, dst: '172.30.0.10', dport: 53, protocol: 'UDP' as const, now: 1 }
  for (let i = 0; i < 10; i++) t.match(p.route({ ...dns, sport: i }), { endpoint: '10.244.0.5:53' }, 'topology hints keep DNS in zone-a')
  t.match(p.route({ src: '203.0.113.9', sport: 1, dst: '198.51.100.10', dport: 80, protocol: 'TCP', now: 1 }), { action: 'dnat', endpoint: '10.244.0.20:8080', masquerade: false })
  t.match(p.route({ src: '203.0.113.200', sport: 1, dst: '198.51.100.10', dport: 80, protocol: 'TCP', now: 1 }), { action: 'drop', reason: 'source-range' })
  t.match(p.route({ src: '10.244.0.9', sport: 1, dst: '172.30.10.7', dport: 6379, protocol: 'TCP', now: 1 }), { action: 'dnat', servicePort: 'shop/cache', endpoint: '10.244.0.40:6379' })
  t.same(p.healthChecks(), [{ service: 'shop/web', healthCheckNodePort: 32000, localEndpoints: 2 }])
})
