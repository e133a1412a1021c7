// Test packets, built from scratch, and a checksum implementation of their own (RFC 1071 by
// the book, and a bitwise CRC32c), sharing nothing with the native core.

export type Proto = 'TCP' | 'UDP' | 'SCTP' | 'ICMP'

export interface PacketSpec {
  src: string
  dst: string
  proto?: Proto
  sport?: number
  dport?: number
  /** TCP flags byte (default SYN). */
  flags?: number
  seq?: number
  payload?: number
  ethernet?: boolean
  vlan?: boolean
  udpNoChecksum?: boolean
  ipId?: number
}

const PROTO = { TCP: 6, UDP: 17, SCTP: 132, ICMP: 1 } as const

export function addrBytes(a: string): number[] {
  if (!a.includes(':')) return a.split('.').map(Number)
  const [head, tail] = a.split('::')
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail !== '' ? tail.split(':') : []
  const words = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((w) => parseInt(w, 16))
  return words.flatMap((w) => [w >> 8, w & 0xff])
}

/** RFC 1071: the 16-bit ones' complement sum, byte pairs big-endian, a lone last byte padded. */
export function onesSum(bytes: ArrayLike<number>, start = 0, end = bytes.length, init = 0): number {
  let total = init
  for (let i = start; i < end; i += 2) total += (bytes[i] << 8) + (i + 1 < end ? bytes[i + 1] : 0)
  while (total > 0xffff) total = (total & 0xffff) + Math.floor(total / 0x10000)
  return total
}

export function crc32c(bytes: ArrayLike<number>, start: number, end: number): number {
  let crc = 0xffffffff
  for (let i = start; i < end; i++) {
    crc ^= bytes[i]
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

export interface Layout {
  l3: number
  l4: number
  end: number
  family: 4 | 6
  proto: number
}

/** Finds the headers of an unfragmented packet (raw IP at `l3`). */
export function layout(p: Uint8Array, l3: number): Layout {
  const family = (p[l3] >> 4) as 4 | 6
  if (family === 4) return { l3, l4: l3 + (p[l3] & 15) * 4, end: l3 + ((p[l3 + 2] << 8) | p[l3 + 3]), family, proto: p[l3 + 9] }
  return { l3, l4: l3 + 40, end: l3 + 40 + ((p[l3 + 4] << 8) | p[l3 + 5]), family, proto: p[l3 + 6] }
}

function pseudo(p: Uint8Array, L: Layout): number {
  const alen = L.family === 4 ? 4 : 16
  const so = L.family === 4 ? L.l3 + 12 : L.l3 + 8
  const len = L.end - L.l4
  let s = onesSum(p, so, so + 2 * alen)
  s = onesSum([0, L.proto, (len >> 8) & 0xff, len & 0xff], 0, 4, s)
  return s
}

function csumOffset(proto: number): number {
  return proto === 6 ? 16 : proto === 17 ? 6 : 2
}

/** The checksum the L4 header should carry (the field itself taken as zero). */
export function expectedL4Checksum(p: Uint8Array, L: Layout): number {
  const at = L.l4 + csumOffset(L.proto)
  const saved = [p[at], p[at + 1]]
  p[at] = p[at + 1] = 0
  const init = L.proto === 1 ? 0 : pseudo(p, L)
  let c = ~onesSum(p, L.l4, L.end, init) & 0xffff
  p[at] = saved[0]
  p[at + 1] = saved[1]
  if (L.proto === 17 && c === 0) c = 0xffff
  return c
}

export function expectedIpv4Checksum(p: Uint8Array, l3: number): number {
  const ihl = (p[l3] & 15) * 4
  const saved = [p[l3 + 10], p[l3 + 11]]
  p[l3 + 10] = p[l3 + 11] = 0
  const c = ~onesSum(p, l3, l3 + ihl) & 0xffff
  p[l3 + 10] = saved[0]
  p[l3 + 11] = saved[1]
  return c
}

/** Problems with the packet's checksums (empty when all are right). */
export function checksumProblems(p: Uint8Array, l3: number): string[] {
  const L = layout(p, l3)
  const out: string[] = []
  const get = (o: number) => (p[o] << 8) | p[o + 1]
  if (L.family === 4 && expectedIpv4Checksum(p, l3) !== get(l3 + 10)) out.push('ipv4 header')
  if (L.proto === 132) {
    const saved = p.slice(L.l4 + 8, L.l4 + 12)
    p.fill(0, L.l4 + 8, L.l4 + 12)
    const c = crc32c(p, L.l4, L.end)
    p.set(saved, L.l4 + 8)
    const have = (saved[0] | (saved[1] << 8) | (saved[2] << 16) | (saved[3] << 24)) >>> 0
    if (c !== have) out.push('sctp crc32c')
    return out
  }
  const have = get(L.l4 + csumOffset(L.proto))
  if (L.proto === 17 && have === 0) {
    if (L.family === 6) out.push('udp over ipv6 without checksum')
    return out
  }
  if (expectedL4Checksum(p, L) !== have) out.push(`l4 (${L.proto})`)
  return out
}

export interface Built {
  bytes: Uint8Array
  l3: number
  l4: number
}

export function build(s: PacketSpec): Built {
  const src = addrBytes(s.src)
  const dst = addrBytes(s.dst)
  const v4 = src.length === 4
  const proto = PROTO[s.proto ?? 'TCP']
  const payload = s.payload ?? 0
  const l4len = (proto === 6 ? 20 : proto === 17 ? 8 : proto === 132 ? 12 : 8) + payload
  const head: number[] = []
  if (s.ethernet) {
    head.push(2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2)
    if (s.vlan) head.push(0x81, 0x00, 0, 7)
    head.push(...(v4 ? [0x08, 0x00] : [0x86, 0xdd]))
  }
  const l3 = head.length
  const ipLen = v4 ? 20 : 40
  const p = new Uint8Array(l3 + ipLen + l4len)
  p.set(head)
  const l4 = l3 + ipLen
  if (v4) {
    p[l3] = 0x45
    p[l3 + 2] = (ipLen + l4len) >> 8
    p[l3 + 3] = (ipLen + l4len) & 0xff
    p[l3 + 4] = ((s.ipId ?? 0x1234) >> 8) & 0xff
    p[l3 + 5] = (s.ipId ?? 0x1234) & 0xff
    p[l3 + 8] = 64
    p[l3 + 9] = proto
    p.set(src, l3 + 12)
    p.set(dst, l3 + 16)
  } else {
    p[l3] = 0x60
    p[l3 + 4] = l4len >> 8
    p[l3 + 5] = l4len & 0xff
    p[l3 + 6] = proto
    p[l3 + 7] = 64
    p.set(src, l3 + 8)
    p.set(dst, l3 + 24)
  }
  const sport = s.sport ?? 40000
  const dport = s.dport ?? 80
  p[l4] = sport >> 8
  p[l4 + 1] = sport & 0xff
  p[l4 + 2] = dport >> 8
  p[l4 + 3] = dport & 0xff
  for (let i = 0; i < payload; i++) p[l4 + l4len - payload + i] = (i * 13 + 5) & 0xff
  const L: Layout = { l3, l4, end: p.length, family: v4 ? 4 : 6, proto }
  if (proto === 6) {
    const seq = s.seq ?? 1000
    p[l4 + 4] = (seq >>> 24) & 0xff
    p[l4 + 5] = (seq >>> 16) & 0xff
    p[l4 + 6] = (seq >>> 8) & 0xff
    p[l4 + 7] = seq & 0xff
    p[l4 + 12] = 0x50
    p[l4 + 13] = s.flags ?? 0x02
    p[l4 + 14] = 0xff
    p[l4 + 15] = 0xff
    const c = expectedL4Checksum(p, L)
    p[l4 + 16] = c >> 8
    p[l4 + 17] = c & 0xff
  } else if (proto === 17) {
    p[l4 + 4] = l4len >> 8
    p[l4 + 5] = l4len & 0xff
    if (!s.udpNoChecksum) {
      const c = expectedL4Checksum(p, L)
      p[l4 + 6] = c >> 8
      p[l4 + 7] = c & 0xff
    }
  } else if (proto === 132) {
    const c = crc32c(p, l4, p.length)
    p[l4 + 8] = c & 0xff
    p[l4 + 9] = (c >>> 8) & 0xff
    p[l4 + 10] = (c >>> 16) & 0xff
    p[l4 + 11] = (c >>> 24) & 0xff
  } else {
    p[l4] = 8 // echo request
    p[l4 + 1] = 0
    const c = expectedL4Checksum(p, L)
    p[l4 + 2] = c >> 8
    p[l4 + 3] = c & 0xff
  }
  if (v4) {
    const c = expectedIpv4Checksum(p, l3)
    p[l3 + 10] = c >> 8
    p[l3 + 11] = c & 0xff
  }
  return { bytes: p, l3, l4 }
}

/** Formats the address at byte offset `at` (4 or 16 bytes). */
export function addrAt(p: Uint8Array, at: number, family: 4 | 6): string {
  if (family === 4) return `${p[at]}.${p[at + 1]}.${p[at + 2]}.${p[at + 3]}`
  const w: string[] = []
  for (let i = 0; i < 16; i += 2) w.push(((p[at + i] << 8) | p[at + i + 1]).toString(16))
  return w.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')
}

export function portAt(p: Uint8Array, at: number): number {
  return (p[at] << 8) | p[at + 1]
}

/** Concatenates packets into one buffer with offsets and lengths, as processPackets takes them. */
export function batch(packets: Uint8Array[]): { buffer: Uint8Array; offsets: Uint32Array; lengths: Uint32Array } {
  const total = packets.reduce((n, p) => n + p.length, 0)
  const buffer = new Uint8Array(total)
  const offsets = new Uint32Array(packets.length)
  const lengths = new Uint32Array(packets.length)
  let o = 0
  packets.forEach((p, i) => {
    buffer.set(p, o)
    offsets[i] = o
    lengths[i] = p.length
    o += p.length
  })
  return { buffer, offsets, lengths }
}

/** A classic pcap file (microseconds, little-endian) of the given frames. */
export function pcapFile(frames: Uint8Array[], linkType = 1, t0 = 1700000000): Uint8Array {
  const parts: Uint8Array[] = []
  const h = new DataView(new ArrayBuffer(24))
  h.setUint32(0, 0xa1b2c3d4, true)
  h.setUint16(4, 2, true)
  h.setUint16(6, 4, true)
  h.setUint32(16, 65535, true)
  h.setUint32(20, linkType, true)
  parts.push(new Uint8Array(h.buffer))
  frames.forEach((f, i) => {
    const r = new DataView(new ArrayBuffer(16))
    r.setUint32(0, t0 + i, true)
    r.setUint32(4, 250000, true)
    r.setUint32(8, f.length, true)
    r.setUint32(12, f.length, true)
    parts.push(new Uint8Array(r.buffer), f)
  })
  return Buffer.concat(parts)
}

/** A pcapng file (one section, one interface, enhanced packet blocks, nanosecond resolution). */
export function pcapngFile(frames: Uint8Array[], linkType = 1): Uint8Array {
  const blocks: Buffer[] = []
  const block = (type: number, body: Buffer) => {
    const pad = (4 - (body.length % 4)) % 4
    const len = 12 + body.length + pad
    const b = Buffer.alloc(len)
    b.writeUInt32LE(type, 0)
    b.writeUInt32LE(len, 4)
    body.copy(b, 8)
    b.writeUInt32LE(len, len - 4)
    blocks.push(b)
  }
  const shb = Buffer.alloc(16)
  shb.writeUInt32LE(0x1a2b3c4d, 0)
  shb.writeUInt16LE(1, 4)
  shb.writeBigInt64LE(-1n, 8)
  block(0x0a0d0d0a, shb)
  const idb = Buffer.alloc(8 + 8 + 4)
  idb.writeUInt16LE(linkType, 0)
  idb.writeUInt32LE(65535, 4)
  idb.writeUInt16LE(9, 8) // if_tsresol
  idb.writeUInt16LE(1, 10)
  idb[12] = 9
  block(1, idb.subarray(0, 16 + 4))
  frames.forEach((f, i) => {
    const ts = BigInt(1700000000 + i) * 1000000000n
    const b = Buffer.alloc(20 + f.length)
    b.writeUInt32LE(0, 0)
    b.writeUInt32LE(Number(ts >> 32n), 4)
    b.writeUInt32LE(Number(ts & 0xffffffffn), 8)
    b.writeUInt32LE(f.length, 12)
    b.writeUInt32LE(f.length, 16)
    Buffer.from(f).copy(b, 20)
    block(6, b)
  })
  return Buffer.concat(blocks)
}
