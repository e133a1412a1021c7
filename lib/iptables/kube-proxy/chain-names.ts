// kube-proxy's chain names: a prefix plus the first 16 characters of the
// base32 (RFC 4648, upper case, padded) encoding of sha256(name + protocol
// [+ endpoint]), because iptables chain names are limited to 28 characters.

import { createHash } from 'node:crypto'

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** Standard base32 with '=' padding, as Go's base32.StdEncoding. */
export function base32(bytes: Uint8Array): string {
  let out = ''
  let buffer = 0
  let bits = 0
  for (const b of bytes) {
    buffer = (buffer << 8) | b
    bits += 8
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31]
      bits -= 5
    }
    buffer &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31]
  while (out.length % 8 !== 0) out += '='
  return out
}

function hash16(text: string): string {
  return base32(createHash('sha256').update(text, 'utf8').digest()).slice(0, 16)
}

/** `protocol` is lower case ("tcp"), as kube-proxy passes it. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return hash16(servicePortName + protocol)
}

export const serviceClusterChainName = (spn: string, protocol: string): string => `KUBE-SVC-${portProtoHash(spn, protocol)}`
export const serviceLocalChainName = (spn: string, protocol: string): string => `KUBE-SVL-${portProtoHash(spn, protocol)}`
export const serviceFirewallChainName = (spn: string, protocol: string): string => `KUBE-FW-${portProtoHash(spn, protocol)}`
export const serviceExternalChainName = (spn: string, protocol: string): string => `KUBE-EXT-${portProtoHash(spn, protocol)}`

/** `endpoint` is "ip:port" ("[ip]:port" for IPv6), as kube-proxy's endpoint String(). */
export function endpointChainName(spn: string, protocol: string, endpoint: string): string {
  return `KUBE-SEP-${hash16(spn + protocol + endpoint)}`
}

const SERVICE_CHAIN_PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-']

/** True for the per-service chains kube-proxy creates and garbage-collects. */
export function isServiceChainName(name: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p))
}
