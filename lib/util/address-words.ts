// IP addresses and CIDRs as 32-bit words, so the netfilter evaluators' hot paths compare integers
// instead of strings. IPv4 is one uint32; IPv6 is four uint32 words (most significant first), which
// lets both families share one masked compare. Text is parsed by ./address.ts, the one strict
// parser (no leading zeros, no zone ids); here the family follows the text ("::ffff:a.b.c.d" is
// an IPv6 address to an ip6tables rule), and dotted masks ("/255.255.0.0") are accepted.

import { parseAddressInto } from './address.js'

export type Family = 4 | 6

/** A parsed address: `w` holds 1 word (IPv4) or 4 words (IPv6). */
export interface Addr {
  readonly family: Family
  readonly w: readonly number[]
}

/** A parsed prefix: address words already masked, plus the mask words. */
export interface Cidr {
  readonly family: Family
  readonly w: readonly number[]
  readonly m: readonly number[]
  /** prefix length, or -1 for a non-contiguous dotted mask */
  readonly bits: number
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. */
export function parseAddr(s: string): Addr | undefined {
  const b = new Uint8Array(16)
  if (parseAddressInto(s, b, 0) === 0) return undefined
  const word = (i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0
  return s.includes(':') ? { family: 6, w: [word(0), word(4), word(8), word(12)] } : { family: 4, w: [word(12)] }
}

function maskWords(family: Family, bits: number): number[] {
  const n = family === 4 ? 1 : 4
  const m: number[] = []
  for (let i = 0; i < n; i++) {
    const b = Math.max(0, Math.min(32, bits - i * 32))
    m.push(b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0)
  }
  return m
}

/** Parses "a.b.c.d", "a.b.c.d/n", "a.b.c.d/255.255.0.0" or an IPv6 prefix. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/')
  const addr = parseAddr(slash < 0 ? s : s.slice(0, slash))
  if (!addr) return undefined
  const max = addr.family === 4 ? 32 : 128
  let bits = max
  let m: number[]
  if (slash >= 0) {
    const suffix = s.slice(slash + 1)
    if (/^\d{1,3}$/.test(suffix)) {
      bits = Number(suffix)
      if (bits > max) return undefined
      m = maskWords(addr.family, bits)
    } else {
      const mask = parseAddr(suffix)
      if (!mask || mask.family !== addr.family) return undefined
      m = [...mask.w]
      bits = contiguousBits(m)
    }
  } else {
    m = maskWords(addr.family, bits)
  }
  const w = addr.w.map((x, i) => (x & m[i]!) >>> 0)
  return { family: addr.family, w, m, bits }
}

function contiguousBits(m: readonly number[]): number {
  let bits = 0
  let seenZero = false
  for (const word of m) {
    for (let b = 31; b >= 0; b--) {
      const set = ((word >>> b) & 1) === 1
      if (set && seenZero) return -1
      if (set) bits++
      else seenZero = true
    }
  }
  return bits
}

/** True when `a` lies inside `c` (families must agree). */
export function cidrContains(c: Cidr, a: Addr): boolean {
  if (c.family !== a.family) return false
  if (a.family === 4) return ((a.w[0]! & c.m[0]!) >>> 0) === c.w[0]
  for (let i = 0; i < 4; i++) if (((a.w[i]! & c.m[i]!) >>> 0) !== c.w[i]) return false
  return true
}

/** Canonical text of an address (IPv6 compressed as RFC 5952). */
export function formatAddr(a: Addr): string {
  if (a.family === 4) {
    const v = a.w[0]!
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
  }
  const g: number[] = []
  for (const word of a.w) g.push(word >>> 16, word & 0xffff)
  // Longest run of zero groups (length >= 2) becomes "::".
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = g.map((x) => x.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** Applies a mask to an address (for `-m recent --mask`). */
export function maskAddr(a: Addr, mask: Addr): Addr {
  return { family: a.family, w: a.w.map((x, i) => (x & (mask.w[i] ?? 0xffffffff)) >>> 0) }
}

/** A compact key for maps keyed by address. */
export function addrKey(a: Addr): string {
  return a.family === 4 ? String(a.w[0]) : a.w.join(',')
}

export const LOOPBACK_V4: Cidr = parseCidr('127.0.0.0/8')!
export const LOOPBACK_V6: Cidr = parseCidr('::1/128')!
export const MULTICAST_V4: Cidr = parseCidr('224.0.0.0/4')!
export const MULTICAST_V6: Cidr = parseCidr('ff00::/8')!
