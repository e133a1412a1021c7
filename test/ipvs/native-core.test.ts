// What the ipvs mode programs into the native core and how route()/explain() show the core's
// decision next to the ipset/iptables side: a service per virtual server with the IPVS
// scheduler, real servers as backends (weight 0 as terminating), persistence as ClientIP
// affinity with IPVS's timeout, and IPVS's connection timeouts.
import t from 'tap'
import { Proxier, type ProxierOptions } from '../../lib/modes/index.js'
import type { NativeIpvs } from '../../lib/modes/ipvs/native-ipvs.js'
import type { Packet } from '../../lib/proxy/packet.js'
import { makeService, makeSlice, port } from '../fixtures/objects.js'

const base: ProxierOptions = { mode: 'ipvs', nodeName: 'test-node', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'], seed: 1 }
const ep = [{ name: 'p80', port: 8080 }]
const remote = (ip: string) => ({ ip, node: 'other-node' })
const pkt = (src: string, sport: number, now: number, tcpFlags?: number): Packet => ({ src, sport, dst: '172.30.0.10', dport: 80, protocol: 'TCP', now, tcpFlags })
const texts = (p: Proxier, packet: Packet) => p.explain(packet).steps.map((s) => s.text).join('\n')

function proxier(extra: Partial<ProxierOptions>, spec: object, ips: string[]) {
  const p = new Proxier({ ...base, ...extra })
  p.applyList([makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [port('p80', 80)], ...spec }), makeSlice('ns', 'web', 1, ips.map(remote), ep)])
  t.same(p.sync().errors, [])
  return { p, native: (p.inspect() as { native: NativeIpvs }).native }
}

t.test('a virtual server is one native service; real servers are its backends', async (t) => {
  const { p, native } = proxier({ ipvs: { scheduler: 'wlc', tcpTimeout: 600, udpTimeout: 20 } }, {}, ['10.1.0.5', '10.1.0.6'])
  const [svc] = native.dataplane.services()
  t.match(svc, { scheduler: 'wlc', affinityTimeout: 0, frontends: [{ address: '172.30.0.10', port: 80, protocol: 'TCP', scope: 'external' }] })
  t.same(native.dataplane.backends().map((b) => [b.address, b.state, b.weight]), [['10.1.0.5', 'active', 1], ['10.1.0.6', 'active', 1]])
  t.match(native.dataplane.getTimeouts(), { tcpEstablished: 600, udp: 20, udpStream: 20, tcpFinWait: 120, tcpTimeWait: 120 })
  const steps = texts(p, pkt('10.2.0.9', 1000, 1, 0x02))
  t.match(steps, /ipvs: virtual server 172\.30\.0\.10:80\/TCP \(clusterIP of ns\/web:p80\), scheduler wlc/, 'the IPVS side')
  t.match(steps, /native core: service \d+, backend \d+: wlc chose 10\.1\.0\.5:8080/, 'the core decided')
  const fromNode = texts(p, { ...pkt('192.168.0.2', 1001, 1, 0x02), hook: 'output' })
  t.match(fromNode, /KUBE-MARK-MASQ by KUBE-CLUSTER-IP from outside the pod CIDR[^]*native core: service \d+, backend \d+: wlc chose 10\.1\.0\.6:8080[^]*KUBE-POSTROUTING masquerades/, 'the rules side around the core\'s choice')
})

t.test('weight 0 is the core\'s terminating backend; its flows stay, new ones do not come', async (t) => {
  const { p, native } = proxier({}, {}, ['10.1.0.5', '10.1.0.6'])
  t.match(p.route(pkt('10.2.0.9', 1000, 1, 0x02)), { endpoint: '10.1.0.5:8080' })
  p.route(pkt('10.2.0.9', 1000, 2, 0x10))
  p.applyEndpointSlice(makeSlice('ns', 'web', 1, [remote('10.1.0.6')], ep))
  p.sync()
  t.same(native.dataplane.backends().map((b) => [b.address, b.state, b.activeConnections]), [['10.1.0.5', 'terminating', 1], ['10.1.0.6', 'active', 0]])
  t.match(texts(p, pkt('10.2.0.9', 1000, 3, 0x10)), /native core: tracked flow of service \d+ to backend \d+ \(10\.1\.0\.5:8080\)/)
  for (let i = 1; i <= 3; i++) t.match(p.route(pkt('10.2.0.9', 1000 + i, 3, 0x02)), { endpoint: '10.1.0.6:8080' })
  // The client closes: once the IPVS table has no connection on it, the sync deletes the real server and the core its backend.
  p.route(pkt('10.2.0.9', 1000, 4, 0x04))
  p.route({ ...pkt('10.2.0.9', 1000, 20, 0x02), sport: 5000 })
  p.sync()
  t.same(native.dataplane.backends().map((b) => b.address), ['10.1.0.6'])
})

t.test('persistence is the core\'s ClientIP affinity with IPVS\'s timeout', async (t) => {
  const { p, native } = proxier({}, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } } }, ['10.1.0.5', '10.1.0.6', '10.1.0.7'])
  t.match(native.dataplane.services()[0], { affinityTimeout: 30 })
  const first = (p.route(pkt('10.2.0.9', 1000, 1, 0x02)) as { endpoint: string }).endpoint
  t.match(texts(p, pkt('10.2.0.9', 1001, 2, 0x02)), new RegExp(`ipvs persistence as ClientIP affinity \\(timeout 30s\\): 10\\.2\\.0\\.9 stays on ${first.replace(/\./g, '\\.')}`))
  t.same(native.dataplane.affinity().map((a) => a.client), ['10.2.0.9'])
  t.notMatch(texts(p, pkt('10.2.0.9', 1002, 100, 0x02)), /persistence/, 'scheduled again after the timeout')
})

t.test('schedulers the core lacks, and ipvs.dataplane typescript: the TypeScript model decides and says so', async (t) => {
  const sed = proxier({ ipvs: { scheduler: 'sed' } }, {}, ['10.1.0.5'])
  t.equal(sed.native, undefined)
  t.match(texts(sed.p, pkt('10.2.0.9', 1000, 1, 0x02)), /decided by the TypeScript IPVS model \(the native core has no sed scheduler\)/)
  const ts = proxier({ ipvs: { dataplane: 'typescript' } }, {}, ['10.1.0.5'])
  t.equal(ts.native, undefined)
  t.match(texts(ts.p, pkt('10.2.0.9', 1000, 1, 0x02)), /decided by the TypeScript IPVS model \(ipvs\.dataplane 'typescript'\)/)
  t.throws(() => new Proxier({ ...base, ipvs: { dataplane: 'kernel' } } as never), /ipvs\.dataplane must be 'native' or 'typescript', got "kernel"/)
})
