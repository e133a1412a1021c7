// kube-proxy's CategorizeEndpoints: which endpoints a ServicePort sends Cluster-policy and
// Local-policy traffic to. Topology hints and the terminating fallback are decided
// independently for the two sets.
import type { EndpointInfo } from './endpoints.js'
import { usesClusterEndpoints, usesLocalEndpoints, type ServicePortInfo } from './serviceport.js'

export interface CategorizedEndpoints {
  /** Endpoints for Cluster policy (empty when the ServicePort does not use it). */
  cluster: EndpointInfo[]
  /** Endpoints for Local policy (empty when the ServicePort does not use it). */
  local: EndpointInfo[]
  /** cluster ∪ local, sorted: every endpoint this node can send new traffic to. */
  allReachable: EndpointInfo[]
  /** Whether any endpoint anywhere can take traffic; false means REJECT. */
  hasAnyEndpoints: boolean
  /** Whether topology hints filtered the cluster set. */
  usedTopology: boolean
  /** Whether the cluster set fell back to serving, terminating endpoints. */
  clusterFallback: boolean
  /** Whether the local set fell back to serving, terminating endpoints. */
  localFallback: boolean
}

const servingTerminating = (ep: EndpointInfo) => ep.serving && ep.terminating

/** Hints count only when every ready endpoint has one and at least one names this node's zone. */
export function canUseTopology(endpoints: readonly EndpointInfo[], nodeZone: string | undefined): boolean {
  let hasEndpointForZone = false
  for (const ep of endpoints) {
    if (!ep.ready) continue
    if (ep.zoneHints.length === 0) return false
    if (nodeZone === undefined || nodeZone === '') return false
    if (ep.zoneHints.includes(nodeZone)) hasEndpointForZone = true
  }
  return hasEndpointForZone
}

export function categorizeEndpoints(
  endpoints: readonly EndpointInfo[],
  sp: ServicePortInfo,
  nodeZone: string | undefined,
): CategorizedEndpoints {
  const out: CategorizedEndpoints = {
    cluster: [],
    local: [],
    allReachable: [],
    hasAnyEndpoints: false,
    usedTopology: false,
    clusterFallback: false,
    localFallback: false,
  }
  if (usesClusterEndpoints(sp)) {
    out.usedTopology = canUseTopology(endpoints, nodeZone)
    const inCluster = (ep: EndpointInfo) => ep.ready && (!out.usedTopology || ep.zoneHints.includes(nodeZone!))
    // Usually every endpoint qualifies: the same (never mutated) list then, not a copy per ServicePort.
    out.cluster = endpoints.every(inCluster) ? (endpoints as EndpointInfo[]) : endpoints.filter(inCluster)
    // Best effort to keep connections working: topology does not apply to the fallback.
    if (out.cluster.length === 0) {
      out.cluster = endpoints.filter(servingTerminating)
      out.clusterFallback = out.cluster.length > 0
    }
    if (out.cluster.length > 0) out.hasAnyEndpoints = true
  }
  if (!usesLocalEndpoints(sp)) {
    out.allReachable = out.cluster
    return out
  }
  let hasLocalReady = false
  let hasLocalServingTerminating = false
  for (const ep of endpoints) {
    if (ep.ready) {
      out.hasAnyEndpoints = true
      if (ep.isLocal) hasLocalReady = true
    } else if (servingTerminating(ep)) {
      out.hasAnyEndpoints = true
      if (ep.isLocal) hasLocalServingTerminating = true
    }
  }
  if (hasLocalReady) {
    out.local = endpoints.filter((ep) => ep.isLocal && ep.ready)
  } else if (hasLocalServingTerminating) {
    out.local = endpoints.filter((ep) => ep.isLocal && servingTerminating(ep))
    out.localFallback = true
  }
  if (!usesClusterEndpoints(sp)) {
    out.allReachable = out.local
    return out
  }
  const merged = new Map<string, EndpointInfo>()
  for (const ep of out.cluster) merged.set(ep.endpoint, ep)
  for (const ep of out.local) merged.set(ep.endpoint, ep)
  out.allReachable = [...merged.values()].sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0))
  return out
}
