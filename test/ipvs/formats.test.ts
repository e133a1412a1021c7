// Dumps of IPVS mode as the tools print them: ipvsadm -Ln (ipvsadm.c's print_title and
// print_service_entry column widths), --stats, --rate, and ipset save; and the CLI wiring
// (svcplane dump --mode ipvs --format ipvsadm|ipset|iptables-save). No IPVS in this kernel:
// the expected text follows ipvsadm's documented format.
import t from 'tap'
import * as path from 'node:path'
import { Proxier } from '../../lib/modes/index.js'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'
import { lbStatus, makeService, makeSlice, port } from '../fixtures/objects.js'

const ep = [{ name: 'p80', port: 8080 }]

function proxier() {
  const p = new Proxier({ mode: 'ipvs', nodeName: 'test-node', nodeIPs: ['192.168.0.2', '2001:db8::2'], podCIDRs: ['10.0.0.0/8'], seed: 1 })
  p.applyList([
    makeService('ns', 'web', {
      clusterIP: '172.30.0.10', ports: [port('p80', 80)], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    }),
    makeSlice('ns', 'web', 1, ['10.1.0.5', '10.1.0.6'], ep),
    makeService('ns', 'v6', { clusterIP: 'fd00::10', ipFamilies: ['IPv6'], ports: [port('p80', 80, { protocol: 'UDP' })] }),
    makeService('ns', 'lb', { type: 'LoadBalancer', clusterIP: '172.30.0.11', ports: [port('p80', 80, { nodePort: 30080 })] }, lbStatus('203.0.113.10')),
  ])
  p.sync()
  return p
}

t.test('ipvsadm -Ln', async (t) => {
  const p = proxier()
  p.route({ src: '10.2.0.9', sport: 1000, dst: '172.30.0.10', dport: 80, protocol: 'TCP', now: 10 })
  p.route({ src: '10.2.0.9', sport: 1000, dst: '172.30.0.10', dport: 80, protocol: 'TCP', now: 11 })
  t.equal(p.ipvs!.ipvsadm(), [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  172.30.0.10:80 rr persistent 600',
    '  -> 10.1.0.5:8080                Masq    1      1          0         ',
    '  -> 10.1.0.6:8080                Masq    1      0          0         ',
    'TCP  172.30.0.11:80 rr',
    'TCP  192.168.0.2:30080 rr',
    'TCP  203.0.113.10:80 rr',
    'UDP  [fd00::10]:80 rr',
    '',
  ].join('\n'))
})

t.test('ipvsadm -Ln --stats and --rate', async (t) => {
  const p = proxier()
  for (let i = 0; i < 4; i++) p.route({ src: '10.2.0.9', sport: 1000 + i, dst: '172.30.0.10', dport: 80, protocol: 'TCP', now: 10 + i })
  p.route({ src: '10.1.0.5', sport: 8080, dst: '10.2.0.9', dport: 1000, protocol: 'TCP', now: 14 })
  const stats = p.ipvs!.ipvsadm({ view: 'stats' }).split('\n')
  t.equal(stats[1], 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes')
  t.equal(stats[2], '  -> RemoteAddress:Port')
  t.equal(stats[3], 'TCP  172.30.0.10:80                      4        4        1        0        0')
  t.equal(stats[4], '  -> 10.1.0.5:8080                       4        4        1        0        0', 'persistence kept the client on one server')
  const rate = p.ipvs!.ipvsadm({ view: 'rate' }).split('\n')
  t.equal(rate[1], 'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS')
  t.equal(rate[3], 'TCP  172.30.0.10:80                      1        1        0        0        0', '4 connections over 4 s')
})

t.test('ipvsadm -Lnc: connections and persistence templates', async (t) => {
  const p = proxier()
  p.route({ src: '10.2.0.9', sport: 1000, dst: '172.30.0.10', dport: 80, protocol: 'TCP', now: 10 })
  p.route({ src: '10.2.0.9', sport: 1001, dst: '172.30.0.10', dport: 80, protocol: 'TCP', tcpFlags: 0x02, now: 10 })
  t.equal(p.ipvs!.ipvsadmConnections(), [
    'IPVS connection entries',
    'pro expire state       source             virtual            destination',
    'TCP 15:00  ESTABLISHED 10.2.0.9:1000      172.30.0.10:80     10.1.0.5:8080',
    'TCP 01:00  SYN_RECV    10.2.0.9:1001      172.30.0.10:80     10.1.0.5:8080',
    'TCP 10:00  NONE        10.2.0.9:0         172.30.0.10:80     10.1.0.5:8080',
    '',
  ].join('\n'))
})

t.test('ipset save', async (t) => {
  const text = proxier().ipvs!.ipsetSave()
  t.match(text, 'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-CLUSTER-IP 172.30.0.10,tcp:80\nadd KUBE-CLUSTER-IP 172.30.0.11,tcp:80\n')
  t.match(text, 'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\nadd KUBE-NODE-PORT-TCP 30080\n')
  t.match(text, 'create KUBE-6-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536\nadd KUBE-6-CLUSTER-IP fd00::10,udp:80\n')
  t.match(text, 'create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536\nadd KUBE-IPVS-IPS 172.30.0.10\nadd KUBE-IPVS-IPS 172.30.0.11\nadd KUBE-IPVS-IPS 203.0.113.10\n')
})

const CLUSTER = path.join(__dirname, '..', 'fixtures', 'cluster.json')
const NODE = ['--node-name', 'node-a', '--node-ip', '192.168.0.2', '--pod-cidr', '10.244.0.0/16', '--seed', '1', '--mode', 'ipvs']

async function cli(...argv: string[]) {
  const io = bufferIO()
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

t.test('svcplane dump in mode ipvs', async (t) => {
  const ipvsadm = await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'ipvsadm')
  t.equal(ipvsadm.code, 0, ipvsadm.err)
  t.match(ipvsadm.out, /^IP Virtual Server version 1\.2\.1 \(size=4096\)\nProt LocalAddress:Port Scheduler Flags\n/)
  t.match(ipvsadm.out, /\nTCP  192\.168\.0\.2:30080 rr/)
  t.match((await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'ipvsadm', '--stats')).out, /Conns {3}InPkts {2}OutPkts/)
  t.equal((await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'ipvsadm', '--connections')).out, 'IPVS connection entries\npro expire state       source             virtual            destination\n', 'offline: no connections')
  const json = JSON.parse((await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'ipvsadm', '--json')).out)
  t.ok(json.some((v: { address: string; port: number }) => v.address === '192.168.0.2' && v.port === 30080))
  t.match((await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'ipset')).out, /^create KUBE-LOOP-BACK hash:ip,port,ip /)
  t.match((await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'iptables-save')).out, /-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT\n/)
  const wrong = await cli('dump', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--mode', 'iptables', '--format', 'ipset')
  t.equal(wrong.code, 2)
  t.match(wrong.err, /--format ipset shows the ipsets of IPVS mode: use --proxy-mode ipvs/)
})
