// The ipvs mode programs ServicePort by ServicePort; after any series of changes its state must
// be what a full sync from the model gives (desiredVirtualServers / desiredIpsets), as
// kube-proxy's ipvs proxier computes on every sync.
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import { nodePortIPs } from '../../lib/ipvs/node-port-addresses.js'
import { desiredVirtualServers } from '../../lib/ipvs/virtual-servers.js'
import { desiredIpsets, IPSET_INFO } from '../../lib/ipvs/ipsets.js'
import { renderIpvsIptables } from '../../lib/ipvs/iptables-rules.js'
import { seededRandom } from '../../lib/util/random.js'
import { lbStatus, makeService, makeSlice, port } from '../fixtures/objects.js'

const random = seededRandom(7)
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!

function randomService(i: number) {
  const type = pick(['ClusterIP', 'NodePort', 'LoadBalancer'] as const)
  const shared = pick([`172.30.1.${i}`, '172.30.9.9'])
  return makeService('ns', `s${i}`, {
    type,
    clusterIP: `172.30.0.${i}`,
    ports: [port('p', pick([80, 81]), { protocol: pick(['TCP', 'UDP', 'SCTP'] as const), ...(type === 'ClusterIP' ? {} : { nodePort: 30000 + i }) })],
    externalIPs: random() < 0.4 ? [shared] : [],
    externalTrafficPolicy: type !== 'ClusterIP' && random() < 0.5 ? 'Local' : 'Cluster',
    loadBalancerSourceRanges: type === 'LoadBalancer' && random() < 0.5 ? [pick(['10.0.0.0/8', '192.168.0.0/16'])] : [],
    ...(random() < 0.3 ? { sessionAffinity: 'ClientIP' as const } : {}),
  }, type === 'LoadBalancer' ? lbStatus(`203.0.113.${i}`) : undefined)
}

function randomSlice(i: number, protocol: 'TCP' | 'UDP' | 'SCTP') {
  const eps = Array.from({ length: Math.floor(random() * 4) }, (_, k) => ({
    ip: `10.1.${i}.${k + 1}`, node: pick(['node-a', 'node-b']), ...pick([{}, { ready: false, serving: true, terminating: true }, { ready: false, serving: false }]),
  }))
  return makeSlice('ns', `s${i}`, 1, eps, [{ name: 'p', port: 8080, protocol }])
}

t.test('incremental programming equals a full sync after every change', async (t) => {
  const p = new Proxier({ mode: 'ipvs', nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'], seed: 3 })
  const services = new Map<number, ReturnType<typeof randomService>>()
  for (let step = 0; step < 60; step++) {
    const i = 1 + Math.floor(random() * 12)
    const r = random()
    if (r < 0.45) services.set(i, randomService(i))
    else if (r < 0.6 && services.has(i)) {
      p.deleteService(services.get(i)!)
      services.delete(i)
    }
    const svc = services.get(i)
    if (svc !== undefined) p.applyService(svc)
    if (svc !== undefined && random() < 0.8) p.applyEndpointSlice(randomSlice(i, svc.spec.ports![0]!.protocol!))
    p.sync()
    const state = p.ipvsState()
    const npIPs = nodePortIPs('IPv4', p.options.node.ips, p.options.nodePortAddresses)
    const full = desiredVirtualServers(p.state, { family: 'IPv4', scheduler: 'rr', nodeIPs: p.options.node.ips, nodePortIPs: npIPs })
    const expected = [...full.servers.values()].map((d) => `${d.server.address}:${d.server.port}/${d.server.protocol} ${d.server.flags} ${d.server.realServers.map((r) => `${r.address}:${r.port}`).join(',')}`).sort()
    const got = state.virtualServers.map((v) => `${v.address}:${v.port}/${v.protocol} ${v.flags} ${v.realServers.map((r) => `${r.address}:${r.port}`).join(',')}`).sort()
    t.same(got, expected, `step ${step}: virtual servers`)
    const sets = desiredIpsets(p.state, { family: 'IPv4', nodePortIPs: npIPs, bound: full.bound })
    for (const info of IPSET_INFO) t.same(state.ipsets[info.name], sets.entries.get(info.name), `step ${step}: ${info.name}`)
    t.equal(state.iptables, renderIpvsIptables(sets, { masqueradeMark: '0x00004000', masqueradeAll: false, podCIDR: '10.0.0.0/8', randomFully: true }), `step ${step}: rules`)
  }
})
