// The probe packets a comparison of modes sends: for every service port, one packet per class
// of client kube-proxy's modes treat differently (a pod, the node itself, an outside client, a
// hairpinning endpoint, localhost, a source outside loadBalancerSourceRanges), plus packets to
// what no Service serves (an unserved port of a cluster IP, an unallocated address in the
// service CIDRs). Sources are fixed documentation/test addresses, so a run is repeatable.
import type { Packet } from '../proxy/packet.js'
import type { ProxyModelView } from '../proxy/model.js'
import { addressFamily, cidrContains, formatAddress, parseAddressInto, parseCidr } from '../util/address.js'

export const PROBE_CLASSES = ['pod', 'node', 'external', 'hairpin', 'localhost', 'unserved-port', 'unallocated-cluster-ip', 'source-range'] as const
export type ProbeClass = (typeof PROBE_CLASSES)[number]

export interface Probe {
  probe: ProbeClass
  /** The service port the probe is aimed at ("" for unallocated addresses). */
  servicePort: string
  /** Which frontend of the service port: "cluster IP", "NodePort on 192.168.0.2", ... */
  target: string
  packet: Omit<Packet, 'sport'>
}

/** An outside client (TEST-NET-3 / the IPv6 documentation prefix). */
const EXTERNAL = { 4: '203.0.113.7', 6: '2001:db8:ffff::7' } as const

/** The address `offset` hosts into a CIDR (the network address plus offset), in that CIDR's family. */
function hostIn(cidr: string, offset: number): string | undefined {
  const c = parseCidr(cidr)
  if (c === undefined) return undefined
  const b = new Uint8Array(c.bytes)
  let carry = offset
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const v = b[i]! + (carry & 0xff)
    b[i] = v & 0xff
    carry = (carry >>> 8) + (v >> 8)
  }
  return formatAddress(b, 0)
}

function familyOf(address: string): 4 | 6 {
  return addressFamily(address) === 6 ? 6 : 4
}

/** The probes for every service port of the model, and for the service CIDRs' free addresses. */
export function probesFor(model: ProxyModelView, cidrs: { podCIDRs: readonly string[]; serviceCIDRs: readonly string[] }): Probe[] {
  const out: Probe[] = []
  const { podCIDRs, serviceCIDRs } = cidrs
  const podSource = (f: 4 | 6) => {
    const cidr = podCIDRs.find((c) => familyOf(c.split('/')[0]!) === f)
    return cidr === undefined ? undefined : hostIn(cidr, 9)
  }
  const nodeIP = (f: 4 | 6) => model.node.ips.find((ip) => familyOf(ip) === f)
  const used = new Set<string>()
  for (const s of model.servicePorts()) used.add(`${s.info.clusterIP}|${s.info.port}|${s.info.protocol}`)
  for (const state of model.servicePorts()) {
    const sp = state.info
    const f: 4 | 6 = sp.family === 'IPv6' ? 6 : 4
    const base = { servicePort: sp.name }
    const protocol = sp.protocol
    const pod = podSource(f)
    const node = nodeIP(f)
    if (sp.clusterIP !== '' && sp.clusterIP !== 'None') {
      if (pod !== undefined) out.push({ ...base, probe: 'pod', target: 'cluster IP', packet: { src: pod, dst: sp.clusterIP, dport: sp.port, protocol } })
      if (node !== undefined) out.push({ ...base, probe: 'node', target: 'cluster IP', packet: { src: node, dst: sp.clusterIP, dport: sp.port, protocol, hook: 'output' } })
      out.push({ ...base, probe: 'external', target: 'cluster IP', packet: { src: EXTERNAL[f], dst: sp.clusterIP, dport: sp.port, protocol } })
      const endpoint = state.endpoints.find((e) => e.ready)
      if (endpoint !== undefined) out.push({ ...base, probe: 'hairpin', target: 'cluster IP', packet: { src: endpoint.ip, dst: sp.clusterIP, dport: sp.port, protocol } })
      let unserved = sp.port === 65535 ? 1 : sp.port + 1
      while (used.has(`${sp.clusterIP}|${unserved}|${protocol}`)) unserved = unserved === 65535 ? 1 : unserved + 1
      if (pod !== undefined) out.push({ ...base, probe: 'unserved-port', target: `cluster IP, port ${unserved}`, packet: { src: pod, dst: sp.clusterIP, dport: unserved, protocol } })
    }
    if (sp.nodePort !== 0) {
      for (const ip of model.node.ips.filter((a) => familyOf(a) === f)) {
        out.push({ ...base, probe: 'external', target: `NodePort on ${ip}`, packet: { src: EXTERNAL[f], dst: ip, dport: sp.nodePort, protocol } })
        if (pod !== undefined) out.push({ ...base, probe: 'pod', target: `NodePort on ${ip}`, packet: { src: pod, dst: ip, dport: sp.nodePort, protocol } })
        out.push({ ...base, probe: 'node', target: `NodePort on ${ip}`, packet: { src: ip, dst: ip, dport: sp.nodePort, protocol, hook: 'output' } })
      }
      if (f === 4) out.push({ ...base, probe: 'localhost', target: 'NodePort on 127.0.0.1', packet: { src: '127.0.0.1', dst: '127.0.0.1', dport: sp.nodePort, protocol, hook: 'output' } })
    }
    for (const ip of sp.externalIPs) {
      out.push({ ...base, probe: 'external', target: `external IP ${ip}`, packet: { src: EXTERNAL[f], dst: ip, dport: sp.port, protocol } })
      if (pod !== undefined) out.push({ ...base, probe: 'pod', target: `external IP ${ip}`, packet: { src: pod, dst: ip, dport: sp.port, protocol } })
    }
    for (const ip of sp.loadBalancerVIPs) {
      const ranges = sp.loadBalancerSourceRanges
      const allowed = ranges.length > 0 ? hostIn(ranges[0]!, 1) : EXTERNAL[f]
      if (allowed !== undefined) out.push({ ...base, probe: 'external', target: `load balancer ${ip}`, packet: { src: allowed, dst: ip, dport: sp.port, protocol } })
      if (ranges.length > 0) out.push({ ...base, probe: 'source-range', target: `load balancer ${ip} from outside its source ranges`, packet: { src: EXTERNAL[f], dst: ip, dport: sp.port, protocol } })
      if (pod !== undefined) out.push({ ...base, probe: 'pod', target: `load balancer ${ip}`, packet: { src: pod, dst: ip, dport: sp.port, protocol } })
    }
  }
  // An address of the service CIDRs no Service holds.
  const allocated = new Set(model.servicePorts().map((s) => s.info.clusterIP))
  for (const cidr of serviceCIDRs) {
    const f = familyOf(cidr.split('/')[0]!)
    const pod = podSource(f)
    if (pod === undefined) continue
    for (let offset = 200; offset < 260; offset++) {
      const ip = hostIn(cidr, offset)
      if (ip === undefined || !inCidr(cidr, ip)) break
      if (allocated.has(ip)) continue
      out.push({ probe: 'unallocated-cluster-ip', servicePort: '', target: `${ip} in ${cidr}`, packet: { src: pod, dst: ip, dport: 80, protocol: 'TCP' } })
      break
    }
  }
  return out
}

function inCidr(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr)
  const b = new Uint8Array(16)
  return c !== undefined && parseAddressInto(ip, b, 0) === c.family && cidrContains(c, b, 0)
}
