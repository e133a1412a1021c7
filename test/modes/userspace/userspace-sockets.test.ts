// Mode 'userspace' with its sockets open (userspace.listen): real TCP and UDP through the
// proxy port of each ServicePort on 127.0.0.1 to loopback endpoints (127.76.x.y), round-robin
// in the order the view shows, ClientIP affinity, counters, and listeners that follow sync().
// Clients connect to the proxy port itself: the portal rules that would send cluster-IP
// traffic there are not loaded into a kernel here. Network safety: loopback only.
import * as net from 'node:net'
import t from 'tap'
import { Proxier, type ProxierOptions, type UserspaceMode } from '../../../lib/modes/index.js'
import { makeService, makeSlice, port } from '../../fixtures/objects'
import { eventually, get, httpEndpoint, udpAsk, udpClient, udpEchoEndpoint, type Endpoint } from '../../service-proxy/loopback'

const base: ProxierOptions = {
  mode: 'userspace', nodeName: 'node-a', nodeIPs: ['127.0.0.1'], seed: 5,
  userspace: { listen: true, bindAddress: '127.0.0.1', udpIdleTimeout: '5s' },
}

async function setup(t: { teardown(fn: () => unknown): void }, o: { net: number; endpoints: number; protocol?: 'TCP' | 'UDP'; affinity?: boolean }) {
  const protocol = o.protocol ?? 'TCP'
  const eps: Endpoint[] = []
  for (let i = 1; i <= o.endpoints; i++) eps.push(protocol === 'TCP' ? await httpEndpoint(`127.76.${o.net}.${i}`, 9080) : await udpEchoEndpoint(`127.76.${o.net}.${i}`, 9053))
  const p = new Proxier(base)
  const affinity = o.affinity ? { sessionAffinity: 'ClientIP' as const } : {}
  p.applyService(makeService('ns', 'web', { clusterIP: `172.30.${o.net}.10`, ports: [port('p', 80, { protocol })], ...affinity }))
  p.applyEndpointSlice(makeSlice('ns', 'web', 1, eps.map((e) => e.address), [{ name: 'p', port: eps[0]?.port ?? 9080, protocol }]))
  p.sync()
  const view = p.inspect()
  if (view.mode !== 'userspace') throw new Error('expected the userspace view')
  const us: UserspaceMode = view.userspace
  await us.settled()
  t.teardown(async () => {
    await us.close()
    await Promise.all(eps.map((e) => e.close()))
  })
  return { p, us, eps, proxyPort: () => us.servicePorts()[0]!.proxyPort }
}

t.test('TCP: a listener per ServicePort; new connections follow the round-robin order; counters', async (t) => {
  const { us, eps, proxyPort } = await setup(t, { net: 1, endpoints: 3 })
  const [l] = us.listeners()
  t.match(l, { servicePort: 'ns/web:p', protocol: 'TCP', address: '127.0.0.1', state: 'listening' })
  t.ok(proxyPort() > 0, 'the kernel gave the listener its port')
  t.match(us.portalRules(), `-A KUBE-PORTALS-CONTAINER -d 172.30.1.10/32 -p tcp -m comment --comment "ns/web:p" -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:${proxyPort()}`, 'the rules name the port the kernel chose')
  const order = us.servicePorts()[0]!.endpoints
  const bodies = []
  for (let i = 0; i < 6; i++) bodies.push((await get('127.0.0.1', proxyPort())).body)
  t.same(bodies, [...order, ...order], 'each endpoint answered in turn, in the proxier\'s order')
  t.ok(await eventually(() => us.counters()['ns/web:p']?.activeConnections === 0), 'connections closed')
  const c = us.counters()['ns/web:p']!
  t.equal(c.connections, 6)
  t.same(c.endpoints, Object.fromEntries(eps.map((e) => [e.name, 2])))
  t.ok(c.bytesIn > 0 && c.bytesOut > 0, 'bytes both ways')
  t.equal(c.errors, 0)
})

t.test('TCP: ClientIP affinity keeps each client on one endpoint', async (t) => {
  const { proxyPort, us } = await setup(t, { net: 2, endpoints: 3, affinity: true })
  const byClient: Record<string, Set<string>> = {}
  for (const client of ['127.77.0.1', '127.77.0.2', '127.77.0.3']) {
    byClient[client] = new Set()
    for (let i = 0; i < 3; i++) byClient[client]!.add((await get('127.0.0.1', proxyPort(), client)).body!)
  }
  t.same(Object.values(byClient).map((s) => s.size), [1, 1, 1], 'one endpoint per client')
  t.equal(new Set(Object.values(byClient).map((s) => [...s][0])).size, 3, 'the three clients got the three endpoints')
  t.same(us.affinity('ns/web:p').map((a) => a.clientIP).sort(), ['127.77.0.1', '127.77.0.2', '127.77.0.3'])
})

t.test('UDP: a flow stays on its endpoint, the next client gets the next endpoint; counters', async (t) => {
  const { proxyPort, us } = await setup(t, { net: 3, endpoints: 2, protocol: 'UDP' })
  t.match(us.listeners()[0], { protocol: 'UDP', state: 'listening' })
  const order = us.servicePorts()[0]!.endpoints
  const a = await udpClient('127.77.1.1')
  const b = await udpClient('127.77.1.2')
  t.teardown(() => { a.close(); b.close() })
  const fromA = [await udpAsk(a, '127.0.0.1', proxyPort(), 'q1'), await udpAsk(a, '127.0.0.1', proxyPort(), 'q2')]
  const fromB = await udpAsk(b, '127.0.0.1', proxyPort(), 'q3')
  t.same(fromA, [`${order[0]}|q1`, `${order[0]}|q2`], 'both datagrams of one flow reach one endpoint')
  t.equal(fromB, `${order[1]}|q3`, 'a new client flow takes the next endpoint')
  const c = us.counters()['ns/web:p']!
  t.match(c, { udpFlows: 2, datagramsIn: 3, datagramsOut: 3, activeUdpFlows: 2 })
})

t.test('listeners follow sync(): a deleted Service stops listening, a new one starts', async (t) => {
  const { p, us, proxyPort } = await setup(t, { net: 4, endpoints: 1 })
  const old = proxyPort()
  t.equal((await get('127.0.0.1', old)).ok, true)
  p.deleteService('ns/web')
  p.sync()
  await us.settled()
  t.same(us.listeners(), [], 'no listener left')
  t.equal((await get('127.0.0.1', old)).error, 'ECONNREFUSED', 'the proxy port is closed')
  p.applyService(makeService('ns', 'web', { clusterIP: '172.30.4.10', ports: [port('p', 80)] }))
  p.sync()
  await us.settled()
  t.match(us.listeners(), [{ servicePort: 'ns/web:p', state: 'listening' }])
  t.equal((await get('127.0.0.1', proxyPort())).body, '127.76.4.1:9080', 'the new listener forwards')
})

t.test('no ready endpoint: the proxy accepts and closes; counted as refused', async (t) => {
  const { p, us, proxyPort } = await setup(t, { net: 5, endpoints: 1 })
  p.applyEndpointSlice(makeSlice('ns', 'web', 1, [{ ip: '127.76.5.1', ready: false }], [{ name: 'p', port: 9080 }]))
  p.sync()
  await us.settled()
  const closed = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: proxyPort() })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
    s.on('close', () => resolve('closed'))
    s.setTimeout(5000, () => { s.destroy(); resolve('timeout') })
  })
  t.match(closed, /ECONNRESET|closed/, 'the connection is closed, not forwarded')
  t.ok(await eventually(() => us.counters()['ns/web:p']?.refused === 1), 'refused counted')
})

t.test('a port taken by someone else: the listener fails, is shown so, and route() says nothing listens', async (t) => {
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()))
  const taken = (blocker.address() as net.AddressInfo).port
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const errors: string[] = []
  const p = new Proxier({ ...base, userspace: { listen: true, bindAddress: '127.0.0.1', portRange: `${taken}+1`, onError: (e) => errors.push(e.message) } })
  p.applyService(makeService('ns', 'web', { clusterIP: '172.30.6.10', ports: [port('p', 80)] }))
  p.sync()
  const view = p.inspect()
  if (view.mode !== 'userspace') throw new Error('expected the userspace view')
  await view.userspace.settled()
  t.teardown(() => view.userspace.close())
  t.match(view.userspace.listeners(), [{ port: taken, state: 'failed', error: /EADDRINUSE/ }])
  t.match(errors, [/EADDRINUSE/])
  const e = p.explain({ src: '10.0.0.2', sport: 1, dst: '172.30.6.10', dport: 80, protocol: 'TCP' })
  t.match(e.result, { action: 'reject', reason: 'not-programmed' })
  t.match(e.text, /nothing listens on proxy port/)
})

t.test('a dead endpoint: the failed dial is tried on the next endpoint, as TryConnectEndpoints did', async (t) => {
  const live = await httpEndpoint('127.76.7.1', 9080)
  t.teardown(() => live.close())
  // 127.76.7.2:9080 has no server: connecting to it is refused at once.
  const p = new Proxier({ ...base, userspace: { ...base.userspace, listen: true } })
  p.applyService(makeService('ns', 'web', { clusterIP: '172.30.7.10', sessionAffinity: 'ClientIP', ports: [port('p', 80)] }))
  p.applyEndpointSlice(makeSlice('ns', 'web', 1, ['127.76.7.1', '127.76.7.2'], [{ name: 'p', port: 9080 }]))
  p.sync()
  const view = p.inspect()
  if (view.mode !== 'userspace') throw new Error('expected the userspace view')
  const us = view.userspace
  await us.settled()
  t.teardown(() => us.close())
  const proxyPort = us.servicePorts()[0]!.proxyPort
  // Each redial takes a turn too, so after the first client every new client's first pick is
  // the dead endpoint: 4 failed dials when it comes first in the order, else 3.
  const deadFirst = us.servicePorts()[0]!.endpoints[0] === '127.76.7.2:9080'
  const replies = []
  for (const client of ['127.77.7.1', '127.77.7.2', '127.77.7.3', '127.77.7.4']) replies.push(await get('127.0.0.1', proxyPort, client))
  t.same(replies.map((r) => r.body), Array(4).fill('127.76.7.1:9080'), 'every connection reached the live endpoint')
  const c = us.counters()['ns/web:p']!
  t.equal(c.errors, deadFirst ? 4 : 3, 'every dial to the dead endpoint is counted (round-robin keeps walking into it)')
  t.same(us.affinity('ns/web:p').map((a) => a.endpoint), Array(4).fill('127.76.7.1:9080'), 'the redial reset the affinity of the clients it moved')
})
