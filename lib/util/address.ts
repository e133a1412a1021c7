// IP addresses and prefixes as the native core stores them: 16 bytes, IPv4 v4-mapped
// (::ffff:a.b.c.d). Parsing is strict (no zone ids, no shorthand like "10.1"), because an
// address that parses differently here and in the kernel is a routing bug.

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

/** Writes an IPv4 dotted quad into out[off..off+4); false if the text is not one. */
function parseV4Into(text: string, out: Uint8Array, off: number): boolean {
  let part = 0
  let digits = 0
  let n = 0
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46 /* '.' ends the last part */
    if (c === 46) {
      if (digits === 0 || n > 3) return false
      out[off + n++] = part
      part = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false // no leading zeros: "010" is octal to some parsers
      part = part * 10 + (c - 48)
      if (++digits > 3 || part > 255) return false
    } else {
      return false
    }
  }
  return n === 4
}

function parseV6Into(text: string, out: Uint8Array, off: number): boolean {
  if (text.length < 2 || text.length > 45) return false
  const dbl = text.indexOf('::')
  if (dbl !== -1 && text.indexOf('::', dbl + 1) !== -1) return false
  const words: number[] = []
  let tailStart = -1
  const parseGroups = (s: string, allowV4Tail: boolean): boolean => {
    if (s === '') return true
    const groups = s.split(':')
    for (let g = 0; g < groups.length; g++) {
      const grp = groups[g]
      if (allowV4Tail && g === groups.length - 1 && grp.includes('.')) {
        const v4 = new Uint8Array(4)
        if (!parseV4Into(grp, v4, 0)) return false
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
        continue
      }
      if (grp.length === 0 || grp.length > 4 || !/^[0-9a-fA-F]+$/.test(grp)) return false
      words.push(parseInt(grp, 16))
    }
    return true
  }
  if (dbl === -1) {
    if (!parseGroups(text, true) || words.length !== 8) return false
  } else {
    if (!parseGroups(text.slice(0, dbl), false)) return false
    tailStart = words.length
    if (!parseGroups(text.slice(dbl + 2), true)) return false
    const missing = 8 - words.length
    if (missing < 1) return false
    words.splice(tailStart, 0, ...new Array<number>(missing).fill(0))
  }
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = words[i] >> 8
    out[off + 2 * i + 1] = words[i] & 0xff
  }
  return true
}

function isV4Mapped(bytes: Uint8Array, off: number): boolean {
  for (let i = 0; i < 12; i++) if (bytes[off + i] !== V4_MAPPED_PREFIX[i]) return false
  return true
}

/**
 * Parses an IPv4 or IPv6 address into out[off..off+16). Returns 4, 6, or 0 when invalid.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is family 4, as its canonical text
 * (the dotted quad) is, and as Go's net.IP.To4 and Kubernetes see it.
 */
export function parseAddressInto(text: string, out: Uint8Array, off = 0): 0 | 4 | 6 {
  if (typeof text !== 'string') return 0
  if (text.includes(':')) return parseV6Into(text, out, off) ? (isV4Mapped(out, off) ? 4 : 6) : 0
  for (let i = 0; i < 12; i++) out[off + i] = V4_MAPPED_PREFIX[i]
  return parseV4Into(text, out, off + 12) ? 4 : 0
}

export function isIPv4(text: string): boolean {
  return !text.includes(':') && parseV4Into(text, new Uint8Array(4), 0)
}

/** The family of an address, or 0 when the text is not one. */
export function addressFamily(text: string): 0 | 4 | 6 {
  return parseAddressInto(text, new Uint8Array(16), 0)
}

/**
 * RFC 5952 text of a 16-byte address; IPv4-mapped addresses as the dotted quad. The native
 * addon's dumps (native/addon/addon.cc formatAddr) spell addresses exactly the same way.
 */
export function formatAddress(bytes: Uint8Array, off = 0): string {
  if (isV4Mapped(bytes, off)) return `${bytes[off + 12]}.${bytes[off + 13]}.${bytes[off + 14]}.${bytes[off + 15]}`
  const words: number[] = []
  for (let i = 0; i < 8; i++) words.push((bytes[off + 2 * i] << 8) | bytes[off + 2 * i + 1])
  // RFC 5952: compress the longest run (length >= 2) of zero words, the first on ties.
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':')
  if (bestStart === -1) return hex(words)
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`
}

/** Canonical text of an address (e.g. "2001:DB8:0::1" -> "2001:db8::1"), or undefined. */
export function canonicalAddress(text: string): string | undefined {
  const b = new Uint8Array(16)
  return parseAddressInto(text, b, 0) ? formatAddress(b, 0) : undefined
}

export interface ParsedCidr {
  /** Network address in the 16-byte form (host bits cleared). */
  bytes: Uint8Array
  /** Prefix length over the 16-byte form (IPv4 prefixes + 96). */
  bits: number
  family: 4 | 6
  /** Canonical text, e.g. "10.0.0.0/8". */
  text: string
}

/**
 * Parses "addr/len" (or a bare address, as a host prefix). Host bits are cleared, as the kernel does.
 * The length is over 32 bits for dotted-quad text and over 128 for IPv6 text (also for
 * ::ffff:a.b.c.d). A prefix that lies inside the IPv4-mapped range (::ffff:0:0/96 or longer)
 * is IPv4: family 4, text "a.b.c.d/(len - 96)"; shorter ones stay IPv6. `text` parses back to
 * the same prefix.
 */
export function parseCidr(text: string): ParsedCidr | undefined {
  if (typeof text !== 'string') return undefined
  const slash = text.indexOf('/')
  const addr = slash === -1 ? text : text.slice(0, slash)
  const bytes = new Uint8Array(16)
  if (!parseAddressInto(addr, bytes, 0)) return undefined
  const v6Text = addr.includes(':')
  const max = v6Text ? 128 : 32
  let len = max
  if (slash !== -1) {
    const lenText = text.slice(slash + 1)
    if (!/^(0|[1-9]\d{0,2})$/.test(lenText)) return undefined // no sign, no leading zeros ("/08")
    len = Number(lenText)
    if (len > max) return undefined
  }
  const bits = v6Text ? len : len + 96
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i))
    bytes[i] &= (0xff00 >> keep) & 0xff
  }
  // Clearing host bits of a prefix shorter than 96 also clears the ::ffff marker, so a network
  // that is still v4-mapped here is one of IPv4.
  if (bits >= 96 && isV4Mapped(bytes, 0)) return { bytes, bits, family: 4, text: `${formatAddress(bytes, 0)}/${bits - 96}` }
  return { bytes, bits, family: 6, text: `${formatAddress(bytes, 0)}/${bits}` }
}

export function cidrContains(c: ParsedCidr, addr: Uint8Array, off = 0): boolean {
  const full = c.bits >> 3
  for (let i = 0; i < full; i++) if (addr[off + i] !== c.bytes[i]) return false
  const rest = c.bits & 7
  if (rest === 0) return true
  const mask = (0xff00 >> rest) & 0xff
  return (addr[off + full] & mask) === (c.bytes[full] & mask)
}
