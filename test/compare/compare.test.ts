// svcplane compare: two modes on one cluster. The documented differences between kube-proxy's
// modes show up, under the probe class that shows them; a mode compared with itself differs nowhere.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { compareModes, type ModeComparison } from '../../lib/compare/index.js'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'
import { PROXY_MODE_NAMES } from '../../lib/modes/index.js'

const CLUSTER = path.join(__dirname, '..', 'fixtures', 'cluster.json')
const objects = JSON.parse(fs.readFileSync(CLUSTER, 'utf8'))
const proxier = { nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.244.0.0/16'], serviceCIDRs: ['172.30.0.0/16'], seed: 1 }

const differs = (c: ModeComparison, probe: string, servicePort?: string) =>
  c.differences.filter((d) => d.probe === probe && (servicePort === undefined || d.servicePort === servicePort))

t.test('a mode compared with itself decides every probe alike', async (t) => {
  for (const mode of PROXY_MODE_NAMES) {
    const c = compareModes(objects, { from: mode, to: mode, proxier })
    t.ok(c.probes > 20, `${mode}: ${c.probes} probes`)
    t.same(c.differences, [], `${mode} vs ${mode}`)
  }
})

t.test('iptables -> nftables: the nftables mode\'s documented differences, each under its probe class', async (t) => {
  const c = compareModes(objects, { from: 'iptables', to: 'nftables', proxier })
  const unserved = differs(c, 'unserved-port')
  t.ok(unserved.length > 0, 'unserved ports of cluster IPs differ')
  for (const d of unserved) {
    t.match(d.from.result, { action: 'accept' }, `${d.servicePort}: iptables lets it through`)
    t.match(d.to.result, { action: 'reject', reason: 'invalid-port' }, `${d.servicePort}: nftables rejects`)
  }
  t.match(differs(c, 'unallocated-cluster-ip'), [{ from: { result: { action: 'accept' } }, to: { result: { action: 'drop', reason: 'unallocated-cluster-ip' } } }], 'an unallocated cluster IP is dropped by nftables only')
  const localhost = differs(c, 'localhost')
  t.ok(localhost.length > 0 && localhost.every((d) => d.from.result.action === 'dnat' && d.to.result.action === 'accept'), 'localhost NodePorts: iptables only')
  t.same(differs(c, 'pod').filter((d) => d.target === 'cluster IP'), [], 'pods reach cluster IPs alike')
  for (const d of c.differences) t.ok(d.from.why.length > 0 && d.to.why.length > 0, `${d.probe} ${d.target}: both modes say why`)
})

t.test('iptables -> ipvs: KUBE-IPVS-FILTER rejects unserved ports; hairpin masquerades through KUBE-LOOP-BACK', async (t) => {
  const c = compareModes(objects, { from: 'iptables', to: 'ipvs', proxier })
  t.ok(differs(c, 'unserved-port').every((d) => d.to.result.action === 'reject'), 'ipvs rejects unserved ports')
  t.ok(differs(c, 'unserved-port').length > 0)
})

t.test('bad arguments are refused naming the field', async (t) => {
  t.throws(() => compareModes(objects, { from: 'ebpf' as never, to: 'iptables', proxier }), { name: 'TypeError', message: /from must be one of/ })
  t.throws(() => compareModes(objects, null as never), { name: 'TypeError' })
})

async function cli(...argv: string[]) {
  const io = bufferIO()
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

t.test('svcplane compare: text and --json, exit status 1 when the modes differ, usage errors', async (t) => {
  const node = ['--node-name', 'node-a', '--node-ip', '192.168.0.2', '--pod-cidr', '10.244.0.0/16', '--service-cidr', '172.30.0.0/16', '--seed', '1']
  const text = await cli('compare', '--cluster', CLUSTER, '--from', 'iptables', '--to', 'nftables', ...node)
  t.equal(text.code, 1, 'they differ')
  t.match(text.out, /^iptables vs nftables: \d+ service ports, \d+ probes/)
  t.match(text.out, /unallocated-cluster-ip: TCP 10\.244\.0\.9 -> 172\.30\.0\.200 in 172\.30\.0\.0\/16/)
  const json = await cli('compare', '--cluster', CLUSTER, '--from', 'ipvs', '--to', 'ipvs', ...node, '--json')
  t.equal(json.code, 0, 'a mode agrees with itself')
  t.same(JSON.parse(json.out).differences, [])
  const missing = await cli('compare', '--cluster', CLUSTER, '--from', 'iptables', ...node)
  t.equal(missing.code, 2, 'usage error')
  t.match(missing.err, /--from and --to are required/)
  const badCidr = await cli('compare', '--cluster', CLUSTER, '--from', 'iptables', '--to', 'native', ...node, '--service-cidr', '172.30.0.0')
  t.equal(badCidr.code, 2)
  t.match(badCidr.err, /--service-cidr: "172\.30\.0\.0" is not a CIDR/)
})
