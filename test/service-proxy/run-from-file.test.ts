// runProxyFromFile (`svcplane proxy --cluster FILE`): a kubectl JSON dump in, a running proxy
// out; edits of the file are applied, deletions included; a broken file changes nothing.
import t from 'tap'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { runProxyFromFile, type ReloadResult } from '../../lib/service-proxy/index.js'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { eventually, get, httpEndpoint } from './loopback'

const web = [{ name: 'http', port: 9080 }]
const list = (items: object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 1)

t.test('serves the dump, follows edits of the file, refuses a broken file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-proxy-'))
  const file = path.join(dir, 'cluster.json')
  const a = await httpEndpoint('127.77.1.1', 9080)
  const b = await httpEndpoint('127.77.1.2', 9080)
  const svcA = makeService('ns', 'a', { clusterIP: '127.77.0.10', ports: [port('http', 8080)] })
  const svcB = makeService('ns', 'b', { clusterIP: '127.77.0.11', ports: [port('http', 8080)] })
  fs.writeFileSync(file, list([svcA, svcB, makeSlice('ns', 'a', 1, [a.address], web), makeSlice('ns', 'b', 1, [b.address], web)]))

  const reloads: ReloadResult[] = []
  const running = await runProxyFromFile(file, {
    nodeName: 'test-node',
    nodeIPs: ['127.77.255.1'],
    iptables: { localhostNodePorts: false },
    watchIntervalMs: 20,
    onReload: (r) => reloads.push(r),
  })
  t.teardown(async () => {
    await running.close({ drainMs: 0 })
    await a.close()
    await b.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  t.same(await get('127.77.0.10', 8080), { ok: true, body: a.name })
  t.same(await get('127.77.0.11', 8080), { ok: true, body: b.name })

  // Service a now has both endpoints; service b and its slice are gone from the file.
  fs.writeFileSync(file, list([svcA, makeSlice('ns', 'a', 1, [a.address, b.address], web)]))
  const r = await running.reload()
  t.equal(r.ok, true)
  t.equal(r.deleted, 2, 'the missing Service and EndpointSlice were deleted')
  t.equal(r.sync?.listenersClosed, 1)
  const bodies = new Set<string | undefined>()
  for (let i = 0; i < 30; i++) bodies.add((await get('127.77.0.10', 8080)).body)
  t.same([...bodies].sort(), [a.name, b.name], 'a uses both endpoints')
  t.equal((await get('127.77.0.11', 8080)).error, 'ECONNREFUSED', 'b no longer listens')

  // A half-written file is refused; the proxy keeps serving what it had.
  fs.writeFileSync(file, '{"kind": "List", "items": [')
  const broken = await running.reload()
  t.equal(broken.ok, false)
  t.ok(broken.error)
  t.equal((await get('127.77.0.10', 8080)).ok, true, 'still serving')

  // The watcher picks up a change by itself (bounded wait for the reload, no timing assertion).
  const before = reloads.length
  fs.writeFileSync(file, list([svcA, svcB, makeSlice('ns', 'a', 1, [a.address], web), makeSlice('ns', 'b', 1, [b.address], web)]))
  t.ok(await eventually(() => reloads.slice(before).some((x) => x.ok && x.services === 2), 1000), 'the watcher reloaded the file')
  t.same(await get('127.77.0.11', 8080), { ok: true, body: b.name }, 'b is back')
})

t.test('a first read that fails is an error, and nothing is left listening', async (t) => {
  await t.rejects(runProxyFromFile('/nonexistent/cluster.json', { nodeName: 'n', nodeIPs: ['127.77.255.1'], watch: false }), /ENOENT/)
  await t.rejects(runProxyFromFile('', { nodeName: 'n', nodeIPs: ['127.77.255.1'] }), TypeError)
})
