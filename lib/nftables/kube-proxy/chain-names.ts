// kube-proxy's nftables object names (pkg/proxy/nftables/proxier.go): a prefix, then
// "HASH-ns/name/proto/port" where HASH is the first 8 characters of the base32 sha256 of the
// rest, so names stay unique and tell near-identical endpoints apart at a glance. nftables
// names may be 256 bytes; kube-proxy keeps 16 for the prefix and truncates the rest to 240.
import { createHash } from 'node:crypto'
import { base32 } from '../../iptables/kube-proxy/chain-names.js'

const NAME_LENGTH_MAX = 256
const PREFIX_LENGTH_MAX = 16
const BASE_LENGTH_MAX = NAME_LENGTH_MAX - PREFIX_LENGTH_MAX

export const CHAIN_PREFIX = {
  cluster: 'service-',
  local: 'local-',
  external: 'external-',
  endpoint: 'endpoint-',
  affinity: 'affinity-',
  firewall: 'firewall-',
} as const

/** The hash-prefixed, truncated base of a chain name. */
export function hashAndTruncate(name: string): string {
  const hash = base32(createHash('sha256').update(name, 'utf8').digest()).slice(0, 8)
  const out = `${hash}-${name}`
  return out.length > BASE_LENGTH_MAX ? `${out.slice(0, BASE_LENGTH_MAX - 3)}...` : out
}

/** "ULMVA6XW-ns1/svc1/tcp/p80"; `protocol` lower case. */
export function servicePortChainNameBase(namespace: string, name: string, portName: string, protocol: string): string {
  return hashAndTruncate(`${namespace}/${name}/${protocol}/${portName}`)
}

/** "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"; `endpoint` is "ip:port" or "[ipv6]:port". */
export function servicePortEndpointChainNameBase(namespace: string, name: string, portName: string, protocol: string, endpoint: string): string {
  // As Go's net.SplitHostPort: the text as written, not canonicalised (it is part of a name).
  const colon = endpoint.lastIndexOf(':')
  const ip = endpoint.slice(0, colon).replace(/^\[(.*)\]$/, '$1').replaceAll(':', '.')
  return hashAndTruncate(`${namespace}/${name}/${protocol}/${portName}__${ip}/${endpoint.slice(colon + 1)}`)
}

/** Per-service chains are the only ones with a "/" in their name. */
export function isServiceChainName(name: string): boolean {
  return name.includes('/')
}

export function isAffinitySetName(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX.affinity)
}
