// Mode 'userspace' through the Proxier, without sockets: proxy ports from --proxy-port-range,
// the portal rules kube-proxy's userspace proxier wrote (text for a fixture cluster), route()
// and explain() walking them to the proxy port and then round-robin / affinity, options errors.
import t from 'tap'
import { Proxier, type ProxierOptions } from '../../../lib/modes/index.js'
import { makeService, makeSlice, port, lbStatus } from '../../fixtures/objects'

const NODE = '192.168.0.2'
const base: ProxierOptions = {
  mode: 'userspace', nodeName: 'node-a', nodeIPs: [NODE], podCIDRs: ['10.0.0.0/8'], seed: 7,
  userspace: { portRange: '36000-36009' },
}

const svc1 = makeService('ns1', 'svc1', { type: 'NodePort', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: [port('p80', 80, { nodePort: 3001 })] })
const slice1 = makeSlice('ns1', 'svc1', 1, ['10.180.0.1', '10.180.0.2', '10.180.0.3'], [{ name: 'p80', port: 80 }])
const svc2 = makeService('ns2', 'dns', { clusterIP: '172.30.0.42', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [port('dns', 53, { protocol: 'UDP' })] })
const slice2 = makeSlice('ns2', 'dns', 1, ['10.180.1.1', '10.180.1.2'], [{ name: 'dns', port: 5353, protocol: 'UDP' }])
const svc3 = makeService('ns3', 'lb', { type: 'LoadBalancer', clusterIP: '172.30.0.43', ports: [port('p443', 443, { nodePort: 3003 })] }, lbStatus('1.2.3.4'))

/** One Service per sync, so proxy ports come in a known order. */
function fixture(options: Partial<ProxierOptions> = {}) {
  const p = new Proxier({ ...base, ...options })
  for (const objects of [[svc1, slice1], [svc2, slice2], [svc3]]) {
    p.applyList(objects)
    const s = p.sync()
    if (s.errors.length > 0) throw s.errors[0]!.error
  }
  const view = p.inspect()
  if (view.mode !== 'userspace') throw new Error('expected the userspace view')
  return { p, us: view.userspace }
}

const FIXTURE_RULES = `*nat
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
-A KUBE-PORTALS-CONTAINER -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -j REDIRECT --to-ports 36000
-A KUBE-PORTALS-CONTAINER -d 192.168.99.11/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 36000
-A KUBE-PORTALS-CONTAINER -d 192.168.99.11/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 36000
-A KUBE-PORTALS-CONTAINER -d 172.30.0.42/32 -p udp -m comment --comment "ns2/dns:dns" -m udp --dport 53 -j REDIRECT --to-ports 36001
-A KUBE-PORTALS-CONTAINER -d 172.30.0.43/32 -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 443 -j REDIRECT --to-ports 36002
-A KUBE-PORTALS-CONTAINER -d 1.2.3.4/32 -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 443 -j REDIRECT --to-ports 36002
-A KUBE-PORTALS-HOST -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -j DNAT --to-destination 192.168.0.2:36000
-A KUBE-PORTALS-HOST -d 192.168.99.11/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 192.168.0.2:36000
-A KUBE-PORTALS-HOST -d 172.30.0.42/32 -p udp -m comment --comment "ns2/dns:dns" -m udp --dport 53 -j DNAT --to-destination 192.168.0.2:36001
-A KUBE-PORTALS-HOST -d 172.30.0.43/32 -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 443 -j DNAT --to-destination 192.168.0.2:36002
-A KUBE-PORTALS-HOST -d 1.2.3.4/32 -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 443 -j DNAT --to-destination 192.168.0.2:36002
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 3001 -j REDIRECT --to-ports 36000
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 3003 -j REDIRECT --to-ports 36002
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 3001 -j DNAT --to-destination 192.168.0.2:36000
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 3003 -j DNAT --to-destination 192.168.0.2:36002
COMMIT
*filter
:KUBE-NODEPORT-NON-LOCAL - [0:0]
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 36000 -m state --state NEW -j ACCEPT
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "ns3/lb:p443" -m tcp --dport 36002 -m state --state NEW -j ACCEPT
COMMIT
`

t.test('portal rules of a fixture cluster, as kube-proxy userspace mode wrote them', async (t) => {
  const { us } = fixture()
  t.equal(us.portalRules(), FIXTURE_RULES)
  t.same(us.servicePorts().map((s) => [s.servicePort, s.protocol, s.proxyPort]), [
    ['ns1/svc1:p80', 'TCP', 36000],
    ['ns2/dns:dns', 'UDP', 36001],
    ['ns3/lb:p443', 'TCP', 36002],
  ])
  t.same(us.listeners().map((l) => [l.servicePort, l.address, l.port, l.state]), [
    ['ns1/svc1:p80', '0.0.0.0', 36000, 'model'],
    ['ns2/dns:dns', '0.0.0.0', 36001, 'model'],
    ['ns3/lb:p443', '0.0.0.0', 36002, 'model'],
  ], 'a Proxier that does not listen shows the listener table it would open')
  t.match(us.jumpRules().nat[0], /^-I PREROUTING .* -j KUBE-PORTALS-CONTAINER$/)
})

t.test('a proxy bound to one address is DNATed to from containers too', async (t) => {
  const { us } = fixture({ userspace: { portRange: '36000-36009', bindAddress: '192.168.0.2' } })
  const text = us.portalRules()
  t.match(text, '-A KUBE-PORTALS-CONTAINER -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 80 -j DNAT --to-destination 192.168.0.2:36000')
  t.notMatch(text, /REDIRECT/)
})

interface RouteCase {
  name: string
  packet: { src: string; dst: string; dport: number; protocol?: 'TCP' | 'UDP'; hook?: 'output' | 'prerouting'; sport?: number }
  want: object
  steps?: RegExp[]
}

const routeCases: RouteCase[] = [
  { name: 'pod to cluster IP: KUBE-PORTALS-CONTAINER, REDIRECT to the proxy port', packet: { src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }, want: { action: 'dnat', servicePort: 'ns1/svc1:p80', masquerade: true }, steps: [/^-A KUBE-PORTALS-CONTAINER .*REDIRECT --to-ports 36000: REDIRECT/m, /round-robin: 10\.180\.0\.\d:80, endpoint 1 of 3/, /the endpoint sees the node's address/] },
  { name: 'node to cluster IP: KUBE-PORTALS-HOST DNAT to the node address', packet: { src: NODE, dst: '172.30.0.41', dport: 80, hook: 'output' }, want: { action: 'dnat', servicePort: 'ns1/svc1:p80' }, steps: [/^-A KUBE-PORTALS-HOST .*DNAT --to-destination 192\.168\.0\.2:36000/m] },
  { name: 'NodePort on the node IP from outside', packet: { src: '203.0.113.2', dst: NODE, dport: 3001 }, want: { action: 'dnat', servicePort: 'ns1/svc1:p80' }, steps: [/KUBE-NODEPORT-CONTAINER/] },
  { name: 'NodePort on localhost from the node', packet: { src: '127.0.0.1', dst: '127.0.0.1', dport: 3001, hook: 'output' }, want: { action: 'dnat', servicePort: 'ns1/svc1:p80' }, steps: [/KUBE-NODEPORT-HOST/] },
  { name: 'NodePort port on an address that is not the node\'s', packet: { src: '203.0.113.2', dst: '192.168.5.5', dport: 3001 }, want: { action: 'accept' } },
  { name: 'external IP from outside (not from a bridge port)', packet: { src: '203.0.113.2', dst: '192.168.99.11', dport: 80 }, want: { action: 'dnat', servicePort: 'ns1/svc1:p80' }, steps: [/physdev ! --physdev-is-in/] },
  { name: 'external IP from a local pod, not a node address: not proxied', packet: { src: '10.0.0.2', dst: '192.168.99.11', dport: 80 }, want: { action: 'accept' } },
  { name: 'load-balancer IP', packet: { src: '203.0.113.2', dst: '1.2.3.4', dport: 443 }, want: { action: 'reject', servicePort: 'ns3/lb:p443', reason: 'no-endpoints' }, steps: [/accepts the connection, has no endpoint to dial and closes it/] },
  { name: 'UDP with ClientIP affinity', packet: { src: '10.0.0.2', dst: '172.30.0.42', dport: 53, protocol: 'UDP' }, want: { action: 'dnat', servicePort: 'ns2/dns:dns' }, steps: [/remembered for ClientIP affinity/] },
  { name: 'cluster IP on a port no Service uses', packet: { src: '10.0.0.2', dst: '172.30.0.41', dport: 81 }, want: { action: 'accept' }, steps: [/no rule in KUBE-PORTALS-CONTAINER/] },
  { name: 'IPv6: not served by an IPv4 proxy', packet: { src: 'fd00::2', dst: 'fd00::41', dport: 80 }, want: { action: 'accept' } },
]

for (const c of routeCases) {
  t.test(`route: ${c.name}`, async (t) => {
    const { p } = fixture()
    const packet = { sport: 40000, protocol: 'TCP' as const, ...c.packet }
    const e = p.explain(packet)
    t.match(e.result, c.want)
    const text = e.steps.map((s) => s.text).join('\n')
    for (const re of c.steps ?? []) t.match(text, re)
  })
}

t.test('route() follows the round-robin order the view shows; a connection keeps its endpoint', async (t) => {
  const { p, us } = fixture()
  const sp = us.servicePorts().find((s) => s.servicePort === 'ns1/svc1:p80')!
  t.same([...sp.endpoints].sort(), ['10.180.0.1:80', '10.180.0.2:80', '10.180.0.3:80'])
  const picks = []
  for (let i = 0; i < 6; i++) {
    const r = p.route({ src: '10.0.0.2', sport: 41000 + i, dst: '172.30.0.41', dport: 80, protocol: 'TCP', tcpFlags: 0x02 })
    picks.push(r.action === 'dnat' ? r.endpoint : r.action)
  }
  t.same(picks, [...sp.endpoints, ...sp.endpoints], 'new connections walk the shuffled order')
  const ack = p.route({ src: '10.0.0.2', sport: 41001, dst: '172.30.0.41', dport: 80, protocol: 'TCP', tcpFlags: 0x10 })
  t.match(ack, { action: 'dnat', endpoint: sp.endpoints[1] }, 'an ACK of an open connection stays on its endpoint')
  t.match(p.route({ src: '10.0.0.2', sport: 49999, dst: '172.30.0.41', dport: 80, protocol: 'TCP', tcpFlags: 0x10 }), { action: 'reject' }, 'an ACK of no connection is reset')
  t.equal(us.servicePorts().find((s) => s.servicePort === 'ns1/svc1:p80')!.next, 0, 'six picks over three endpoints end where they started')
})

t.test('ClientIP affinity: a client stays until the timeout, the entry is visible', async (t) => {
  const { p, us } = fixture()
  const ask = (src: string, sport: number, now: number) => {
    const r = p.route({ src, sport, dst: '172.30.0.42', dport: 53, protocol: 'UDP', now })
    return r.action === 'dnat' ? r.endpoint : r.action
  }
  const first = ask('10.0.0.2', 1000, 100)
  t.equal(ask('10.0.0.2', 1001, 130), first, 'another source port of the same client: same endpoint')
  const other = ask('10.0.0.3', 1000, 131)
  t.not(other, first, 'the next client gets the next endpoint')
  t.same(us.affinity('ns2/dns:dns', 131).map((a) => [a.clientIP, a.endpoint]).sort(), [['10.0.0.2', first], ['10.0.0.3', other]])
  t.equal(ask('10.0.0.4', 1000, 132), first, 'a third client: round-robin wrapped around')
  t.equal(ask('10.0.0.2', 1002, 250), other, 'after 60 s idle the entry expired: round-robin again, not the remembered endpoint')
})

t.test('endpoints change at sync: the order is rebuilt, the flows of a removed endpoint move', async (t) => {
  const { p, us } = fixture()
  const first = p.route({ src: '10.0.0.2', sport: 1000, dst: '172.30.0.42', dport: 53, protocol: 'UDP', now: 1 })
  if (first.action !== 'dnat') throw new Error('expected dnat')
  const keep = ['10.180.1.1', '10.180.1.2'].find((ip) => `${ip}:5353` !== first.endpoint)!
  p.applyEndpointSlice(makeSlice('ns2', 'dns', 1, [keep], [{ name: 'dns', port: 5353, protocol: 'UDP' }]))
  p.sync()
  t.same(us.servicePorts().find((s) => s.servicePort === 'ns2/dns:dns')!.endpoints, [`${keep}:5353`])
  t.match(p.route({ src: '10.0.0.2', sport: 1000, dst: '172.30.0.42', dport: 53, protocol: 'UDP', now: 1.1 }), { action: 'dnat', endpoint: `${keep}:5353` })
  p.deleteService(svc1)
  p.sync()
  t.notMatch(us.portalRules(), /svc1/, 'a deleted Service loses its rules')
  t.same(us.servicePorts().map((s) => s.servicePort), ['ns2/dns:dns', 'ns3/lb:p443'])
  p.applyList([svc1, slice1])
  p.sync()
  t.equal(us.servicePorts().find((s) => s.servicePort === 'ns1/svc1:p80')!.proxyPort, 36003, 'a released port is reused only after the rest of the range')
})

t.test('a used-up port range refuses the Service and retries it next sync', async (t) => {
  const p = new Proxier({ ...base, userspace: { portRange: '36000+1' } })
  p.applyList([svc1, slice1])
  t.same(p.sync().errors, [])
  p.applyList([svc2, slice2])
  const s = p.sync()
  t.equal(s.errors.length, 1)
  t.match(s.errors[0], { service: 'ns2/dns', error: { code: 'FULL', message: /no free proxy port in 36000-36000/ } })
  t.match(p.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.42', dport: 53, protocol: 'UDP' }), { action: 'accept' }, 'nothing half-applied')
  p.deleteService(svc1)
  t.same(p.sync().errors, [], 'the port freed by the deletion takes the retried Service')
  t.match(p.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.42', dport: 53, protocol: 'UDP' }), { action: 'dnat', servicePort: 'ns2/dns:dns' })
})

t.test('without a port range nor listening, ports are numbered from 32768', async (t) => {
  const { us } = fixture({ userspace: {} })
  t.same(us.servicePorts().map((s) => s.proxyPort), [32768, 32769, 32770])
})

t.test('userspace options: bad values are errors naming the field', async (t) => {
  const cases: [object, RegExp][] = [
    [{ bindAddres: '0.0.0.0' }, /userspace: unknown option "bindAddres"; did you mean "bindAddress"\?/],
    [{ bindAddress: 'any' }, /userspace\.bindAddress must be an IP address, got "any"/],
    [{ portRange: '100' }, /userspace\.portRange must be "first-last" or "first\+count"/],
    [{ portRange: '300-200' }, /userspace\.portRange must name ports first\.\.last/],
    [{ portRange: '0-10' }, /ports 1\.\.65535/],
    [{ udpIdleTimeout: 'soon' }, /userspace\.udpIdleTimeout must be seconds or a duration/],
    [{ udpIdleTimeout: 0 }, /userspace\.udpIdleTimeout must be more than 0/],
    [{ listen: 'yes' }, /userspace\.listen must be a boolean/],
    [{ connectTimeoutMs: -1 }, /userspace\.connectTimeoutMs must be a positive number/],
  ]
  for (const [userspace, message] of cases) {
    const err = t.throws(() => new Proxier({ ...base, userspace } as ProxierOptions), message) as { code?: string }
    t.equal(err.code, 'INVALID')
  }
  t.throws(() => new Proxier({ ...base, mode: 'native', userspace: { listen: 1 } } as unknown as ProxierOptions), /userspace\.listen/, 'the section is checked in any mode')
})

t.test('IPv6: bound to ::, the IPv6 ServicePorts get /128 portal rules; IPv4 ones are not served', async (t) => {
  const p = new Proxier({ mode: 'userspace', nodeName: 'node-a', nodeIPs: ['192.168.0.2', 'fd00::2'], seed: 7, userspace: { bindAddress: '::', portRange: '36100-36109' } })
  p.applyList([
    makeService('ns', 'v6', { clusterIP: 'fd00:30::41', ipFamilies: ['IPv6'], ports: [port('p', 80)] }),
    makeSlice('ns', 'v6', 1, ['fd00:180::1'], [{ name: 'p', port: 8080 }], 'IPv6'),
    svc1, slice1,
  ])
  t.same(p.sync().errors, [])
  const view = p.inspect()
  if (view.mode !== 'userspace') throw new Error('expected the userspace view')
  t.same(view.userspace.servicePorts().map((s) => [s.servicePort, s.proxyPort]), [['ns/v6:p', 36100]])
  t.match(view.userspace.portalRules(), '-A KUBE-PORTALS-HOST -d fd00:30::41/128 -p tcp -m comment --comment "ns/v6:p" -m tcp --dport 80 -j DNAT --to-destination [fd00::2]:36100')
  t.match(p.route({ src: 'fd00:1::5', sport: 1, dst: 'fd00:30::41', dport: 80, protocol: 'TCP' }), { action: 'dnat', endpoint: '[fd00:180::1]:8080', address: 'fd00:180::1', port: 8080 })
  t.match(p.route({ src: '10.0.0.2', sport: 1, dst: '172.30.0.41', dport: 80, protocol: 'TCP' }), { action: 'accept' })
})
