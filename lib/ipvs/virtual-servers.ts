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

export function desiredVirtualServers(model: ProxyModelView, config: VirtualServerConfig): DesiredIpvs {
  const out: DesiredIpvs = { servers: new Map(), bound: new Set() }
  const nodeAddresses = new Set(config.nodeIPs)
  for (const s of model.servicePorts()) {
    const { info } = s
    if (info.family !== config.family) continue
    const affinity = info.affinityTimeoutSeconds > 0
    let flags = affinity ? FLAG_PERSISTENT : 0
    if (config.scheduler === 'mh') flags |= FLAG_SOURCE_HASH
    const add = (address: string, port: number, kind: VirtualServerOrigin['kind'], onlyNodeLocal: boolean, bind: boolean) => {
      const key = virtualServerKey(address, port, info.protocol)
      if (bind) out.bound.add(address)
      // Two Services on one address:port share the virtual server; the first in order keeps it.
      if (out.servers.has(key)) return
      const realServers = realServerEndpoints(s, onlyNodeLocal).map((e) => ({ address: e.ip, port: e.port, weight: 1 }))
      out.servers.set(key, {
        server: { address, port, protocol: info.protocol, scheduler: config.scheduler, flags, timeout: affinity ? info.affinityTimeoutSeconds : 0, realServers },
        origin: { servicePort: info.name, servicePortKey: info.key, kind },
      })
    }
    add(info.clusterIP, info.port, 'clusterIP', info.internalPolicyLocal, true)
    for (const ip of info.externalIPs) add(ip, info.port, 'externalIP', info.externalPolicyLocal, !nodeAddresses.has(ip))
    for (const ip of info.loadBalancerVIPs) add(ip, info.port, 'loadBalancer', info.externalPolicyLocal, !nodeAddresses.has(ip))
    if (info.nodePort !== 0) {
      for (const ip of config.nodePortIPs) add(ip, info.nodePort, 'nodePort', info.externalPolicyLocal, false)
    }
  }
  return out
}
