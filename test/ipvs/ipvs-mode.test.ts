// The ipvs mode through the public Proxier: packets decided as IPVS with kube-proxy's ipsets and
// rules decides them (this kernel has no IPVS, so the expectations are kube-proxy's code and
// tests: pkg/proxy/ipvs/proxier.go, graceful_termination.go), ipvsState(), graceful
// termination, persistence and the options.
import t from 'tap'
import { Proxier, type ProxierOptions } from '../../lib/modes/index.js'
import type { Packet } from '../../lib/proxy/packet.js'
import { lbStatus, makeService, makeSlice, port } from '../fixtures/objects.js'

const NODE = '192.168.0.2'
const base: ProxierOptions = { mode: 'ipvs', nodeName: 'test-node', nodeIPs: [NODE], podCIDRs: ['10.0.0.0/8'], seed: 1 }
const ep = [{ name: 'p80', port: 8080 }]
const remote = (ip: string) => ({ ip, node: 'other-node' })
const local = (ip: string) => ({ ip, node: 'test-node' })

function cluster() {
  return [
    makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [port('p80', 80)] }),
    makeSlice('ns', 'web', 1, [remote('10.1.0.5'), local('10.1.0.6')], ep),
    makeService('ns', 'np', { type: 'NodePort', clusterIP: '172.30.0.11', ports: [port('p80', 80, { nodePort: 30080 })] }),
    makeSlice('ns', 'np', 1, [remote('10.1.0.7')], ep),
    makeService('ns', 'lbl', { type: 'LoadBalancer', clusterIP: '172.30.0.12', ports: [port('p80', 80, { nodePort: 30081 })], externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }, lbStatus('203.0.113.10')),
    makeSlice('ns', 'lbl', 1, [remote('10.1.1.1')], ep),
    makeService('ns', 'fw', { type: 'LoadBalancer', clusterIP: '172.30.0.13', ports: [port('p80', 80, { nodePort: 30082 })], loadBalancerSourceRanges: ['198.51.100.0/24'] }, lbStatus('203.0.113.11')),
    makeSlice('ns', 'fw', 1, [remote('10.1.1.2')], ep),
    makeService('ns', 'empty', { clusterIP: '172.30.0.14', ports: [port('p80', 80)] }),
    makeService('ns', 'self', { clusterIP: '172.30.0.15', ports: [port('p80', 80)] }),
    makeSlice('ns', 'self', 1, [local('10.1.0.6')], ep),
  ]
}

function proxier(extra: Partial<ProxierOptions> = {}, objects = cluster()) {
  const p = new Proxier({ ...base, ...extra })
  p.applyList(objects)
  t.same(p.sync().errors, [])
  return p
}

const pkt = (src: string, dst: string, dport: number, extra: Partial<Packet> = {}): Packet => ({ src, sport: 40000, dst, dport, protocol: 'TCP', now: 1, ...extra })

t.test('packets as IPVS mode decides them', async (t) => {
  const cases: { name: string; packet: Packet; want: object }[] = [
    { name: 'pod to a cluster IP: no masquerade', packet: pkt('10.2.0.9', '172.30.0.10', 80), want: { action: 'dnat', servicePort: 'ns/web:p80', endpoint: '10.1.0.5:8080', address: '10.1.0.5', port: 8080, masquerade: false } },
    { name: 'the node to a cluster IP: KUBE-CLUSTER-IP marks it (outside the pod CIDR)', packet: pkt(NODE, '172.30.0.10', 80, { hook: 'output' }), want: { action: 'dnat', masquerade: true } },
    { name: 'outside to a NodePort: KUBE-NODE-PORT-TCP marks it', packet: pkt('203.0.113.2', NODE, 30080), want: { action: 'dnat', servicePort: 'ns/np:p80', endpoint: '10.1.0.7:8080', address: '10.1.0.7', port: 8080, masquerade: true } },
    { name: 'a localhost NodePort: no virtual server on 127.0.0.1 in IPVS mode', packet: pkt('127.0.0.1', '127.0.0.1', 30080, { hook: 'output' }), want: { action: 'accept' } },
    {
      name: 'Local policy without a local endpoint: IPVS still forwards to the cluster endpoint, keeping the source',
      packet: pkt('203.0.113.2', '203.0.113.10', 80), want: { action: 'dnat', servicePort: 'ns/lbl:p80', endpoint: '10.1.1.1:8080', address: '10.1.1.1', port: 8080, masquerade: false },
    },
    { name: 'an allowed source range', packet: pkt('198.51.100.7', '203.0.113.11', 80), want: { action: 'dnat', servicePort: 'ns/fw:p80', masquerade: true } },
    { name: 'a source outside the ranges: KUBE-SOURCE-RANGES-FIREWALL drops', packet: pkt('203.0.113.2', '203.0.113.11', 80), want: { action: 'drop', servicePort: 'ns/fw:p80', reason: 'source-range' } },
    { name: 'a cluster IP on a port no service uses: KUBE-IPVS-FILTER rejects', packet: pkt('10.2.0.9', '172.30.0.10', 81), want: { action: 'reject', reason: 'invalid-port' } },
    { name: 'a virtual server without real servers: ICMP port unreachable', packet: pkt('10.2.0.9', '172.30.0.14', 80), want: { action: 'reject', servicePort: 'ns/empty', reason: 'no-endpoints' } },
    { name: 'hairpin: KUBE-LOOP-BACK masquerades an endpoint reaching itself', packet: pkt('10.1.0.6', '172.30.0.15', 80), want: { action: 'dnat', endpoint: '10.1.0.6:8080', address: '10.1.0.6', port: 8080, masquerade: true } },
    { name: 'an address no service holds', packet: pkt('10.2.0.9', '172.31.0.1', 80), want: { action: 'accept' } },
  ]
  for (const c of cases) {
    const p = proxier()
    t.match(p.route(c.packet), c.want, c.name)
  }
})

t.test('rr takes the real servers in turn; established connections keep theirs', async (t) => {
  const p = proxier()
  const chosen = [1, 2, 3, 4].map((i) => (p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 40000 + i })) as { endpoint: string }).endpoint)
  t.same(chosen, ['10.1.0.5:8080', '10.1.0.6:8080', '10.1.0.5:8080', '10.1.0.6:8080'])
  t.match(p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 40001, now: 2 })), { endpoint: '10.1.0.5:8080' })
  const e = p.explain(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 40001, now: 3 }))
  t.match(e.steps.map((s) => s.text).join('\n'), /ipvs: established connection keeps 10\.1\.0\.5:8080/)
  // The reply direction is the same connection.
  t.same(p.route({ src: '10.1.0.5', sport: 8080, dst: '10.2.0.9', dport: 40001, protocol: 'TCP', now: 3 }), { action: 'accept' })
})

t.test('ClientIP affinity is IPVS persistence: a client stays on one real server', async (t) => {
  const objects = [
    makeService('ns', 'aff', { clusterIP: '172.30.0.20', ports: [port('p80', 80)], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
    makeSlice('ns', 'aff', 1, [remote('10.1.0.5'), remote('10.1.0.6'), remote('10.1.0.7')], ep),
  ]
  const p = proxier({}, objects)
  const vs = p.ipvsState().virtualServers.find((v) => v.address === '172.30.0.20')!
  t.match(vs, { flags: 1, timeout: 60, scheduler: 'rr' })
  const first = p.route(pkt('10.2.0.9', '172.30.0.20', 80, { sport: 1000, tcpFlags: 0x02 })) as { endpoint: string }
  for (let i = 1; i <= 5; i++) t.match(p.route(pkt('10.2.0.9', '172.30.0.20', 80, { sport: 1000 + i, now: 1 + i, tcpFlags: 0x02 })), { endpoint: first.endpoint })
  t.not((p.route(pkt('10.2.0.8', '172.30.0.20', 80, { sport: 2000, now: 7, tcpFlags: 0x02 })) as { endpoint: string }).endpoint, first.endpoint, 'another client is scheduled')
  // Long after every connection of the client ended (SYN_RECV lasts 60 s) and the template's 60 s: scheduled again.
  const later = p.explain(pkt('10.2.0.9', '172.30.0.20', 80, { sport: 3000, now: 1000, tcpFlags: 0x02 }))
  t.notMatch(later.steps.map((s) => s.text).join('\n'), /persistence/)
})

t.test('graceful termination: a removed TCP endpoint drains with weight 0', async (t) => {
  const objects = [makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [port('p80', 80)] }), makeSlice('ns', 'web', 1, [remote('10.1.0.5'), remote('10.1.0.6')], ep)]
  const p = proxier({}, objects)
  const syn = 0x02
  const ack = 0x10
  t.match(p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 5000, tcpFlags: syn })), { endpoint: '10.1.0.5:8080' })
  p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 5000, tcpFlags: ack, now: 2 }))
  p.applyEndpointSlice(makeSlice('ns', 'web', 1, [remote('10.1.0.6')], ep))
  p.sync()
  const rs = () => p.ipvsState().virtualServers[0]!.realServers
  t.same(rs(), [{ address: '10.1.0.5', port: 8080, weight: 0 }, { address: '10.1.0.6', port: 8080, weight: 1 }], 'weight 0 while its connection lives')
  t.match(p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 5000, tcpFlags: ack, now: 3 })), { endpoint: '10.1.0.5:8080' }, 'the established connection keeps it')
  t.match(p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 5001, tcpFlags: syn, now: 3 })), { endpoint: '10.1.0.6:8080' }, 'no new connection gets it')
  t.match(p.route(pkt('10.2.0.9', '172.30.0.10', 80, { sport: 5000, tcpFlags: syn, now: 4 })), { endpoint: '10.1.0.6:8080' }, 'a SYN reusing the port is rescheduled (expire_nodest_conn)')
  p.sync()
  t.same(rs(), [{ address: '10.1.0.6', port: 8080, weight: 1 }], 'deleted once drained')
})

t.test('UDP real servers go at once, with their connections', async (t) => {
  const udp = [{ name: 'dns', port: 53, protocol: 'UDP' as const }]
  const objects = [makeService('ns', 'dns', { clusterIP: '172.30.0.53', ports: [port('dns', 53, { protocol: 'UDP' })] }), makeSlice('ns', 'dns', 1, [remote('10.1.0.5')], udp)]
  const p = proxier({}, objects)
  t.match(p.route(pkt('10.2.0.9', '172.30.0.53', 53, { protocol: 'UDP' })), { endpoint: '10.1.0.5:53' })
  p.applyEndpointSlice(makeSlice('ns', 'dns', 1, [remote('10.1.0.6')], udp))
  t.equal(p.sync().flowsRemoved, 1)
  t.same(p.ipvsState().virtualServers[0]!.realServers, [{ address: '10.1.0.6', port: 53, weight: 1 }])
  t.match(p.route(pkt('10.2.0.9', '172.30.0.53', 53, { protocol: 'UDP', now: 2 })), { endpoint: '10.1.0.6:53' })
})

t.test('ipvsState(): virtual servers in ipvsadm order, ipsets, rules, kube-ipvs0', async (t) => {
  const p = proxier({ ipvs: { strictARP: true } })
  const s = p.ipvsState()
  t.same(s.virtualServers.map((v) => `${v.address}:${v.port}`), [
    '172.30.0.10:80', '172.30.0.11:80', '172.30.0.12:80', '172.30.0.13:80', '172.30.0.14:80', '172.30.0.15:80',
    '192.168.0.2:30080', '192.168.0.2:30081', '192.168.0.2:30082', '203.0.113.10:80', '203.0.113.11:80',
  ])
  t.same(s.interfaceAddresses, ['172.30.0.10', '172.30.0.11', '172.30.0.12', '172.30.0.13', '172.30.0.14', '172.30.0.15', '203.0.113.10', '203.0.113.11'])
  t.same(s.ipsets['KUBE-NODE-PORT-TCP'], ['30080', '30081', '30082'])
  t.same(s.ipsets['KUBE-HEALTH-CHECK-NODE-PORT'], ['32000'])
  t.match(s.iptables, /-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip \+ port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10\.0\.0\.0\/8 -j KUBE-MARK-MASQ/)
  t.equal(s.ip6tables, '')
  t.match(s.sysctls, { 'net/ipv4/conf/all/arp_ignore': 1, 'net/ipv4/conf/all/arp_announce': 2 })
  const err = t.throws(() => new Proxier({ ...base, mode: 'iptables' }).ipvsState()) as { code?: string }
  t.equal(err.code, 'WRONG_MODE')
})

t.test('excludeCIDRs: a virtual server there outlives its Service (cleanLegacyService skips it)', async (t) => {
  const objects = [makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [port('p80', 80)] })]
  const p = proxier({ ipvs: { excludeCIDRs: ['172.30.0.0/28'] } }, objects)
  p.deleteService(objects[0])
  p.sync()
  t.same(p.ipvsState().virtualServers.map((v) => v.address), ['172.30.0.10'])
  t.same(p.ipvsState().interfaceAddresses, [])
})

t.test('the ipvs section is checked', async (t) => {
  const bad: [object, RegExp][] = [
    [{ scheduler: 'fastest' }, /ipvs\.scheduler must be one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh/],
    [{ schedular: 'rr' }, /ipvs: unknown option "schedular"; did you mean "scheduler"\?/],
    [{ tcpTimeout: '15 minutes' }, /ipvs\.tcpTimeout must be seconds or a duration/],
    [{ udpTimeout: -1 }, /ipvs\.udpTimeout must be a number of seconds >= 0/],
    [{ excludeCIDRs: ['10.0.0.1'] }, /ipvs\.excludeCIDRs\[0\] must be a CIDR/],
    [{ strictARP: 'yes' }, /ipvs\.strictARP must be a boolean/],
  ]
  for (const [ipvs, message] of bad) t.throws(() => new Proxier({ ...base, ipvs } as ProxierOptions), message)
  const p = proxier({ ipvs: { scheduler: '', tcpTimeout: '15m', tcpFinTimeout: '2m0s', udpTimeout: 300 } })
  t.same(p.ipvs!.settings.timeouts, { tcp: 900, tcpFin: 120, udp: 300 })
  t.equal(p.ipvs!.settings.scheduler, 'rr')
})

t.test('dual stack: one IPVS table, per-family sets (KUBE-6-...) and rules', async (t) => {
  const fs = await import('node:fs')
  const path = await import('node:path')
  const objects = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'cluster.json'), 'utf8'))
  const p = new Proxier({ ...base, nodeName: 'node-a', nodeIPs: ['192.168.0.2', '2001:db8::2', 'fe80::1'], podCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'] })
  p.applyList(objects)
  p.sync()
  const s = p.ipvsState()
  t.ok(s.virtualServers.some((v) => v.address === 'fd00:172:30::5' && v.port === 80), 'an IPv6 cluster IP')
  t.ok(s.virtualServers.some((v) => v.address === '2001:db8::2' && v.port === 30080), 'an IPv6 NodePort')
  t.notOk(s.virtualServers.some((v) => v.address === 'fe80::1'), 'no NodePort on a link-local address')
  t.match(s.ipsets['KUBE-6-CLUSTER-IP'], ['fd00:172:30::5,tcp:80'])
  t.match(s.ip6tables, /-A KUBE-SERVICES -s ::1\/128 -j RETURN\n/)
  t.match(s.ip6tables, /--match-set KUBE-6-CLUSTER-IP dst,dst ! -s fd00:10:244::\/56 -j KUBE-MARK-MASQ/)
  t.match(p.route({ src: 'fd00:10:244::9', sport: 1, dst: 'fd00:172:30::5', dport: 80, protocol: 'TCP', now: 1 }), { action: 'dnat', masquerade: false })
})
