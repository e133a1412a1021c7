// Packet captures in memory: pcap (microsecond and nanosecond, either byte order) and pcapng
// (section, interface, enhanced and simple packet blocks; other blocks skipped) read into one
// buffer with per-packet offsets, so the packets can go to Dataplane.processPackets as they
// lie; classic pcap written back out.
import { SvcplaneTypeError } from '../errors.js'

/** LINKTYPE_ values (tcpdump.org/linktypes.html) that carry frames the dataplane parses. */
export const LINKTYPE_ETHERNET = 1
export const LINKTYPE_RAW = 101
const RAW_TYPES = new Set([LINKTYPE_RAW, 12, 14, 228, 229])

export type CaptureLink = 'ethernet' | 'raw'

export interface Capture {
  format: 'pcap' | 'pcapng'
  /** The file's bytes; packet i is data[offsets[i] .. offsets[i] + lengths[i]). */
  data: Uint8Array
  offsets: Uint32Array
  lengths: Uint32Array
  /** Original (on-the-wire) lengths; larger than lengths[i] when the capture was cut. */
  originalLengths: Uint32Array
  /** Seconds since the epoch, with the file's precision. */
  timestamps: Float64Array
  /** Link type of each packet's interface (LINKTYPE_ value). */
  linkTypes: Uint16Array
  count: number
}

/** A capture that cannot be read (bad magic, truncated record): bad input, code 'INVALID'. */
export class CaptureError extends Error {
  readonly code = 'INVALID'
}

export function linkOf(linkType: number): CaptureLink | undefined {
  if (linkType === LINKTYPE_ETHERNET) return 'ethernet'
  if (RAW_TYPES.has(linkType)) return 'raw'
  return undefined
}

class Growing {
  offsets = new Uint32Array(1024)
  lengths = new Uint32Array(1024)
  orig = new Uint32Array(1024)
  ts = new Float64Array(1024)
  links = new Uint16Array(1024)
  n = 0
  push(off: number, len: number, orig: number, ts: number, link: number): void {
    if (this.n === this.offsets.length) {
      const grow = <T extends Uint32Array | Float64Array | Uint16Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2)
        b.set(a as never)
        return b
      }
      this.offsets = grow(this.offsets)
      this.lengths = grow(this.lengths)
      this.orig = grow(this.orig)
      this.ts = grow(this.ts)
      this.links = grow(this.links)
    }
    this.offsets[this.n] = off
    this.lengths[this.n] = len
    this.orig[this.n] = orig
    this.ts[this.n] = ts
    this.links[this.n] = link
    this.n++
  }
}

function readPcap(data: Uint8Array, view: DataView, out: Growing): void {
  const m = view.getUint32(0, false)
  const le = m === 0xd4c3b2a1 || m === 0x4d3cb2a1
  const nano = m === 0xa1b23c4d || m === 0x4d3cb2a1
  if (data.length < 24) throw new CaptureError('pcap: file header truncated')
  const link = view.getUint32(20, le) & 0xffff
  let off = 24
  while (off < data.length) {
    if (data.length - off < 16) throw new CaptureError(`pcap: record header at byte ${off} truncated`)
    const sec = view.getUint32(off, le)
    const frac = view.getUint32(off + 4, le)
    const incl = view.getUint32(off + 8, le)
    const orig = view.getUint32(off + 12, le)
    if (incl > data.length - off - 16) throw new CaptureError(`pcap: record at byte ${off} claims ${incl} bytes, ${data.length - off - 16} remain`)
    out.push(off + 16, incl, orig, sec + frac / (nano ? 1e9 : 1e6), link)
    off += 16 + incl
  }
}

function readPcapng(data: Uint8Array, view: DataView, out: Growing): void {
  let off = 0
  let le = true
  let ifaces: { link: number; tsUnit: number }[] = []
  while (off < data.length) {
    if (data.length - off < 12) throw new CaptureError(`pcapng: block at byte ${off} truncated`)
    const type = view.getUint32(off, le)
    if (type === 0x0a0d0d0a) {
      const bom = view.getUint32(off + 8, true)
      if (bom === 0x1a2b3c4d) le = true
      else if (bom === 0x4d3c2b1a) le = false
      else throw new CaptureError(`pcapng: bad byte-order magic at byte ${off + 8}`)
      ifaces = []
    }
    const len = view.getUint32(off + 4, le)
    if (len < 12 || len % 4 !== 0 || len > data.length - off) throw new CaptureError(`pcapng: block at byte ${off} has bad length ${len}`)
    const body = off + 8
    const bodyEnd = off + len - 4
    if (type === 1) {
      // Interface description: link type, then options; if_tsresol (9) sets the time unit.
      const link = view.getUint16(body, le)
      let tsUnit = 1e-6
      let o = body + 8
      while (o + 4 <= bodyEnd) {
        const code = view.getUint16(o, le)
        const olen = view.getUint16(o + 2, le)
        if (code === 0) break
        if (code === 9 && olen >= 1) {
          const r = data[o + 4]
          tsUnit = r & 0x80 ? 2 ** -(r & 0x7f) : 10 ** -(r & 0x7f)
        }
        o += 4 + Math.ceil(olen / 4) * 4
      }
      ifaces.push({ link, tsUnit })
    } else if (type === 6) {
      const id = view.getUint32(body, le)
      const iface = ifaces[id]
      if (!iface) throw new CaptureError(`pcapng: packet at byte ${off} names interface ${id}, which is not described`)
      const ts = (view.getUint32(body + 4, le) * 2 ** 32 + view.getUint32(body + 8, le)) * iface.tsUnit
      const cap = view.getUint32(body + 12, le)
      const orig = view.getUint32(body + 16, le)
      if (cap > bodyEnd - (body + 20)) throw new CaptureError(`pcapng: packet at byte ${off} claims ${cap} bytes beyond its block`)
      out.push(body + 20, cap, orig, ts, iface.link)
    } else if (type === 3) {
      const iface = ifaces[0]
      if (!iface) throw new CaptureError(`pcapng: simple packet at byte ${off} before any interface`)
      const orig = view.getUint32(body, le)
      const cap = Math.min(orig, bodyEnd - (body + 4))
      out.push(body + 4, cap, orig, 0, iface.link)
    }
    off += len
  }
}

/** Reads a pcap or pcapng capture held in memory (the bytes are not copied). */
const CAPTURE_MAGICS = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a]

/** Throws at once when the first bytes are not a pcap or pcapng header (so a wrong file is not read to its end). */
export function checkCaptureStart(start: Uint8Array): void {
  if (start.length < 4) return
  const magic = new DataView(start.buffer, start.byteOffset, start.byteLength).getUint32(0, false)
  if (!CAPTURE_MAGICS.includes(magic)) throw new CaptureError(`not a pcap or pcapng file (magic 0x${magic.toString(16).padStart(8, '0')})`)
}

export function readCapture(bytes: Uint8Array): Capture {
  if (!(bytes instanceof Uint8Array)) throw new SvcplaneTypeError('capture must be a Uint8Array or Buffer')
  if (bytes.length < 4) throw new CaptureError('not a pcap or pcapng file: too short')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = view.getUint32(0, false)
  const out = new Growing()
  let format: Capture['format']
  if ([0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1].includes(magic)) {
    format = 'pcap'
    readPcap(bytes, view, out)
  } else if (magic === 0x0a0d0d0a) {
    format = 'pcapng'
    readPcapng(bytes, view, out)
  } else {
    throw new CaptureError(`not a pcap or pcapng file (magic 0x${magic.toString(16).padStart(8, '0')})`)
  }
  return {
    format,
    data: bytes,
    offsets: out.offsets.subarray(0, out.n),
    lengths: out.lengths.subarray(0, out.n),
    originalLengths: out.orig.subarray(0, out.n),
    timestamps: out.ts.subarray(0, out.n),
    linkTypes: out.links.subarray(0, out.n),
    count: out.n,
  }
}

/** Writes classic pcap (microsecond timestamps, little-endian) record by record. */
export class PcapWriter {
  private readonly chunks: Uint8Array[] = []
  private size = 0
  count = 0

  constructor(readonly linkType: number, readonly snaplen = 262144) {
    const h = new Uint8Array(24)
    const v = new DataView(h.buffer)
    v.setUint32(0, 0xa1b2c3d4, true)
    v.setUint16(4, 2, true)
    v.setUint16(6, 4, true)
    v.setUint32(16, snaplen, true)
    v.setUint32(20, linkType, true)
    this.push(h)
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b)
    this.size += b.length
  }

  /** Adds a packet (copied) with its timestamp in seconds and its original length. */
  write(packet: Uint8Array, timestamp: number, originalLength = packet.length): void {
    const h = new Uint8Array(16)
    const v = new DataView(h.buffer)
    let sec = Math.floor(timestamp)
    let usec = Math.round((timestamp - sec) * 1e6)
    if (usec >= 1e6) {
      sec += 1
      usec -= 1e6
    }
    v.setUint32(0, sec >>> 0, true)
    v.setUint32(4, usec, true)
    v.setUint32(8, packet.length, true)
    v.setUint32(12, Math.max(originalLength, packet.length), true)
    this.push(h)
    this.push(packet.slice())
    this.count++
  }

  /** The whole file. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size)
    let o = 0
    for (const c of this.chunks) {
      out.set(c, o)
      o += c.length
    }
    return out
  }
}
