// ServiceProxy over UDP, end to end on loopback: services on 127.74.x.y, echo endpoints on
// 127.75.x.y, clients on 127.76.x.y. A socket per client flow, spread and ClientIP affinity,
// flows moving off removed or terminating endpoints, refusal without endpoints, idle timeout.
import t from 'tap'
import type * as dgram from 'node:dgram'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import { ServiceProxy } from '../../lib/service-proxy/index.js'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { eventually, udpAsk, udpClient, udpEchoEndpoint, type Endpoint } from './loopback'

const baseOptions: ProxierOptions = { mode: 'native', nodeName: 'test-node', nodeIPs: ['127.74.255.1'], iptables: { localhostNodePorts: false }, seed: 5 }
const dns = [{ name: 'dns', port: 5353, protocol: 'UDP' as const }]

async function setup(
  t: { teardown(fn: () => unknown): void },
  opts: { svc: number; endpoints: number; extra?: object; udpIdleTimeoutMs?: number },
) {
  const clusterIP = `127.74.${opts.svc}.10`
  const eps: Endpoint[] = []
  for (let i = 1; i <= opts.endpoints; i++) eps.push(await udpEchoEndpoint(`127.75.${opts.svc}.${i}`, 5353))
  const proxier = new Proxier(baseOptions)
  proxier.applyService(makeService('ns', 'dns', { clusterIP, ports: [port('dns', 5300, { protocol: 'UDP' })], ...opts.extra }))
  if (eps.length > 0) proxier.applyEndpointSlice(makeSlice('ns', 'dns', 1, eps.map((e) => e.address), dns))
  const proxy = new ServiceProxy({ proxier, udpIdleTimeoutMs: opts.udpIdleTimeoutMs })
  await proxy.start()
  const clients: dgram.Socket[] = []
  const client = async (from: string) => {
    const c = await udpClient(from)
    clients.push(c)
    return c
  }
  t.teardown(async () => {
    for (const c of clients) c.close()
    await proxy.close({ drainMs: 0 })
    await Promise.all(eps.map((e) => e.close().catch(() => {})))
  })
  return { clusterIP, eps, proxier, proxy, client }
}

const endpointOf = (reply: string | undefined) => reply?.split('|')[0]

t.test('datagrams are forwarded and answered; each client flow sticks to its endpoint; flows spread', async (t) => {
  const { clusterIP, eps, proxy, client } = await setup(t, { svc: 1, endpoints: 3 })
  t.same(proxy.listeners().map((l) => [l.protocol, l.address, l.port, l.state]), [['UDP', clusterIP, 5300, 'listening']])
  const seen = new Set<string>()
  for (let i = 0; i < 30; i++) {
    const c = await client('127.76.1.1')
    const first = await udpAsk(c, clusterIP, 5300, `q${i}`)
    t.match(first, new RegExp(`\\|q${i}$`), `client ${i} got its answer`)
    const again = await udpAsk(c, clusterIP, 5300, `r${i}`)
    t.equal(endpointOf(again), endpointOf(first), `client ${i}'s second datagram reached the same endpoint`)
    seen.add(endpointOf(first)!)
  }
  t.same([...seen].sort(), eps.map((e) => e.name).sort(), 'client flows spread over every endpoint')
  const c = proxy.counters()['ns/dns:dns']
  t.equal(c.udpFlows, 30)
  t.equal(c.activeUdpFlows, 30)
  t.equal(c.datagramsIn, 60)
  t.equal(c.datagramsOut, 60)
  t.equal(c.refused + c.errors, 0)
})

t.test('ClientIP affinity: every source port of a client reaches one endpoint', async (t) => {
  const { clusterIP, client } = await setup(t, { svc: 2, endpoints: 3, extra: { sessionAffinity: 'ClientIP' } })
  for (let host = 1; host <= 4; host++) {
    const got = new Set<string | undefined>()
    for (let i = 0; i < 6; i++) got.add(endpointOf(await udpAsk(await client(`127.76.2.${host}`), clusterIP, 5300, 'x')))
    t.equal(got.size, 1, `127.76.2.${host}: one endpoint (${[...got].join(', ')})`)
  }
})

t.test('flows move to a live endpoint when theirs is removed or stops serving', async (t) => {
  const { clusterIP, eps, proxier, proxy, client } = await setup(t, { svc: 3, endpoints: 2 })
  const [a, b] = eps
  // Find a client flow on each endpoint.
  const on: Record<string, dgram.Socket> = {}
  for (let i = 0; i < 40 && Object.keys(on).length < 2; i++) {
    const c = await client('127.76.3.1')
    const ep = endpointOf(await udpAsk(c, clusterIP, 5300, 'hello'))!
    if (on[ep] === undefined) on[ep] = c
  }
  t.same(Object.keys(on).sort(), [a.name, b.name].sort(), 'a flow on each endpoint')

  // a is removed from the slice: its flow moves to b on the next datagram.
  proxier.applyEndpointSlice(makeSlice('ns', 'dns', 1, [b.address], dns))
  await proxy.sync()
  t.equal(endpointOf(await udpAsk(on[a.name], clusterIP, 5300, 'after-remove')), b.name, 'the flow of the removed endpoint moved')
  t.equal(endpointOf(await udpAsk(on[b.name], clusterIP, 5300, 'still')), b.name, 'the other flow stayed')
  t.equal(proxy.counters()['ns/dns:dns'].udpFlowsMoved, 1)

  // a comes back ready, b stops serving (terminating, not serving): b's flows move to a
  // (kube-proxy removes UDP conntrack entries of endpoints that stop serving).
  proxier.applyEndpointSlice(makeSlice('ns', 'dns', 1, [a.address, { ip: b.address, ready: false, serving: false, terminating: true }], dns))
  const s = await proxy.sync()
  t.ok(s.proxier.flowsRemoved >= 2, `the reconciler removed b's flows (${s.proxier.flowsRemoved})`)
  t.equal(endpointOf(await udpAsk(on[a.name], clusterIP, 5300, 'x')), a.name)
  t.equal(endpointOf(await udpAsk(on[b.name], clusterIP, 5300, 'y')), a.name)
  t.equal(proxy.counters()['ns/dns:dns'].udpFlowsMoved, 3)
})

t.test('no endpoints: datagrams are refused (dropped and counted)', async (t) => {
  const { clusterIP, proxy, client } = await setup(t, { svc: 4, endpoints: 0 })
  const c = await client('127.76.4.1')
  t.equal(await udpAsk(c, clusterIP, 5300, 'anyone?', 300), undefined, 'no answer')
  t.ok(await eventually(() => proxy.counters()['ns/dns:dns']?.refused === 1), 'counted as refused')
  t.equal(proxy.counters()['ns/dns:dns'].udpFlows, 0)
})

t.test('idle flows are closed after the idle timeout; the next datagram opens a new one', async (t) => {
  const { clusterIP, proxy, client } = await setup(t, { svc: 5, endpoints: 1, udpIdleTimeoutMs: 50 })
  const c = await client('127.76.5.1')
  t.ok(await udpAsk(c, clusterIP, 5300, 'one'))
  t.equal(proxy.counters()['ns/dns:dns'].activeUdpFlows, 1)
  t.ok(await eventually(() => proxy.counters()['ns/dns:dns'].activeUdpFlows === 0), 'the idle flow was closed')
  t.ok(await udpAsk(c, clusterIP, 5300, 'two'), 'a later datagram is still answered')
  t.equal(proxy.counters()['ns/dns:dns'].udpFlows, 2, 'through a new flow')
})
