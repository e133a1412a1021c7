// IPVS mode against iptables mode on the same cluster (test/fixtures/cluster.json), every
// frontend and the port after it, from a pod, the node, outside and loopback, on a node with
// endpoints and on one without: the two modes agree (action, Service, masquerade) except where
// kube-proxy's two proxiers really differ, and each difference is named here.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Proxier, type ProxyMode } from '../../lib/modes/index.js'
import type { Packet, RouteResult } from '../../lib/proxy/packet.js'

const objects = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'cluster.json'), 'utf8'))
const loopback = (a: string) => a === '::1' || a.startsWith('127.')

function proxier(mode: ProxyMode, nodeName: string, nodeIP: string) {
  const p = new Proxier({ mode, nodeName, nodeIPs: [nodeIP], podCIDRs: ['10.244.0.0/16'], seed: 1 })
  p.applyList(objects)
  p.sync()
  return p
}

/** Why IPVS mode decides `packet` otherwise than iptables mode, or undefined when it should not. */
function difference(p: Packet, ipt: RouteResult, ipvs: RouteResult, kubeIpvs0: Set<string>): string | undefined {
  if (ipvs.action === 'reject' && ipvs.reason === 'invalid-port' && ipt.action === 'accept' && kubeIpvs0.has(p.dst)) return 'KUBE-IPVS-FILTER rejects unserved ports of service addresses'
  if (ipvs.action === 'drop' && ipvs.reason === 'loopback-source') return 'IPVS does not send a loopback source to a remote real server'
  if (loopback(p.dst) && ipvs.action === 'accept') return 'no localhost NodePorts (and no localnet drop rule) in IPVS mode'
  if (loopback(p.src) && ipt.action === 'dnat' && ipvs.action === 'dnat' && !ipvs.masquerade) return 'KUBE-SERVICES returns loopback sources before any mark'
  if (ipt.action === 'drop' && ipt.reason === 'no-local-endpoints' && ipvs.action === 'dnat') return 'Local policy without a local endpoint falls back to cluster endpoints (kubernetes#97081)'
  if (ipt.action === 'dnat' && ipvs.action === 'dnat' && ipt.masquerade && !ipvs.masquerade && p.hook === 'output') return 'node traffic to a Local NodePort / LB is not short-circuited and masqueraded'
  return undefined
}

for (const [nodeName, nodeIP] of [['node-a', '192.168.0.2'], ['node-c', '192.168.0.4']] as const) {
  t.test(`${nodeName}: every probe agrees or differs for a named reason`, async (t) => {
    const ipt = proxier('iptables', nodeName, nodeIP)
    const ipvs = proxier('ipvs', nodeName, nodeIP)
    const kubeIpvs0 = new Set(ipvs.ipvsState().interfaceAddresses)
    const targets = new Set<string>()
    for (const s of ipt.state.servicePorts()) {
      for (const f of s.frontends) for (const port of [f.port, f.port + 1]) targets.add(`${f.address}|${port}|${f.protocol}`)
    }
    const sources: [string, 'prerouting' | 'output'][] = [['10.244.0.9', 'prerouting'], [nodeIP, 'output'], ['203.0.113.2', 'prerouting'], ['127.0.0.1', 'output']]
    const reasons = new Map<string, number>()
    let agreed = 0
    let sport = 30000
    for (const target of targets) {
      const [dst, port, protocol] = target.split('|') as [string, string, Packet['protocol']]
      for (const [src, hook] of sources) {
        if (dst.includes(':')) continue
        const packet: Packet = { src, sport: sport++, dst, dport: Number(port), protocol, hook, now: 1 }
        const a = ipt.route(packet)
        const b = ipvs.route(packet)
        const same = a.action === b.action && JSON.stringify({ ...a, endpoint: 0, address: 0, port: 0 }) === JSON.stringify({ ...b, endpoint: 0, address: 0, port: 0 })
        if (same) {
          agreed++
          continue
        }
        const why = difference(packet, a, b, kubeIpvs0)
        if (why === undefined) t.fail(`${src} (${hook}) -> ${dst}:${port}/${protocol}: iptables ${JSON.stringify(a)}, ipvs ${JSON.stringify(b)}`)
        else reasons.set(why, (reasons.get(why) ?? 0) + 1)
      }
    }
    t.ok(agreed > 20, `${agreed} probes decided alike`)
    t.ok(reasons.get('KUBE-IPVS-FILTER rejects unserved ports of service addresses')! > 0, 'unserved ports differ')
    if (nodeName === 'node-c') t.ok(reasons.has('Local policy without a local endpoint falls back to cluster endpoints (kubernetes#97081)'), 'node-c has no pod of shop/web')
    t.comment([...reasons].map(([r, n]) => `${n} x ${r}`).join('\n'))
  })
}
