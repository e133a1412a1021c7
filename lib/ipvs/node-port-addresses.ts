// Which node addresses get a NodePort virtual server: kube-proxy's NodePortAddresses for one
// family (--nodeport-addresses), with the ipvs proxier's rule that loopback never does (IPVS
// cannot serve 127.0.0.1, so localhost NodePorts do not exist in this mode).
import { cidrContains, parseAddressInto, parseCidr } from '../util/address.js'

export type Family = 'IPv4' | 'IPv6'

const isV6 = (a: string) => a.includes(':')

/** The netlink handle's isValidForSet: no loopback, no IPv6 link-local. */
function isLoopbackOrLinkLocal(address: string): boolean {
  return address === '::1' || /^127\./.test(address) || /^fe[89ab][0-9a-f]?:/i.test(address)
}

/**
 * The addresses of `family` among `nodeIPs` that NodePorts listen on. `nodePortAddresses` holds
 * canonical CIDRs or "primary" (the first node IP of each family); none of this family, or a
 * zero CIDR, means every address of the family.
 */
export function nodePortIPs(family: Family, nodeIPs: readonly string[], nodePortAddresses: readonly string[]): string[] {
  const ofFamily = nodeIPs.filter((ip) => isV6(ip) === (family === 'IPv6') && !isLoopbackOrLinkLocal(ip))
  const cidrs: string[] = []
  for (const a of nodePortAddresses) {
    if (a === 'primary') {
      const primary = nodeIPs.find((ip) => isV6(ip) === (family === 'IPv6'))
      if (primary !== undefined) cidrs.push(family === 'IPv6' ? `${primary}/128` : `${primary}/32`)
    } else if (isV6(a) === (family === 'IPv6')) {
      cidrs.push(a)
    }
  }
  if (cidrs.length === 0 || cidrs.some((c) => c.endsWith('/0'))) return ofFamily
  const parsed = cidrs.map((c) => parseCidr(c)!).filter((c) => c !== undefined)
  const bytes = new Uint8Array(16)
  return ofFamily.filter((ip) => parseAddressInto(ip, bytes, 0) !== 0 && parsed.some((c) => cidrContains(c, bytes, 0)))
}
