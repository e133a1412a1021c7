// ServiceProxy over TCP, end to end on loopback: services on 127.71.x.y, endpoints as real HTTP
// servers on 127.72.x.y, clients from 127.73.x.y. Spread, ClientIP affinity, failover, a
// rolling update without a failed new connection, refusal without endpoints, NodePorts and
// external IPs, byte integrity with half-close, counters, clean shutdown.
import * as net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import { ServiceProxy } from '../../lib/service-proxy/index.js'
import { makeService, makeSlice, port, type EP } from '../fixtures/objects'
import { eventually, get, httpEndpoint, tcpEchoEndpoint, type Endpoint } from './loopback'

const NODE_IP = '127.71.255.1'
const baseOptions: ProxierOptions = { mode: 'native', nodeName: 'test-node', nodeIPs: [NODE_IP], iptables: { localhostNodePorts: false }, seed: 11 }
const web = [{ name: 'http', port: 9080 }]

async function setup(t: { teardown(fn: () => unknown): void }, opts: { svc: number; endpoints: number; extra?: object; proxier?: Partial<ProxierOptions> }) {
  const clusterIP = `127.71.${opts.svc}.10`
  const eps: Endpoint[] = []
  for (let i = 1; i <= opts.endpoints; i++) eps.push(await httpEndpoint(`127.72.${opts.svc}.${i}`, 9080))
  const proxier = new Proxier({ ...baseOptions, ...opts.proxier })
  proxier.applyService(makeService('ns', 'web', { clusterIP, ports: [port('http', 8080)], ...opts.extra }))
  proxier.applyEndpointSlice(makeSlice('ns', 'web', 1, eps.map((e) => e.address), web))
  const proxy = new ServiceProxy({ proxier })
  await proxy.start()
  t.teardown(async () => {
    await proxy.close({ drainMs: 0 })
    await Promise.all(eps.map((e) => e.close()))
  })
  return { clusterIP, eps, proxier, proxy }
}

function countBodies(replies: { ok: boolean; body?: string }[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of replies) if (r.ok) out[r.body!] = (out[r.body!] ?? 0) + 1
  return out
}

t.test('new connections spread across the endpoints; counters agree', async (t) => {
  const { clusterIP, eps, proxy } = await setup(t, { svc: 1, endpoints: 3 })
  t.same(
    proxy.listeners().map((l) => [l.protocol, l.address, l.port, l.state]),
    [['TCP', clusterIP, 8080, 'listening']],
    'one listener on the cluster IP',
  )
  const replies = []
  for (let i = 0; i < 60; i++) replies.push(await get(clusterIP, 8080))
  t.equal(replies.filter((r) => r.ok).length, 60, 'every request answered')
  const seen = countBodies(replies)
  t.same(Object.keys(seen).sort(), eps.map((e) => e.name).sort(), 'every endpoint took connections')
  const c = proxy.counters()['ns/web:http']
  t.equal(c.connections, 60)
  t.same(c.endpoints, seen, 'per-endpoint counters match what the servers answered')
  t.equal(c.errors, 0)
  t.equal(c.refused, 0)
  t.ok(await eventually(() => proxy.counters()['ns/web:http'].activeConnections === 0), 'all connections closed')
  const done = proxy.counters()['ns/web:http']
  t.ok(done.bytesIn > 60 * 20 && done.bytesOut > 60 * 20, 'bytes counted both ways')
})

t.test('sessionAffinity ClientIP keeps each client on one endpoint', async (t) => {
  const { clusterIP, proxy } = await setup(t, { svc: 2, endpoints: 3, extra: { sessionAffinity: 'ClientIP' } })
  const perClient: Record<string, Set<string>> = {}
  for (let c = 1; c <= 6; c++) {
    const from = `127.73.2.${c}`
    perClient[from] = new Set()
    for (let i = 0; i < 8; i++) {
      const r = await get(clusterIP, 8080, from)
      perClient[from].add(r.ok ? r.body! : `failed: ${r.error}`)
    }
  }
  for (const [from, set] of Object.entries(perClient)) t.equal(set.size, 1, `${from} always reached ${[...set].join(', ')}`)
  t.equal(proxy.counters()['ns/web:http'].connections, 48)
})

t.test('failover: an endpoint goes away, then leaves the EndpointSlice', async (t) => {
  const { clusterIP, eps, proxier, proxy } = await setup(t, { svc: 3, endpoints: 3, proxier: { native: { scheduler: 'rr' } } })
  const [a, b, c] = eps
  await b.close()
  // Before the slice says so, connections sent to the dead endpoint are reset (as with
  // iptables: the proxy cannot know before the endpoints change).
  const before = []
  for (let i = 0; i < 9; i++) before.push(await get(clusterIP, 8080))
  t.ok(before.some((r) => !r.ok), 'round robin reached the dead endpoint')
  t.ok(proxy.counters()['ns/web:http'].errors > 0, 'the connect failures are counted as errors')
  proxier.applyEndpointSlice(makeSlice('ns', 'web', 1, [a.address, c.address], web))
  await proxy.sync()
  const after = []
  for (let i = 0; i < 30; i++) after.push(await get(clusterIP, 8080))
  t.equal(after.filter((r) => r.ok).length, 30, 'after the update no connection fails')
  t.same(Object.keys(countBodies(after)).sort(), [a.name, c.name].sort(), 'the two live endpoints share the load')
})

t.test('rolling update: endpoints replaced one by one; no new connection fails; established ones drain', async (t) => {
  const svc = 4
  const clusterIP = `127.71.${svc}.10`
  const old = [await httpEndpoint(`127.72.${svc}.1`, 9080), await httpEndpoint(`127.72.${svc}.2`, 9080)]
  const fresh: Endpoint[] = []
  const proxier = new Proxier(baseOptions)
  proxier.applyService(makeService('ns', 'web', { clusterIP, ports: [port('http', 8080)] }))
  let current: EP[] = old.map((e) => ({ ip: e.address }))
  const publish = async () => {
    proxier.applyEndpointSlice(makeSlice('ns', 'web', 1, current, web))
    await proxy.sync()
    // Let some new connections run in every intermediate state.
    const target = results.length + 10
    await eventually(() => results.length >= target, 1000)
  }
  const proxy = new ServiceProxy({ proxier })
  proxier.applyEndpointSlice(makeSlice('ns', 'web', 1, current, web))
  await proxy.start()
  t.teardown(async () => {
    await proxy.close({ drainMs: 0 })
    await Promise.all([...old, ...fresh].map((e) => e.close().catch(() => {})))
  })

  // Background load: new connections one after another until told to stop (bounded).
  const results: { ok: boolean; body?: string; error?: string; phase: number }[] = []
  let phase = 0
  let stop = false
  const load = (async () => {
    for (let i = 0; i < 5000 && !stop; i++) {
      const p = phase
      const r = await get(clusterIP, 8080)
      results.push({ ...r, phase: p })
    }
  })()

  // An established connection to the first old endpoint, held open across the update.
  const held = net.connect({ host: clusterIP, port: 8080 })
  await new Promise((r) => held.once('connect', r))
  const ask = () =>
    new Promise<string>((resolve, reject) => {
      let buf = ''
      const onData = (d: Buffer) => {
        buf += d.toString()
        const i = buf.indexOf('\r\n\r\n')
        if (i >= 0 && buf.length > i + 4) {
          held.off('data', onData)
          resolve(buf.slice(i + 4))
        }
      }
      held.on('data', onData)
      held.once('error', reject)
      held.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
    })
  const heldEndpoint = await ask()
  t.ok(old.some((e) => e.name === heldEndpoint), `held connection is on an old endpoint (${heldEndpoint})`)

  const terminatingAt: Record<string, number> = {}
  for (let i = 0; i < old.length; i++) {
    const n = await httpEndpoint(`127.72.${svc}.${11 + i}`, 9080)
    fresh.push(n)
    // The new pod is ready; the old one is terminating (still serving while it drains).
    current = current.map((e) => (e.ip === old[i].address ? { ip: e.ip, ready: false, serving: true, terminating: true } : e))
    current.push({ ip: n.address })
    phase++
    terminatingAt[old[i].name] = phase
    await publish()
    if (old[i].name === heldEndpoint) t.equal(await ask(), heldEndpoint, 'the established connection still works while its endpoint terminates')
    // The old pod is gone from the slice, then stops.
    current = current.filter((e) => e.ip !== old[i].address)
    phase++
    await publish()
    if (old[i].name === heldEndpoint) {
      t.equal(await ask(), heldEndpoint, 'and keeps working after its endpoint left the slice (conntrack keeps it)')
      held.end()
      await new Promise((r) => held.once('close', r))
    }
    await old[i].close()
  }
  phase++
  const finalPhase = phase
  // Let the load run a little in the final state, then stop it.
  const target = results.length + 20
  await eventually(() => results.length >= target, 1000)
  stop = true
  await load

  t.ok(results.length >= 60, `${results.length} new connections made during the update`)
  t.same([...new Set(results.map((r) => r.phase))], [0, 1, 2, 3, 4, 5], 'connections were made in every phase')
  t.same(results.filter((r) => !r.ok), [], 'no new connection failed')
  const wrong = results.filter((r) => r.ok && r.body !== undefined && terminatingAt[r.body] !== undefined && r.phase >= terminatingAt[r.body])
  t.same(wrong, [], 'no connection opened after its endpoint turned terminating went to it')
  const last = results.filter((r) => r.phase === finalPhase)
  t.ok(last.length > 0 && last.every((r) => fresh.some((e) => e.name === r.body)), 'in the end only new endpoints answer')
  t.equal(proxy.counters()['ns/web:http'].errors, 0)
})

t.test('a service without endpoints refuses with a reset', async (t) => {
  const clusterIP = '127.71.5.10'
  const proxier = new Proxier(baseOptions)
  proxier.applyService(makeService('ns', 'empty', { clusterIP, ports: [port('http', 8080)] }))
  const proxy = new ServiceProxy({ proxier })
  await proxy.start()
  t.teardown(() => proxy.close({ drainMs: 0 }))
  const r = await get(clusterIP, 8080)
  t.equal(r.ok, false)
  t.equal(r.error, 'ECONNRESET', 'the client sees a TCP reset')
  const c = proxy.counters()['ns/empty:http']
  t.equal(c.refused, 1)
  t.equal(c.connections, 0)
})

t.test('NodePort on the node IP, local external IPs; non-local ones are skipped', async (t) => {
  const svc = 6
  const ep = await httpEndpoint(`127.72.${svc}.1`, 9080)
  const proxier = new Proxier(baseOptions)
  proxier.applyService(
    makeService('ns', 'np', {
      type: 'NodePort',
      clusterIP: `127.71.${svc}.10`,
      externalIPs: [`127.71.${svc}.20`, '198.51.100.7'],
      ports: [port('http', 8080, { nodePort: 30606 })],
    }),
  )
  proxier.applyEndpointSlice(makeSlice('ns', 'np', 1, [ep.address], web))
  const proxy = new ServiceProxy({ proxier })
  const s = await proxy.start()
  t.teardown(async () => {
    await proxy.close({ drainMs: 0 })
    await ep.close()
  })
  const byAddress = Object.fromEntries(proxy.listeners().map((l) => [`${l.address}:${l.port}`, `${l.kind} ${l.state}`]))
  t.same(byAddress, {
    [`127.71.${svc}.10:8080`]: 'clusterIP listening',
    [`127.71.${svc}.20:8080`]: 'externalIP listening',
    '198.51.100.7:8080': 'externalIP skipped',
    [`${NODE_IP}:30606`]: 'nodePort listening',
  })
  t.equal(s.listenersOpened, 3)
  for (const [host, p] of [[`127.71.${svc}.10`, 8080], [`127.71.${svc}.20`, 8080], [NODE_IP, 30606]] as const) {
    const r = await get(host, p)
    t.same(r, { ok: true, body: ep.name }, `${host}:${p} reaches the endpoint`)
  }
  // Deleting the Service closes its listeners.
  proxier.deleteService('ns/np')
  const after = await proxy.sync()
  t.equal(after.listenersClosed, 3)
  t.same(proxy.listeners(), [])
  const gone = await get(`127.71.${svc}.10`, 8080)
  t.equal(gone.error, 'ECONNREFUSED', 'nothing listens any more')
})

t.test('bytes arrive intact both ways, with backpressure and half-close', async (t) => {
  const svc = 7
  const echo = await tcpEchoEndpoint(`127.72.${svc}.1`, 9090)
  const proxier = new Proxier(baseOptions)
  proxier.applyService(makeService('ns', 'echo', { clusterIP: `127.71.${svc}.10`, ports: [port('tcp', 9090)] }))
  proxier.applyEndpointSlice(makeSlice('ns', 'echo', 1, [echo.address], [{ name: 'tcp', port: 9090 }]))
  const proxy = new ServiceProxy({ proxier })
  await proxy.start()
  t.teardown(async () => {
    await proxy.close({ drainMs: 0 })
    await echo.close()
  })
  const payload = randomBytes(8 * 1024 * 1024)
  const sock = net.connect({ host: `127.71.${svc}.10`, port: 9090 })
  const chunks: Buffer[] = []
  // The client reads slowly at first, so the proxy has to hold the endpoint back.
  sock.pause()
  sock.on('data', (d) => chunks.push(d))
  const closed = new Promise((r) => sock.once('close', r))
  await new Promise((r) => sock.once('connect', r))
  const tuple = { src: '127.0.0.1', sport: sock.localPort!, dst: `127.71.${svc}.10`, dport: 9090, protocol: 'TCP' as const }
  t.ok(await eventually(() => proxier.dataplane!.lookupFlow(tuple)?.state === 'established'), 'conntrack saw the handshake')
  sock.write(payload)
  sock.end()
  await new Promise((r) => setTimeout(r, 100))
  sock.resume()
  await closed
  const got = Buffer.concat(chunks)
  const trailer = `bytes=${payload.length}`
  t.equal(got.length, payload.length + trailer.length, 'everything echoed, then the trailer sent after our FIN')
  t.equal(createHash('sha256').update(got.subarray(0, payload.length)).digest('hex'), createHash('sha256').update(payload).digest('hex'), 'same bytes')
  t.equal(got.subarray(payload.length).toString(), trailer, 'the endpoint saw our FIN and could still answer (half-close)')
  t.ok(await eventually(() => proxy.counters()['ns/echo:tcp'].activeConnections === 0))
  const c = proxy.counters()['ns/echo:tcp']
  t.equal(proxier.dataplane!.lookupFlow(tuple)?.state, 'time-wait', 'and both FINs and the last ACK')
  t.equal(c.bytesIn, payload.length)
  t.equal(c.bytesOut, payload.length + trailer.length)
})

t.test('clean shutdown: listeners close, idle connections are reset after the drain period', async (t) => {
  const { clusterIP, eps, proxy } = await setup(t, { svc: 8, endpoints: 1 })
  const held = net.connect({ host: clusterIP, port: 8080 })
  await new Promise((r) => held.once('connect', r))
  held.on('error', () => {})
  t.ok(await eventually(() => proxy.activeConnections === 1), 'one connection open')
  const closed = new Promise((r) => held.once('close', r))
  await proxy.close({ drainMs: 20 })
  await closed
  t.equal(proxy.activeConnections, 0, 'every session ended')
  t.same(proxy.listeners(), [])
  t.equal((await get(clusterIP, 8080)).error, 'ECONNREFUSED', 'no listener left')
  t.equal(eps[0].name, `127.72.8.1:9080`)
  await t.rejects(proxy.sync(), /closed/, 'a closed proxy does not sync')
})

t.test('a frontend that cannot be bound is reported, counted once, and retried at each sync', async (t) => {
  const svc = 9
  const clusterIP = `127.71.${svc}.10`
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(8080, clusterIP, () => resolve()))
  const ep = await httpEndpoint(`127.72.${svc}.1`, 9080)
  const proxier = new Proxier(baseOptions)
  proxier.applyService(makeService('ns', 'busy', { clusterIP, ports: [port('http', 8080)] }))
  proxier.applyEndpointSlice(makeSlice('ns', 'busy', 1, [ep.address], web))
  const errors: string[] = []
  const proxy = new ServiceProxy({ proxier, onError: (e, where) => errors.push(`${where}: ${e.message}`) })
  t.teardown(async () => {
    await proxy.close({ drainMs: 0 })
    await ep.close()
  })
  const first = await proxy.start()
  t.equal(first.listenersFailed, 1)
  t.match(proxy.listeners()[0], { state: 'failed', error: /EADDRINUSE/ })
  t.equal((await proxy.sync()).listenersFailed, 1, 'retried, still failing')
  t.equal(proxy.counters()['ns/busy:http'].errors, 1, 'the same failure is counted once')
  t.equal(errors.length, 1, 'and reported once')
  await new Promise<void>((resolve) => blocker.close(() => resolve()))
  const third = await proxy.sync()
  t.equal(third.listenersOpened, 1, 'the address is free now: listening')
  t.same(await get(clusterIP, 8080), { ok: true, body: ep.name })
})

t.test('options are checked', async (t) => {
  t.throws(() => new ServiceProxy({} as never), TypeError)
  const proxier = new Proxier(baseOptions)
  t.throws(() => new ServiceProxy({ proxier, connectTimeoutMs: -1 }), /connectTimeoutMs/)
  t.throws(() => new ServiceProxy({ proxier, udpIdleTimeoutMs: 0 }), /udpIdleTimeoutMs/)
})
