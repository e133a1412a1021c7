// kube-proxy's ipvs syncProxyRules, the IPVS half: for every ServicePort of a family, one
// virtual server on the cluster IP, one per external IP, per load-balancer IP and per NodePort
// address, each with the real servers syncEndpoint gives it (weight 1). Pure: the desired
// state only; IpvsTable applies it with graceful termination.
import type { ProxyModelView, ServicePortState } from '../proxy/model.js'
import type { EndpointInfo } from '../proxy/endpoints.js'
import type { Family } from './node-port-addresses.js'
import { FLAG_PERSISTENT, FLAG_SOURCE_HASH, virtualServerKey, type IpvsScheduler, type VirtualServer, type VirtualServerOrigin } from './types.js'

export interface DesiredVirtualServer {
  server: VirtualServer
  origin: VirtualServerOrigin
}

export interface DesiredIpvs {
  /** Keyed by virtualServerKey, in the model's ServicePort order. */
  servers: Map<string, DesiredVirtualServer>
  /** Addresses bound on kube-ipvs0 (kube-proxy's activeBindAddrs). */
  bound: Set<string>
}

export interface VirtualServerConfig {
  family: Family
  scheduler: IpvsScheduler
  /** This node's addresses (never bound on kube-ipvs0). */
  nodeIPs: readonly string[]
  /** The addresses NodePort virtual servers listen on (nodePortIPs()). */
  nodePortIPs: readonly string[]
}

/**
 * syncEndpoint's choice: Local policy takes the local endpoints, or the cluster ones when there
 * are none (kubernetes#97081: pods keep reaching the service); Cluster policy the cluster ones.
 */
export function realServerEndpoints(s: ServicePortState, onlyNodeLocal: boolean): EndpointInfo[] {
  const { cluster, local } = s.categorized
  if (onlyNodeLocal && local.length > 0) return local
  return cluster
}

/** One ServicePort's virtual servers (in kube-proxy's order) and the addresses it binds on kube-ipvs0. */
export function virtualServersOf(s: ServicePortState, config: VirtualServerConfig): { servers: DesiredVirtualServer[]; bound: string[] } {
  const { info } = s
  const out = { servers: [] as DesiredVirtualServer[], bound: [] as string[] }
  const affinity = info.affinityTimeoutSeconds > 0
  let flags = affinity ? FLAG_PERSISTENT : 0
  if (config.scheduler === 'mh') flags |= FLAG_SOURCE_HASH
  const add = (address: string, port: number, kind: VirtualServerOrigin['kind'], onlyNodeLocal: boolean, bind: boolean) => {
    if (bind) out.bound.push(address)
    const realServers = realServerEndpoints(s, onlyNodeLocal).map((e) => ({ address: e.ip, port: e.port, weight: 1 }))
    out.servers.push({
      server: { address, port, protocol: info.protocol, scheduler: config.scheduler, flags, timeout: affinity ? info.affinityTimeoutSeconds : 0, realServers },
      origin: { servicePort: info.name, servicePortKey: info.key, kind },
    })
  }
  add(info.clusterIP, info.port, 'clusterIP', info.internalPolicyLocal, true)
  for (const ip of info.externalIPs) add(ip, info.port, 'externalIP', info.externalPolicyLocal, !config.nodeIPs.includes(ip))
  for (const ip of info.loadBalancerVIPs) add(ip, info.port, 'loadBalancer', info.externalPolicyLocal, !config.nodeIPs.includes(ip))
  if (info.nodePort !== 0) {
    for (const ip of config.nodePortIPs) add(ip, info.nodePort, 'nodePort', info.externalPolicyLocal, false)
  }
  return out
}

/** Every ServicePort of the family; two Services on one address:port share the virtual server, the first in order keeps it. */
export function desiredVirtualServers(model: ProxyModelView, config: VirtualServerConfig): DesiredIpvs {
  const out: DesiredIpvs = { servers: new Map(), bound: new Set() }
  for (const s of model.servicePorts()) {
    if (s.info.family !== config.family) continue
    const mine = virtualServersOf(s, config)
    for (const a of mine.bound) out.bound.add(a)
    for (const d of mine.servers) {
      const key = virtualServerKey(d.server.address, d.server.port, d.server.protocol)
      if (!out.servers.has(key)) out.servers.set(key, d)
    }
  }
  return out
}
