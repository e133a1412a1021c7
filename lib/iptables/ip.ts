// IP addresses and CIDRs as numbers, so the evaluator's hot path compares
// integers instead of strings. IPv4 is one uint32; IPv6 is four uint32 words
// (most significant first), which lets both families share one masked compare.

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

function parseV4Words(s: string): number | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  let v = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    v = v * 256 + n
  }
  return v >>> 0
}

function parseV6Words(s: string): number[] | undefined {
  // Strip a zone id ("fe80::1%eth0"): it does not take part in matching.
  const pct = s.indexOf('%')
  if (pct >= 0) s = s.slice(0, pct)
  const dbl = s.indexOf('::')
  if (dbl !== s.lastIndexOf('::')) return undefined
  let head: string[]
  let tail: string[]
  if (dbl >= 0) {
    head = s.slice(0, dbl) === '' ? [] : s.slice(0, dbl).split(':')
    tail = s.slice(dbl + 2) === '' ? [] : s.slice(dbl + 2).split(':')
  } else {
    head = s.split(':')
    tail = []
  }
  const groups: number[] = []
  const pushGroups = (list: string[], allowV4Tail: boolean): boolean => {
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!
      if (allowV4Tail && i === list.length - 1 && g.includes('.')) {
        const v4 = parseV4Words(g)
        if (v4 === undefined) return false
        groups.push(v4 >>> 16, v4 & 0xffff)
        continue
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false
      groups.push(parseInt(g, 16))
    }
    return true
  }
  if (!pushGroups(head, tail.length === 0 && dbl < 0)) return undefined
  const headLen = groups.length
  if (!pushGroups(tail, true)) return undefined
  if (dbl >= 0) {
    if (groups.length > 7) return undefined
    const zeros = new Array<number>(8 - groups.length).fill(0)
    groups.splice(headLen, 0, ...zeros)
  } else if (groups.length !== 8) {
    return undefined
  }
  const w: number[] = []
  for (let i = 0; i < 8; i += 2) w.push(((groups[i]! << 16) | groups[i + 1]!) >>> 0)
  return w
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. */
export function parseAddr(s: string): Addr | undefined {
  if (s.includes(':')) {
    const w = parseV6Words(s)
    return w ? { family: 6, w } : undefined
  }
  const v = parseV4Words(s)
  return v === undefined ? undefined : { family: 4, w: [v] }
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
