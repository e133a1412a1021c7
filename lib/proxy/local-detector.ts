// Where a packet comes from, as kube-proxy sees it: from a pod (its local-traffic detector, a
// match on the pod CIDRs) and/or from this node itself (`-m addrtype --src-type LOCAL`).
import { show } from '../util/show.js'
import { cidrContains, parseAddressInto, parseCidr, type ParsedCidr } from '../util/address.js'
import { SvcplaneTypeError } from '../errors.js'

export class LocalTrafficDetector {
  private readonly cidrs: ParsedCidr[]

  constructor(podCIDRs: readonly string[]) {
    this.cidrs = podCIDRs.map((c, i) => {
      const parsed = typeof c === 'string' && c.includes('/') ? parseCidr(c.trim()) : undefined
      if (parsed === undefined) throw new SvcplaneTypeError(`Proxier options: podCIDRs[${i}] must be a CIDR, got ${show(c)}`)
      return parsed
    })
  }

  /** Without pod CIDRs kube-proxy has no detector: no pod short-circuit, no cluster-IP masquerade rule. */
  get implemented(): boolean {
    return this.cidrs.length > 0
  }

  get podCIDRs(): string[] {
    return this.cidrs.map((c) => c.text)
  }

  isFromPod(address: string): boolean {
    const b = new Uint8Array(16)
    if (!parseAddressInto(address, b, 0)) return false
    return this.cidrs.some((c) => cidrContains(c, b, 0))
  }
}

/** The node's own addresses plus loopback: what `addrtype LOCAL` matches. */
export class NodeAddresses {
  private readonly addresses: Set<string>

  constructor(nodeIPs: readonly string[]) {
    this.addresses = new Set(nodeIPs)
  }

  isLocal(address: string): boolean {
    return this.addresses.has(address) || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address)
  }
}
