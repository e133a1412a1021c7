// categorizeEndpoints and the endpoint cache, table-driven.
import t from 'tap'
import { categorizeEndpoints } from '../../lib/proxy/categorize.js'
import { EndpointSliceCache, type EndpointInfo } from '../../lib/proxy/endpoints.js'
import { buildServicePorts } from '../../lib/proxy/serviceport.js'
import { parseService } from '../../lib/k8s/service.js'
import { parseEndpointSlice } from '../../lib/k8s/endpointslice.js'
import { makeService, makeSlice, port, type EP } from '../fixtures/objects'

const names = (eps: EndpointInfo[]) => eps.map((e) => e.ip).join(',')

function spFor(itp: 'Cluster' | 'Local', etp: 'Cluster' | 'Local') {
  const svc = parseService(makeService('ns', 's', { type: etp === 'Local' ? 'NodePort' : 'ClusterIP', clusterIP: '172.30.0.1', internalTrafficPolicy: itp, externalTrafficPolicy: etp, ports: [port('p', 80, { nodePort: etp === 'Local' ? 30001 : 0 })] }))
  return buildServicePorts(svc, 'IPv4')[0]
}

function endpointsOf(eps: EP[]): EndpointInfo[] {
  const cache = new EndpointSliceCache('me')
  cache.set(parseEndpointSlice(makeSlice('ns', 's', 1, eps, [{ name: 'p', port: 80 }])))
  return cache.endpointsFor('ns/s', 'p', 'TCP', 'IPv4')
}

const cases: { name: string; itp?: 'Local'; etp?: 'Local'; zone?: string; eps: EP[]; cluster: string; local: string; any: boolean }[] = [
  { name: 'ready endpoints only', eps: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2', ready: false }], cluster: '10.0.0.1', local: '', any: true },
  { name: 'hints used: all hinted, one for this zone', zone: 'a', eps: [{ ip: '10.0.0.1', zones: ['a'] }, { ip: '10.0.0.2', zones: ['b'] }], cluster: '10.0.0.1', local: '', any: true },
  { name: 'hints ignored: one ready endpoint lacks a hint', zone: 'a', eps: [{ ip: '10.0.0.1', zones: ['a'] }, { ip: '10.0.0.2' }], cluster: '10.0.0.1,10.0.0.2', local: '', any: true },
  { name: 'hints ignored: none for this zone', zone: 'c', eps: [{ ip: '10.0.0.1', zones: ['a'] }, { ip: '10.0.0.2', zones: ['b'] }], cluster: '10.0.0.1,10.0.0.2', local: '', any: true },
  { name: 'hints ignored: node has no zone', eps: [{ ip: '10.0.0.1', zones: ['a'] }], cluster: '10.0.0.1', local: '', any: true },
  { name: 'hints of not-ready endpoints do not matter', zone: 'a', eps: [{ ip: '10.0.0.1', zones: ['a'] }, { ip: '10.0.0.2', zones: ['b'] }, { ip: '10.0.0.3', ready: false }], cluster: '10.0.0.1', local: '', any: true },
  { name: 'terminating fallback for cluster', eps: [{ ip: '10.0.0.1', ready: false, serving: true, terminating: true }, { ip: '10.0.0.2', ready: false, serving: false, terminating: true }], cluster: '10.0.0.1', local: '', any: true },
  { name: 'nothing usable', eps: [{ ip: '10.0.0.1', ready: false, serving: false, terminating: true }, { ip: '10.0.0.2', ready: false }], cluster: '', local: '', any: false },
  { name: 'ITP Local: local ready', itp: 'Local', eps: [{ ip: '10.0.0.1', node: 'me' }, { ip: '10.0.0.2', node: 'other' }], cluster: '', local: '10.0.0.1', any: true },
  { name: 'ITP Local: remote only still counts as endpoints', itp: 'Local', eps: [{ ip: '10.0.0.2', node: 'other' }], cluster: '', local: '', any: true },
  { name: 'local fallback decided independently of cluster', etp: 'Local', eps: [{ ip: '10.0.0.1', node: 'me', ready: false, serving: true, terminating: true }, { ip: '10.0.0.2', node: 'other' }], cluster: '10.0.0.2', local: '10.0.0.1', any: true },
  { name: 'local ready beats local terminating', etp: 'Local', eps: [{ ip: '10.0.0.1', node: 'me', ready: false, serving: true, terminating: true }, { ip: '10.0.0.3', node: 'me' }], cluster: '10.0.0.3', local: '10.0.0.3', any: true },
  { name: 'local set ignores topology', etp: 'Local', zone: 'a', eps: [{ ip: '10.0.0.1', node: 'me', zones: ['b'] }, { ip: '10.0.0.2', node: 'other', zones: ['a'] }], cluster: '10.0.0.2', local: '10.0.0.1', any: true },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = categorizeEndpoints(endpointsOf(c.eps), spFor(c.itp ?? 'Cluster', c.etp ?? 'Cluster'), c.zone)
    t.same({ cluster: names(r.cluster), local: names(r.local), any: r.hasAnyEndpoints }, { cluster: c.cluster, local: c.local, any: c.any })
  })
}

t.test('endpoint cache: grouping, first address, dedupe, sort, locality', async (t) => {
  const cache = new EndpointSliceCache('me')
  cache.set(parseEndpointSlice(makeSlice('ns', 's', 1, ['10.1.1.1', '10.1.1.11'], [{ name: 'p', port: 11 }, { name: 'q', port: 12, protocol: 'UDP' }])))
  cache.set(parseEndpointSlice(makeSlice('ns', 's', 2, [{ ip: '10.1.1.1', node: 'me' }, '10.1.1.2'], [{ name: 'p', port: 11 }])))
  const slice = makeSlice('ns', 's', 3, ['10.9.9.9'], [{ name: 'p', port: 11 }])
  slice.endpoints![0].addresses.push('10.9.9.8')
  cache.set(parseEndpointSlice(slice))
  const p = cache.endpointsFor('ns/s', 'p', 'TCP', 'IPv4')
  t.same(p.map((e) => `${e.endpoint}${e.isLocal ? '*' : ''}`), ['10.1.1.11:11', '10.1.1.1:11*', '10.1.1.2:11', '10.9.9.9:11'], 'string order of "IP:port"; duplicate keeps the local one; first address only')
  t.same(cache.endpointsFor('ns/s', 'q', 'UDP', 'IPv4').map((e) => e.endpoint), ['10.1.1.11:12', '10.1.1.1:12'])
  t.same(cache.endpointsFor('ns/s', 'q', 'TCP', 'IPv4'), [], 'protocol must match')
  t.same(cache.remove('ns/s-2'), ['ns/s'])
  t.same(cache.endpointsFor('ns/s', 'p', 'TCP', 'IPv4').map((e) => e.endpoint), ['10.1.1.11:11', '10.1.1.1:11', '10.9.9.9:11'])
})

t.test('ServicePort building', async (t) => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['named ports', { clusterIP: '172.30.0.1', ports: [port('a', 80), port('b', 81, { protocol: 'UDP' })] }, ['ns/s:a', 'ns/s:b']],
    ['unnamed port', { clusterIP: '172.30.0.1', ports: [port('', 80)] }, ['ns/s']],
    ['headless', { clusterIP: 'None', ports: [port('a', 80)] }, []],
    ['ExternalName', { type: 'ExternalName', externalName: 'x.example', ports: [port('a', 80)] }, []],
    ['no cluster IP of this family', { clusterIP: 'fd00::1', ipFamilies: ['IPv6'], ports: [port('a', 80)] }, []],
    ['no cluster IP at all', { ports: [port('a', 80)] }, []],
  ]
  for (const [name, spec, expected] of cases) {
    t.same(buildServicePorts(parseService(makeService('ns', 's', spec)), 'IPv4').map((sp) => sp.name), expected, name)
  }
  const [sp] = buildServicePorts(parseService(makeService('ns', 's', {
    type: 'LoadBalancer', clusterIP: '172.30.0.1', externalIPs: ['192.168.99.1', 'fd00::9'], externalTrafficPolicy: 'Local', healthCheckNodePort: 31000,
    loadBalancerSourceRanges: [' 10.0.0.0/8 ', 'fd00::/8'], ports: [port('a', 80, { nodePort: 30000 })],
  }, { loadBalancer: { ingress: [{ ip: '' }, { ip: '1.2.3.4' }, { ip: '5.6.7.8', ipMode: 'Proxy' }, { ip: 'fd00::1' }] } })), 'IPv4')
  t.match(sp, { externalIPs: ['192.168.99.1'], loadBalancerVIPs: ['1.2.3.4'], loadBalancerSourceRanges: ['10.0.0.0/8'], externalPolicyLocal: true, healthCheckNodePort: 31000, nodePort: 30000 })
})
