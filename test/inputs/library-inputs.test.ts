// The library side of issue 13: every options object outside the dataplane refuses unknown
// keys (naming the nearest), bad values are shown without throwing (BigInt), diagnose() takes a
// List, runPcap blames the right file and stops on a wrong one at once, runProxyFromFile merges
// several files, health-check servers default to loopback.
import t from 'tap'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  ClusterWatcher, diagnose, PcapFileError, PcapWriter, Proxier, ProxierSyncLoop, ProxyMetrics, runPcap, runProxyFromFile,
  ServiceHealthServers, ServiceProxy, startMetricsServer, diagnoseProxier,
} from '../../lib/index.js'
import { makeService, makeSlice, port } from '../fixtures/objects'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-lib-inputs-'))
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
const node = { mode: 'native' as const, nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.244.0.0/16'], seed: 1 }

t.test('unknown option keys are a TypeError naming the key and the nearest valid one', async (t) => {
  const proxier = new Proxier(node)
  t.teardown(() => proxier.dataplane?.destroy())
  const kc = {} as ConstructorParameters<typeof ClusterWatcher>[0]
  const handlers = { onService() {}, onEndpointSlice() {} }
  const cases: [string, () => unknown, RegExp][] = [
    ['diagnose', () => diagnose({ kind: 'List', items: [] }, { nodeNmae: 'node-a' } as never), /diagnose options: unknown option "nodeNmae"; did you mean "nodeName"\?/],
    ['diagnoseProxier', () => diagnoseProxier(proxier, { servces: [] } as never), /diagnoseProxier options: unknown option "servces"; did you mean "services"\?/],
    ['ClusterWatcher', () => new ClusterWatcher(kc, handlers, { labelSelektor: '' } as never), /ClusterWatcher options: unknown option "labelSelektor"; did you mean "labelSelector"\?/],
    ['ClusterWatcher backoff', () => new ClusterWatcher(kc, handlers, { backoff: { maxMS: 1 } } as never), /ClusterWatcher options: backoff: unknown option "maxMS"; did you mean "maxMs"\?/],
    ['ProxierSyncLoop', () => new ProxierSyncLoop(proxier, { minSyncPerod: 1 } as never), /ProxierSyncLoop options: unknown option "minSyncPerod"; did you mean "minSyncPeriod"\?/],
    ['ServiceProxy', () => new ServiceProxy({ proxier, conectTimeoutMs: 1 } as never), /ServiceProxy options: unknown option "conectTimeoutMs"; did you mean "connectTimeoutMs"\?/],
    ['ProxyMetrics', () => new ProxyMetrics(proxier, { defaultMetric: false } as never), /ProxyMetrics options: unknown option "defaultMetric"; did you mean "defaultMetrics"\?/],
    ['ServiceHealthServers', () => new ServiceHealthServers({ adresses: [] } as never), /ServiceHealthServers options: unknown option "adresses"; did you mean "addresses"\?/],
    ['runPcap', () => runPcap({ proxier, in: new Uint8Array(0), batchsize: 1 } as never), /runPcap options: unknown option "batchsize"; did you mean "batchSize"\?/],
    ['diagnose not an object', () => diagnose([], 'node-a' as never), /diagnose options must be an object, got string/],
  ]
  for (const [name, fn, re] of cases) t.throws(fn, { name: 'TypeError', message: re, code: 'INVALID' }, name)
  t.throws(() => startMetricsServer({ host: '127.0.0.1', port: 0 }, { metrics: new ProxyMetrics(proxier, { defaultMetrics: false }), mode: 'native', route: {} } as never), /startMetricsServer options: unknown option "route"; did you mean "routes"\?/)
  await t.rejects(runProxyFromFile(path.join(dir, 'x.json'), { ...node, watchInterval: 5 } as never), /unknown option "watchInterval"; did you mean "watchIntervalMs"\?/)
})

t.test('bad values are shown in messages without throwing while formatting them', async (t) => {
  const proxier = new Proxier(node)
  t.teardown(() => proxier.dataplane?.destroy())
  const cases: [string, () => unknown, RegExp][] = [
    ['masqueradeBit', () => new Proxier({ ...node, iptables: { masqueradeBit: 5n as never } }), /masqueradeBit must be an integer 0\.\.31, got 5n/],
    ['packet port', () => proxier.route({ src: '10.244.0.9', sport: 1n as never, dst: '172.30.0.1', dport: 80, protocol: 'TCP' }), /packet: sport must be an integer 0\.\.65535, got 1n/],
    ['iptables packet', () => new Proxier({ ...node, mode: 'iptables' }).route({ src: '10.244.0.9', sport: 1, dst: '172.30.0.1', dport: 80, protocol: 6n as never }), /got 6n/],
    ['podCIDRs', () => new Proxier({ ...node, podCIDRs: [1n as never] }), /podCIDRs\[0\] must be a CIDR, got 1n/],
    ['Service port', () => proxier.applyService(makeService('ns', 'a', { clusterIP: '172.30.0.5', ports: [{ name: 'x', port: 80n as never }] })), /Service ns\/a: spec\.ports\[0\]\.port must be an integer 1\.\.65535, got 80n/],
    ['Node', () => diagnose({ kind: 'List', items: [{ kind: 'Node', metadata: { name: 5n } }] }), /Node <no name>: metadata\.name must be a non-empty string, got 5n/],
  ]
  for (const [name, fn, re] of cases) {
    t.throws(fn, re, name)
    try {
      fn()
    } catch (err) {
      t.notMatch((err as Error).message, /serialize a BigInt|Cannot read properties/, `${name}: formatted`)
    }
  }
})

t.test('diagnose() takes a List (and JSON text, and v1 Endpoints) like every other entry point', async (t) => {
  const svc = makeService('shop', 'web', { clusterIP: '172.30.0.5', ports: [port('http', 80)] })
  const items = [
    { kind: 'Node', metadata: { name: 'node-a' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] }, spec: { podCIDRs: ['10.244.0.0/24'] } },
    svc,
  ]
  const bare = diagnose({ kind: 'List', items })
  t.same(bare.nodes, ['node-a'])
  t.match(bare.findings, [{ code: 'no-endpoints', service: 'shop/web' }])
  const withEndpoints = [...items, { kind: 'Endpoints', metadata: { namespace: 'shop', name: 'web' }, subsets: [{ addresses: [{ ip: '10.244.0.5', nodeName: 'node-a' }, { ip: '10.244.0.6', nodeName: 'node-a' }], ports: [{ name: 'http', port: 8080 }] }] }]
  for (const input of [{ kind: 'List', items: withEndpoints }, withEndpoints, JSON.stringify({ kind: 'List', items: withEndpoints })]) {
    const r = diagnose(input)
    t.same(r.findings.filter((f) => f.code === 'no-endpoints'), [], 'Endpoints count as endpoints')
    t.equal(r.servicePorts, 1)
  }
  t.throws(() => diagnose(42), /input holds no Kubernetes objects: found a number \(42\)/)
  const skipped = diagnose({ kind: 'List', items: [...items, makeService('mesh', 'gw', { clusterIP: '172.30.0.7', ports: [port('http', 80)] })].map((i) => (i.metadata.name === 'gw' ? { ...i, metadata: { ...i.metadata, labels: { 'service.kubernetes.io/service-proxy-name': 'istio' } } } : i)) }, { services: ['mesh/gw'] })
  t.match(skipped.findings, [{ code: 'not-proxied', service: 'mesh/gw', severity: 'info' }], 'a skipped Service named with services is explained, not "not in the dump"')
})

t.test('runPcap names the wrong file and refuses a non-capture at its first bytes', async (t) => {
  const proxier = new Proxier(node)
  t.teardown(() => proxier.dataplane?.destroy())
  proxier.applyList([makeService('ns', 'a', { clusterIP: '172.30.0.5', ports: [port('http', 80)] }), makeSlice('ns', 'a', 1, ['10.244.0.5'], [{ name: 'http', port: 8080 }])])
  const empty = path.join(dir, 'empty.pcap')
  fs.writeFileSync(empty, new PcapWriter(1).bytes())
  const cases: [Parameters<typeof runPcap>[0], 'in' | 'out', RegExp][] = [
    [{ proxier, in: empty, out: path.join(dir, 'missing', 'out.pcap') }, 'out', /cannot write output capture .*missing\/out\.pcap: no such file or directory/],
    [{ proxier, in: path.join(dir, 'nope.pcap') }, 'in', /cannot read capture .*nope\.pcap: no such file or directory/],
    [{ proxier, in: '/dev/zero' }, 'in', /capture \/dev\/zero: not a pcap or pcapng file \(magic 0x00000000\)/],
    [{ proxier, in: empty, maxInputBytes: 8 }, 'in', /capture .*empty\.pcap is larger than the 8 bytes input limit/],
  ]
  for (const [options, role, re] of cases) {
    t.throws(() => runPcap(options), re, String(re))
    try {
      runPcap(options)
    } catch (err) {
      t.ok(err instanceof PcapFileError && err.role === role, `blames ${role}`)
    }
  }
  t.match(runPcap({ proxier, in: empty }), { packets: 0 })
})

t.test('runProxyFromFile merges several JSON files; health-check servers listen on loopback by default', async (t) => {
  const svcFile = path.join(dir, 'svcs.json')
  const sliceFile = path.join(dir, 'slices.json')
  fs.writeFileSync(svcFile, JSON.stringify({ kind: 'ServiceList', items: [{ ...makeService('ns', 'a', { clusterIP: '127.77.4.10', ports: [port('http', 8080)] }), kind: undefined }] }))
  fs.writeFileSync(sliceFile, JSON.stringify([makeSlice('ns', 'a', 1, ['127.77.4.1'], [{ name: 'http', port: 9080 }])]))
  const running = await runProxyFromFile([svcFile, sliceFile], { nodeName: 'n', nodeIPs: ['127.77.255.1'], watch: false, listenOn: () => false })
  t.teardown(() => running.close({ drainMs: 0 }))
  running.proxier.sync()
  t.match(running.proxier.route({ src: '127.0.0.1', sport: 1, dst: '127.77.4.10', dport: 8080, protocol: 'TCP' }), { action: 'dnat', endpoint: '127.77.4.1:9080' })
  await t.rejects(runProxyFromFile([], { nodeName: 'n', nodeIPs: ['127.77.255.1'] }), /file must be a path or a non-empty array of paths/)

  const servers = new ServiceHealthServers()
  t.teardown(() => servers.close())
  const free = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(p))
    })
  })
  await servers.sync([{ service: 'ns/lb', healthCheckNodePort: free, localEndpoints: 1 }])
  const bound = servers.list().flatMap((s) => s.listening)
  t.ok(bound.length > 0 && bound.every((a) => a.startsWith('127.0.0.1')), `bound to loopback only: ${bound.join(', ')}`)
})
