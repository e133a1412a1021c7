// `svcplane run --kubeconfig` end to end against the local API server double: a change on the
// server shows in the running proxy's live dump and metrics within one sync period.
import t from 'tap'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { eventually, FakeApiServer } from './fake-apiserver'

t.test('run watches the cluster and serves what it programmed', async (t) => {
  const api = await new FakeApiServer().start()
  t.teardown(() => api.close())
  api.put('services', makeService('ns', 'svc1', { clusterIP: '172.30.0.1', ports: [port('p80', 80)] }))
  api.put('endpointslices', makeSlice('ns', 'svc1', 1, ['10.1.0.1'], [{ name: 'p80', port: 8080 }]))
  const controller = new AbortController()
  const io = bufferIO(controller.signal)
  const running = main(['run', '--kubeconfig', api.writeKubeconfig(), '--node-name', 'node-a', '--node-ip', '192.168.0.2', '--metrics-bind-address', '127.0.0.1:0', '--healthz-bind-address', '127.0.0.1:0', '--health-check-bind-address', '127.0.0.1', '--min-sync-period', '50ms', '--sync-period', '2s'], io)
  try {
    t.ok(await eventually(() => /running in native mode/.test(io.err), 60_000), io.err) // generous: loading @kubernetes/client-node alone takes seconds on a loaded machine
    const metricsUrl = /serving metrics on (http:\/\/127\.0\.0\.1:\d+)/.exec(io.err)![1]
    const vs = async () => JSON.parse(await (await fetch(`${metricsUrl}/debug/svcplane/dump?format=ipvsadm&json=1`)).text()) as { address: string; realServers: { address: string }[] }[]
    t.same((await vs()).map((v) => [v.address, v.realServers.map((r) => r.address)]), [['172.30.0.1', ['10.1.0.1']]])
    api.put('services', makeService('ns', 'svc2', { clusterIP: '172.30.0.2', ports: [port('p80', 80)] }))
    api.put('endpointslices', makeSlice('ns', 'svc1', 1, ['10.1.0.1', '10.1.0.9'], [{ name: 'p80', port: 8080 }]))
    let last: unknown
    const arrived = await eventually(() => {
      void vs().then((v) => (last = v.map((x) => [x.address, x.realServers.map((r) => r.address)])))
      return JSON.stringify(last) === JSON.stringify([['172.30.0.1', ['10.1.0.1', '10.1.0.9']], ['172.30.0.2', []]])
    }, 2000)
    t.ok(arrived, `changes programmed within one sync period: ${JSON.stringify(last)}`)
    const m = await (await fetch(`${metricsUrl}/metrics`)).text()
    t.match(m, /\nkubeproxy_sync_proxy_rules_service_changes_total 2\n/)
    t.match(m, /\nsvcplane_watch_total\{resource="services",kind="lists"\} 1\n/)
  } finally {
    controller.abort()
  }
  t.equal(await running, 0)
  t.ok(await eventually(() => api.openWatches() === 0, 2000), 'watches closed on stop')
})
