// The per-ServicePort decisions kube-proxy's syncProxyRules makes before writing any rule:
// which endpoint set internal and external traffic use, when traffic is rejected or dropped,
// and who passes the load-balancer firewall. Every proxy mode renders this same plan.
import { cidrContains, parseAddressInto, parseCidr } from '../util/address.js'
import type { CategorizedEndpoints } from './categorize.js'
import { externallyAccessible, type ServicePortInfo } from './serviceport.js'

export type EndpointSetName = 'cluster' | 'local'

export interface TrafficPlan {
  /** Some endpoint somewhere can take traffic; false: every frontend REJECTs. */
  hasEndpoints: boolean
  /** Cluster-IP traffic has endpoints; false (with hasEndpoints): DROP, internalTrafficPolicy Local without local endpoints. */
  hasInternalEndpoints: boolean
  /** External traffic from outside has endpoints; false (with hasEndpoints): DROP unless short-circuited. */
  hasExternalEndpoints: boolean
  /** Endpoint set for cluster-IP traffic. */
  internalSet: EndpointSetName
  /** Endpoint set for NodePort / external IP / load-balancer traffic from outside the node. */
  externalSet: EndpointSetName
  /** loadBalancerSourceRanges are enforced on the load-balancer IPs. */
  usesFirewall: boolean
  /** Sources the firewall lets through: the ranges, plus the LB IPs when a range covers the node IP. */
  firewallAllows: string[]
}

export function planTraffic(sp: ServicePortInfo, cat: CategorizedEndpoints, primaryNodeIP: string | undefined): TrafficPlan {
  const hasEndpoints = cat.hasAnyEndpoints
  const internalSet: EndpointSetName = sp.internalPolicyLocal ? 'local' : 'cluster'
  const externalSet: EndpointSetName = sp.externalPolicyLocal ? 'local' : 'cluster'
  const usesFirewall = hasEndpoints && sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0
  const firewallAllows: string[] = []
  if (usesFirewall) {
    firewallAllows.push(...sp.loadBalancerSourceRanges)
    // A node reaching its own LB VIP may loop back with the VIP as source address.
    if (primaryNodeIP !== undefined && sourceAllowed(sp.loadBalancerSourceRanges, primaryNodeIP)) {
      for (const vip of sp.loadBalancerVIPs) firewallAllows.push(vip.includes(':') ? `${vip}/128` : `${vip}/32`)
    }
  }
  return {
    hasEndpoints,
    hasInternalEndpoints: hasEndpoints && (!sp.internalPolicyLocal || cat.local.length > 0),
    hasExternalEndpoints: hasEndpoints && externallyAccessible(sp) && (!sp.externalPolicyLocal || cat.local.length > 0),
    internalSet,
    externalSet,
    usesFirewall,
    firewallAllows,
  }
}

export function sourceAllowed(cidrs: readonly string[], address: string): boolean {
  const b = new Uint8Array(16)
  if (!parseAddressInto(address, b, 0)) return false
  return cidrs.some((c) => {
    const parsed = parseCidr(c)
    return parsed !== undefined && cidrContains(parsed, b, 0)
  })
}
