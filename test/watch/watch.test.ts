// Watching a cluster through @kubernetes/client-node's informers against a local API server
// double: changes on the server reach the Proxier's decisions within one sync period, and a
// dropped connection, a bookmark or a 410 Gone loses nothing.
import t, { type Test } from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import { ClusterWatcher } from '../../lib/watch/informers.js'
import { loadKubeConfig } from '../../lib/watch/kubeconfig.js'
import { ProxierSyncLoop } from '../../lib/watch/sync-loop.js'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { eventually, FakeApiServer } from './fake-apiserver'

const SYNC_PERIOD = 2 // seconds: every change must show within one of these
const MIN_SYNC_PERIOD = 0.05
const WITHIN = SYNC_PERIOD * 1000

const svc = (n: number, extra = {}) => makeService('ns', `svc${n}`, { clusterIP: `172.30.0.${n}`, ports: [port('p80', 80)], ...extra })
const slice = (n: number, ip: string) => makeSlice('ns', `svc${n}`, 1, [ip], [{ name: 'p80', port: 8080 }])

async function setup(t: Test, server?: FakeApiServer) {
  const api = server ?? (await new FakeApiServer().start())
  const proxier = new Proxier({ mode: 'native', nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'], seed: 1 })
  const errors: string[] = []
  const loop = new ProxierSyncLoop(proxier, { minSyncPeriod: MIN_SYNC_PERIOD, syncPeriod: SYNC_PERIOD, hooks: { onInvalid: (k, key, e) => errors.push(`${k} ${key}: ${e.message}`) } })
  const { kc } = await loadKubeConfig({ kubeconfig: api.writeKubeconfig() })
  const watcher = new ClusterWatcher(
    kc,
    {
      onService: (e, o) => loop.serviceEvent(e, o),
      onEndpointSlice: (e, o) => loop.endpointSliceEvent(e, o),
      onError: (r, e) => errors.push(`${r}: ${e.message}`),
    },
    { backoff: { initialMs: 20, maxMs: 200 } },
  )
  t.teardown(async () => {
    loop.stop()
    await watcher.stop()
    await api.close()
    proxier.dataplane?.destroy()
  })
  return { api, proxier, loop, watcher, errors }
}

async function startAll(s: Awaited<ReturnType<typeof setup>>) {
  await s.watcher.start()
  if (!(await s.watcher.waitForSync(AbortSignal.timeout(5000)))) throw new Error(`no sync: ${s.errors.join('; ')}`)
  s.loop.sync('initial')
  s.loop.start()
}

/** Where a new connection from a pod to svcN's cluster IP goes: "ip:port", "reject" or "accept". */
function decision(p: Proxier, n: number, sport = 1000 + Math.floor(Math.random() * 50000)): string {
  const r = p.route({ src: '10.0.0.2', sport, dst: `172.30.0.${n}`, dport: 80, protocol: 'TCP' })
  return r.action === 'dnat' ? r.endpoint : r.action
}

t.test('list, then added, changed and deleted objects reach the Proxier within one sync period', async (t) => {
  const s = await setup(t)
  s.api.put('services', svc(1))
  s.api.put('endpointslices', slice(1, '10.1.0.1'))
  await startAll(s)
  t.equal(decision(s.proxier, 1), '10.1.0.1:8080', 'listed objects are programmed by the initial sync')
  t.ok(s.api.watchRequests('services').every((r) => r.query.allowWatchBookmarks === 'true'), 'watches ask for bookmarks')
  t.ok(s.api.watchRequests('services').every((r) => r.query.labelSelector?.includes('!service.kubernetes.io/service-proxy-name')), 'kube-proxy\'s label selector')

  s.api.put('services', svc(2))
  s.api.put('endpointslices', slice(2, '10.1.0.2'))
  t.ok(await eventually(() => decision(s.proxier, 2) === '10.1.0.2:8080', WITHIN), 'added Service and slice')

  s.api.put('endpointslices', slice(1, '10.1.0.11'))
  t.ok(await eventually(() => decision(s.proxier, 1) === '10.1.0.11:8080', WITHIN), 'changed slice')

  s.api.put('services', svc(1, { ports: [port('p80', 80), port('p81', 81)] }))
  t.ok(await eventually(() => s.proxier.state.servicePortsOf('ns/svc1').length === 2, WITHIN), 'changed Service')

  s.api.delete('endpointslices', 'ns', 'svc2-1')
  t.ok(await eventually(() => decision(s.proxier, 2) === 'reject', WITHIN), 'deleted slice: no endpoints, REJECT')
  s.api.delete('services', 'ns', 'svc2')
  t.ok(await eventually(() => decision(s.proxier, 2) === 'accept', WITHIN), 'deleted Service: not service traffic')
  t.same(s.errors, [], 'no errors')
})

t.test('a dropped connection loses nothing: the watch resumes from the last resourceVersion', async (t) => {
  const s = await setup(t)
  for (const n of [1, 2, 3]) {
    s.api.put('services', svc(n))
    s.api.put('endpointslices', slice(n, `10.1.0.${n}`))
  }
  await startAll(s)
  t.ok(await eventually(() => s.api.openWatches() === 2, 2000), 'both watches open')
  const lists = s.api.lists('services') + s.api.lists('endpointslices')
  s.api.pause()
  s.api.dropWatches()
  // Changes while the client is disconnected.
  s.api.put('services', svc(4))
  s.api.put('endpointslices', slice(4, '10.1.0.4'))
  s.api.put('endpointslices', slice(1, '10.1.0.21'))
  s.api.delete('services', 'ns', 'svc3')
  s.api.delete('endpointslices', 'ns', 'svc3-1')
  t.ok(await eventually(() => s.api.watchRequests('services').length >= 2 && s.api.watchRequests('endpointslices').length >= 2, 3000), 'the client reconnects')
  s.api.resume()
  t.ok(await eventually(() => decision(s.proxier, 4) === '10.1.0.4:8080' && decision(s.proxier, 1) === '10.1.0.21:8080' && decision(s.proxier, 3) === 'accept', WITHIN + 1000), 'every change made during the outage arrived')
  t.equal(s.api.lists('services') + s.api.lists('endpointslices'), lists, 'no relist was needed')
  const rvs = s.api.watchRequests('services').map((r) => Number(r.query.resourceVersion))
  t.ok(rvs[1] >= rvs[0], 'the re-watch starts from the last resourceVersion seen')
})

t.test('bookmarks move the resourceVersion a re-watch starts from', async (t) => {
  const s = await setup(t)
  s.api.put('services', svc(1))
  await startAll(s)
  t.ok(await eventually(() => s.api.openWatches('services') === 1, 2000))
  s.api.bookmark()
  const bookmarkRv = String(s.api.rv)
  t.ok(await eventually(() => s.watcher.stats().services.bookmarks === 1, 2000), 'bookmark seen')
  s.api.dropWatches()
  t.ok(await eventually(() => s.api.watchRequests('services').length === 2, 3000), 're-watched')
  t.equal(s.api.watchRequests('services')[1].query.resourceVersion, bookmarkRv, 're-watch from the bookmark\'s resourceVersion')
  t.equal(decision(s.proxier, 1), 'reject', 'state intact')
})

for (const goneMode of ['status', 'event'] as const) {
  t.test(`410 Gone (${goneMode === 'status' ? 'HTTP status' : 'ERROR event'}) relists and loses nothing, deletions included`, async (t) => {
    const api = await new FakeApiServer().start()
    api.goneMode = goneMode
    const s = await setup(t, api)
    for (const n of [1, 2]) {
      s.api.put('services', svc(n))
      s.api.put('endpointslices', slice(n, `10.1.0.${n}`))
    }
    await startAll(s)
    t.ok(await eventually(() => s.api.openWatches() === 2, 2000))
    const lists = s.api.lists('services')
    s.api.pause()
    s.api.dropWatches()
    s.api.delete('services', 'ns', 'svc2')
    s.api.delete('endpointslices', 'ns', 'svc2-1')
    s.api.put('services', svc(5))
    s.api.put('endpointslices', slice(5, '10.1.0.5'))
    s.api.put('endpointslices', slice(1, '10.1.0.31'))
    s.api.compact()
    s.api.resume()
    t.ok(await eventually(() => decision(s.proxier, 2) === 'accept' && decision(s.proxier, 5) === '10.1.0.5:8080' && decision(s.proxier, 1) === '10.1.0.31:8080', WITHIN + 2000), 'the relist brought every change')
    t.ok(s.api.lists('services') > lists, 'relisted')
    t.ok(s.watcher.stats().services.expired >= 1, '410 counted')
  })
}

t.test('list errors are retried with backoff and reported in one line', async (t) => {
  const api = await new FakeApiServer().start()
  api.failLists = 3
  const s = await setup(t, api)
  s.api.put('services', svc(1))
  s.api.put('endpointslices', slice(1, '10.1.0.1'))
  await s.watcher.start()
  t.ok(await s.watcher.waitForSync(AbortSignal.timeout(5000)), 'synced after the failures')
  s.loop.sync('initial')
  t.equal(decision(s.proxier, 1), '10.1.0.1:8080')
  t.equal(s.errors.length, 3, 'each failure reported')
  t.match(s.errors[0], /HTTP 500.*etcd is unhappy/, 'status and message of the API server')
  t.notMatch(s.errors.join('\n'), /\n\s+at /, 'no stack trace')
})

t.test('an unreachable API server is reported clearly and retried', async (t) => {
  const api = await new FakeApiServer().start()
  const kcFile = api.writeKubeconfig()
  await api.close() // nothing listens on that port any more
  const { kc } = await loadKubeConfig({ kubeconfig: kcFile })
  const errors: string[] = []
  const watcher = new ClusterWatcher(kc, { onService() {}, onEndpointSlice() {}, onError: (r, e, retry) => errors.push(`${r}: ${e.message} (retry ${retry} ms)`) }, { backoff: { initialMs: 20, maxMs: 40 } })
  t.teardown(() => watcher.stop())
  await watcher.start()
  t.ok(await eventually(() => errors.length >= 4, 3000), 'keeps retrying')
  t.match(errors[0], /ECONNREFUSED/, errors[0])
  t.notOk(watcher.synced)
})

t.test('kubeconfig problems are clear', async (t) => {
  await t.rejects(loadKubeConfig({ kubeconfig: '/nonexistent/kubeconfig' }), /kubeconfig \/nonexistent\/kubeconfig: no such file/)
  const fs = await import('node:fs')
  const os = await import('node:os')
  const path = await import('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-kc-'))
  const bad = path.join(dir, 'bad')
  fs.writeFileSync(bad, 'clusters: [ this is : not yaml')
  await t.rejects(loadKubeConfig({ kubeconfig: bad }), /is invalid/)
  const empty = path.join(dir, 'empty')
  fs.writeFileSync(empty, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n')
  await t.rejects(loadKubeConfig({ kubeconfig: empty }), /no current context/)
  await t.rejects(loadKubeConfig({ env: { HOME: dir }, serviceAccountDir: path.join(dir, 'none') }), /no cluster configuration found/)
})
