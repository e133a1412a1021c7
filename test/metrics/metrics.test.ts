// kube-proxy's metrics, /healthz and /livez, and the health check node port servers, over HTTP
// on 127.0.0.1.
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import { ProxierHealth, goTimeString } from '../../lib/metrics/health.js'
import { parseBindAddress } from '../../lib/metrics/http.js'
import { ProxyMetrics } from '../../lib/metrics/registry.js'
import { startHealthzServer, startMetricsServer } from '../../lib/metrics/servers.js'
import { ServiceHealthServers, serviceHealthBody } from '../../lib/metrics/service-health.js'
import { ProxierSyncLoop } from '../../lib/watch/sync-loop.js'
import type { EndpointSlice, Service } from '../../lib/k8s/types.js'
import { lbStatus, makeService, makeSlice, port } from '../fixtures/objects'

const opts = { mode: 'native' as const, nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'], seed: 1 }
const local = (n: number, endpoints: { ip: string; node: string; ready?: boolean }[]): [Service, EndpointSlice] => [
  makeService('ns', `lb${n}`, { type: 'LoadBalancer', clusterIP: `172.30.1.${n}`, ports: [port('p80', 80, { nodePort: 30000 + n })], externalTrafficPolicy: 'Local', healthCheckNodePort: 0 }, lbStatus(`198.51.100.${n}`)),
  makeSlice('ns', `lb${n}`, 1, endpoints, [{ name: 'p80', port: 8080 }]),
]

t.test('kube-proxy metric names, sync and change counters, dataplane metrics', async (t) => {
  const p = new Proxier(opts)
  t.teardown(() => p.dataplane?.destroy())
  const m = new ProxyMetrics(p, { defaultMetrics: false })
  const loop = new ProxierSyncLoop(p, { hooks: m.syncHooks() })
  m.setPendingSource(() => loop.pending)
  const svc = makeService('ns', 'svc1', { clusterIP: '172.30.0.1', ports: [port('p80', 80)] })
  const slice = makeSlice('ns', 'svc1', 1, ['10.1.0.1'], [{ name: 'p80', port: 8080 }])
  slice.metadata.annotations = { 'endpoints.kubernetes.io/last-change-trigger-time': new Date(Date.now() - 1500).toISOString() }
  loop.serviceEvent('add', svc)
  loop.endpointSliceEvent('add', slice)
  let text = await m.metrics()
  t.match(text, /^kubeproxy_sync_proxy_rules_service_changes_pending 1$/m)
  t.match(text, /^kubeproxy_sync_proxy_rules_endpoint_changes_pending 1$/m)
  t.match(text, /^kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds \d/m)
  loop.sync()
  p.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.1', dport: 80, protocol: 'TCP', now: 1 })
  p.route({ src: '10.0.0.2', sport: 2, dst: '172.30.0.1', dport: 81, protocol: 'TCP', now: 1 })
  m.recordDecision(p.route({ src: '10.0.0.2', sport: 3, dst: '172.30.0.1', dport: 80, protocol: 'TCP', now: 1 }))
  text = await m.metrics()
  for (const name of [
    'kubeproxy_sync_proxy_rules_duration_seconds_count 1',
    'kubeproxy_sync_proxy_rules_service_changes_total 1',
    'kubeproxy_sync_proxy_rules_endpoint_changes_total 1',
    'kubeproxy_sync_proxy_rules_service_changes_pending 0',
    'kubeproxy_sync_proxy_rules_endpoint_changes_pending 0',
    'kubeproxy_network_programming_duration_seconds_count 1',
    'kubeproxy_network_programming_duration_seconds_bucket{le="1"} 0',
    'kubeproxy_network_programming_duration_seconds_bucket{le="2"} 1',
    'kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="internal"} 0',
    'svcplane_conntrack_entries 2',
    'svcplane_conntrack_capacity 65536',
    'svcplane_dataplane_packets_total 3',
    'svcplane_dataplane_verdicts_total{verdict="forward"} 2',
    'svcplane_dataplane_verdicts_total{verdict="pass"} 1',
    'svcplane_dataplane_map_entries{map="services"} 1',
    'svcplane_service_ports 1',
    'svcplane_decisions_total{service_port="ns/svc1:p80",action="dnat",reason=""} 1',
  ]) {
    t.ok(text.includes(`\n${name}\n`), name)
  }
  t.match(text, /^kubeproxy_sync_proxy_rules_last_timestamp_seconds \d{10}/m)
  t.match(text, /^# TYPE svcplane_conntrack_evictions_total counter$/m)
  t.match(text, /^svcplane_dataplane_drops_total\{reason="no-backends"\} 0$/m)
})

t.test('proxier health: /healthz and /livez as kube-proxy answers them', async (t) => {
  let now = Date.UTC(2024, 7, 13, 10, 0, 0, 250)
  const h = new ProxierHealth(60_000, () => now)
  t.equal(goTimeString(undefined), '0001-01-01 00:00:00 +0000 UTC')
  t.equal(goTimeString(now), '2024-08-13 10:00:00.25 +0000 UTC')
  t.same(h.healthz(), { code: 200, body: '{"lastUpdated": "2024-08-13 10:00:00.25 +0000 UTC","currentTime": "2024-08-13 10:00:00.25 +0000 UTC", "nodeEligible": true}' }, 'healthy while starting')
  h.queuedUpdate()
  now += 59_000
  t.equal(h.healthz().code, 200, 'a queued change not yet late')
  now += 2_000
  const late = h.healthz()
  t.equal(late.code, 503, 'a change waited longer than the timeout')
  t.match(late.body, /"lastUpdated": "0001-01-01 00:00:00 \+0000 UTC"/, 'never updated')
  t.equal(h.livez().code, 503)
  h.updated()
  t.equal(h.healthz().code, 200)
  h.nodeEligible = false
  t.equal(h.healthz().code, 503, 'node not eligible: /healthz fails')
  t.equal(h.livez().code, 200, '/livez ignores the node')
  t.same(Object.keys(JSON.parse(h.livez().body)), ['lastUpdated', 'currentTime'])
})

t.test('metrics and healthz servers on 127.0.0.1', async (t) => {
  const p = new Proxier(opts)
  t.teardown(() => p.dataplane?.destroy())
  const m = new ProxyMetrics(p)
  const health = new ProxierHealth(60_000)
  const ms = await startMetricsServer({ host: '127.0.0.1', port: 0 }, { metrics: m, mode: 'native', config: { nodeName: 'node-a' } })
  const hs = await startHealthzServer({ host: '127.0.0.1', port: 0 }, health, m)
  t.teardown(() => Promise.all([ms.close(), hs.close()]))
  const metrics = await fetch(`${ms.url}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.headers.get('content-type'), /text\/plain; version=0.0.4/)
  const body = await metrics.text()
  t.match(body, /process_cpu_user_seconds_total/, 'process metrics')
  t.equal(await (await fetch(`${ms.url}/healthz`)).text(), 'ok')
  t.equal(await (await fetch(`${ms.url}/proxyMode`)).text(), 'native')
  t.same(await (await fetch(`${ms.url}/configz`)).json(), { kubeproxy: { nodeName: 'node-a' } })
  t.equal((await fetch(`${ms.url}/nope`)).status, 404)
  const hz = await fetch(`${hs.url}/healthz`)
  t.equal(hz.status, 200)
  t.equal(hz.headers.get('content-type'), 'application/json')
  t.equal(hz.headers.get('x-content-type-options'), 'nosniff')
  t.match(await hz.json(), { nodeEligible: true })
  t.equal((await fetch(`${hs.url}/livez`)).status, 200)
  t.match(await m.metrics(), /kubeproxy_proxy_healthz_total\{code="200"\} 1/)
  t.match(await m.metrics(), /kubeproxy_proxy_livez_total\{code="200"\} 1/)
  await t.rejects(startMetricsServer({ host: '127.0.0.1', port: ms.address.port }, { metrics: m, mode: 'native' }), /cannot serve metrics on 127\.0\.0\.1:\d+: address already in use/)
})

t.test('health check node ports: 200 with the local endpoint count, 503 without, kube-proxy\'s body', async (t) => {
  const p = new Proxier(opts)
  t.teardown(() => p.dataplane?.destroy())
  const [s1, e1] = local(1, [{ ip: '10.1.0.1', node: 'node-a' }, { ip: '10.1.0.2', node: 'node-a' }, { ip: '10.1.0.3', node: 'node-b' }])
  const [s2, e2] = local(2, [{ ip: '10.1.0.4', node: 'node-b' }])
  let healthy = true
  const servers = new ServiceHealthServers({ addresses: ['127.0.0.1'], proxyHealthy: () => healthy })
  t.teardown(() => servers.close())
  // Ask the OS for two free ports, then use them as the health check node ports.
  const free = await Promise.all([0, 1].map(() => new Promise<number>((resolve) => {
    const srv = require('node:net').createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = srv.address().port
      srv.close(() => resolve(port))
    })
  })))
  ;(s1.spec as { healthCheckNodePort: number }).healthCheckNodePort = free[0]
  ;(s2.spec as { healthCheckNodePort: number }).healthCheckNodePort = free[1]
  for (const o of [s1, s2]) p.applyService(o)
  for (const o of [e1, e2]) p.applyEndpointSlice(o)
  p.sync()
  await servers.sync(p.healthChecks())
  t.same(servers.list().map((s) => [s.service, s.localEndpoints]).sort(), [['ns/lb1', 2], ['ns/lb2', 0]])
  const r1 = await fetch(`http://127.0.0.1:${free[0]}/healthz`)
  t.equal(r1.status, 200)
  t.equal(r1.headers.get('x-load-balancing-endpoint-weight'), '2')
  t.equal(await r1.text(), '{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "lb1"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}')
  const r2 = await fetch(`http://127.0.0.1:${free[1]}/anything`)
  t.equal(r2.status, 503)
  t.equal(await r2.text(), serviceHealthBody('ns/lb2', 0, true))
  healthy = false
  t.equal((await fetch(`http://127.0.0.1:${free[0]}/`)).status, 503, 'unhealthy proxy: 503 everywhere')
  healthy = true
  // The last local endpoint of lb1 goes away, lb2 is deleted.
  p.applyEndpointSlice(makeSlice('ns', 'lb1', 1, [{ ip: '10.1.0.3', node: 'node-b' }], [{ name: 'p80', port: 8080 }]))
  p.deleteService(s2)
  p.sync()
  await servers.sync(p.healthChecks())
  t.equal((await fetch(`http://127.0.0.1:${free[0]}/`)).status, 503)
  await t.rejects(fetch(`http://127.0.0.1:${free[1]}/`), 'the deleted service\'s server is closed')
})

t.test('bind addresses', async (t) => {
  t.same(parseBindAddress('127.0.0.1:10249', 1, 'f'), { host: '127.0.0.1', port: 10249 })
  t.same(parseBindAddress('[::1]:9', 1, 'f'), { host: '::1', port: 9 })
  t.same(parseBindAddress(':9', 1, 'f'), { host: '0.0.0.0', port: 9 })
  t.same(parseBindAddress('10.0.0.1', 10256, 'f'), { host: '10.0.0.1', port: 10256 })
  t.equal(parseBindAddress('', 1, 'f'), null)
  t.equal(parseBindAddress('0', 1, 'f'), null)
  t.throws(() => parseBindAddress('1.2.3.4:99999', 1, '--x'), /--x: invalid port/)
})
