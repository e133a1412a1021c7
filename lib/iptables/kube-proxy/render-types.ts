// The plain input of the kube-proxy rule renderer: service ports with their
// endpoints already categorized (kube-proxy's CategorizeEndpoints runs in
// lib/proxy), so rendering stays a pure text transformation.

export interface RenderEndpoint {
  ip: string
  port: number
}

export interface RenderServicePort {
  /** kube-proxy's ServicePortName string: "ns/name:port", or "ns/name" for an unnamed port */
  name: string
  protocol: 'TCP' | 'UDP' | 'SCTP'
  clusterIP: string
  port: number
  /** 0 or absent when the service has no node port */
  nodePort?: number
  externalIPs?: string[]
  /** load-balancer ingress IPs that kube-proxy handles (ipMode VIP) */
  loadBalancerIPs?: string[]
  loadBalancerSourceRanges?: string[]
  healthCheckNodePort?: number
  /** set when sessionAffinity is ClientIP */
  sessionAffinityTimeoutSeconds?: number
  externalPolicyLocal?: boolean
  internalPolicyLocal?: boolean
  /** endpoints used under Cluster policy (kube-proxy's clusterEndpoints) */
  clusterEndpoints: RenderEndpoint[]
  /** node-local endpoints used under Local policy (kube-proxy's localEndpoints) */
  localEndpoints: RenderEndpoint[]
  /** any usable endpoint anywhere; defaults to either list being non-empty */
  hasEndpoints?: boolean
  /** endpoints of this port before categorization, for large-cluster mode (defaults to the reachable count) */
  endpointCount?: number
}

export interface RenderOptions {
  ipFamily?: 4 | 6
  /** bit of the masquerade mark (kube-proxy --iptables-masquerade-bit, default 14) */
  masqueradeBit?: number
  /** overrides the mark text (kube-proxy formats 1 << bit as %#08x, e.g. "0x00004000") */
  masqueradeMark?: string
  masqueradeAll?: boolean
  localhostNodePorts?: boolean
  /** nfacct counters exist (newer kube-proxy writes -m nfacct on two rules) */
  nfacct?: boolean
  /** iptables supports MASQUERADE --random-fully */
  randomFully?: boolean
  /** nf_conntrack_tcp_be_liberal is set: no INVALID drop rule */
  conntrackTCPLiberal?: boolean
  /** the local-traffic detector's pod CIDR (kube-proxy --cluster-cidr); none disables it */
  podCIDR?: string
  /** node IPs, for loadBalancerSourceRanges that contain the node */
  nodeIPs?: string[]
  /** resolved --nodeport-addresses; absent means all local addresses */
  nodePortAddresses?: string[]
  /** chains present in the kernel's nat table, so stale service chains get deleted */
  existingNatChains?: string[]
  /** endpoints above which comments are dropped from SVC/SEP rules (kube-proxy: 1000) */
  largeClusterEndpointsThreshold?: number
  /**
   * Partial sync (KEP-3453): only these services ("ns/name") get their
   * per-service chains rewritten; top-level chains are always written.
   */
  changedServices?: Iterable<string>
}
