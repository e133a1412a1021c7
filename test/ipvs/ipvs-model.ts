// Test helper: a model built through the public Proxier, and the ipvs desired state from it.
import { Proxier } from '../../lib/modes/index.js'
import { nodePortIPs, type Family } from '../../lib/ipvs/node-port-addresses.js'
import { desiredVirtualServers } from '../../lib/ipvs/virtual-servers.js'
import { desiredIpsets } from '../../lib/ipvs/ipsets.js'
import type { IpvsScheduler } from '../../lib/ipvs/types.js'

export interface ModelCase {
  objects: unknown[]
  nodeIPs?: string[]
  nodePortAddresses?: string[]
  podCIDRs?: string[]
  scheduler?: IpvsScheduler
  family?: Family
}

export function ipvsModel(c: ModelCase) {
  const nodeIPs = c.nodeIPs ?? ['100.101.102.103']
  const p = new Proxier({ mode: 'iptables', nodeName: 'test-node', nodeIPs, podCIDRs: c.podCIDRs ?? [], nodePortAddresses: c.nodePortAddresses, seed: 1 })
  p.applyList(c.objects)
  p.sync()
  const family = c.family ?? 'IPv4'
  const npIPs = nodePortIPs(family, p.options.node.ips, p.options.nodePortAddresses)
  const ipvs = desiredVirtualServers(p.state, { family, scheduler: c.scheduler ?? 'rr', nodeIPs: p.options.node.ips, nodePortIPs: npIPs })
  const ipsets = desiredIpsets(p.state, { family, nodePortIPs: npIPs, bound: ipvs.bound })
  return { ipvs, ipsets }
}

/** "addr:port/PROTO sched flags timeout -> rs:port@w, ..." — one line per virtual server, sorted. */
export function summary(servers: Iterable<{ server: { address: string; port: number; protocol: string; scheduler: string; flags: number; timeout: number; realServers: { address: string; port: number; weight: number }[] } }>): string[] {
  return [...servers].map(({ server: s }) => {
    const host = s.address.includes(':') ? `[${s.address}]` : s.address
    const rs = s.realServers.map((r) => `${r.address.includes(':') ? `[${r.address}]` : r.address}:${r.port}@${r.weight}`).join(',')
    return `${host}:${s.port}/${s.protocol} ${s.scheduler}${s.flags ? ` flags=0x${s.flags.toString(16)}` : ''}${s.timeout ? ` timeout=${s.timeout}` : ''} -> ${rs}`
  }).sort()
}
