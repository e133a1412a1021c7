// runPcap: a capture through the dataplane's packet path, translated packets out. What
// `svcplane pcap --cluster FILE --in IN --out OUT` runs.
//
// Every packet goes the "to-service" way: conntrack is looked up first, so replies from
// endpoints (and ICMP errors about flows) are reverse-translated, new flows to services are
// balanced and NATed, anything else passes untouched. Time is the capture's own: a packet's
// `now` is its timestamp minus the first one's, plus `start`. Dropped packets are left out of
// the output; a rejected packet is replaced by the reply REJECT would send (when `replies`).
import * as fs from 'node:fs'
import type { Dataplane } from '../dataplane/dataplane.js'
import { PACKET_REASONS, PacketReplies, type PacketReason, type RejectWith } from '../dataplane/packets.js'
import { VERDICTS } from '../dataplane/codes.js'
import type { Verdict } from '../dataplane/types.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'
import { readFileLimitedSync } from '../util/read-limited.js'
import { show } from '../util/show.js'
import { CaptureError, checkCaptureStart, linkOf, PcapWriter, readCapture } from './capture.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../errors.js'

/** What runPcap needs of a Proxier (mode 'native'): its dataplane and its node options. */
export interface PcapProxier {
  readonly dataplane: Dataplane | undefined
  readonly options: { node: { ips: string[] }; podCIDRs: string[]; masqueradeAll: boolean; mode: string }
  readonly pendingChanges?: number
  sync?(): unknown
}

export interface RunPcapOptions {
  /** A Proxier in mode 'native' (its dataplane is configured from its node options), or: */
  proxier?: PcapProxier
  /** a Dataplane, programmed and configured by the caller. */
  dataplane?: Dataplane
  /** Input capture: a path or the bytes of a pcap / pcapng file (Ethernet or raw IP). */
  in: string | Uint8Array
  /** Output path (classic pcap); omitted: only returned as `output`. */
  out?: string
  /** Packets per processPackets call (1..65536, default 256). */
  batchSize?: number
  /** `now` of the first packet, seconds (default 1). */
  start?: number
  /** Write the reply a rejected packet gets in its place (default true). */
  replies?: boolean
  rejectWith?: RejectWith
  /** A capture file larger than this is refused (bytes, default 256 MiB); one that does not start like a capture (/dev/zero) at once. */
  maxInputBytes?: number
}

/** 256 MiB, like the cluster files. */
export const DEFAULT_MAX_CAPTURE_BYTES = 256 * 1024 * 1024

const RUN_PCAP_KEYS = optionKeys<RunPcapOptions>({ proxier: true, dataplane: true, in: true, out: true, batchSize: true, start: true, replies: true, rejectWith: true, maxInputBytes: true })

/** An error about one of runPcap's files: `file` is the path, `role` says which ('in' or 'out'). */
export class PcapFileError extends Error {
  override name = 'PcapFileError'
  constructor(readonly role: 'in' | 'out', readonly file: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

function why(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e.code === 'ENOENT') return 'no such file or directory'
  if (e.code === 'EISDIR') return 'is a directory'
  if (e.code === 'EACCES') return 'permission denied'
  if (e.code === 'ENOTDIR') return 'a part of the path is not a directory'
  return (e.message ?? String(err)).split('\n')[0]!
}

export interface PcapSummary {
  format: 'pcap' | 'pcapng'
  linkType: number
  packets: number
  /** Packets (and reject replies) written. */
  written: number
  replies: number
  verdicts: Record<Verdict, number>
  reasons: Partial<Record<PacketReason, number>>
  /** The output capture. */
  output: Uint8Array
}

export function runPcap(o: RunPcapOptions): PcapSummary {
  if (o === null || typeof o !== 'object') throw new SvcplaneTypeError('runPcap options must be an object')
  checkOptions('runPcap options', o, RUN_PCAP_KEYS)
  let dp = o.dataplane
  if (o.proxier !== undefined) {
    if (dp !== undefined) throw new SvcplaneTypeError('runPcap: give either proxier or dataplane, not both')
    const p = o.proxier
    if (!p.dataplane) throw new SvcplaneTypeError(`runPcap: the proxier must be in mode 'native' (it is '${p.options?.mode}')`)
    if (p.pendingChanges && p.sync) p.sync()
    dp = p.dataplane
    dp.configurePackets({ nodeAddresses: p.options.node.ips, podCIDRs: p.options.podCIDRs, masqueradeAll: p.options.masqueradeAll })
  }
  if (dp === undefined) throw new SvcplaneTypeError('runPcap: a proxier or a dataplane is required')
  const batchSize = o.batchSize ?? 256
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 65536) throw new SvcplaneRangeError(`runPcap: batchSize must be 1..65536, got ${show(batchSize)}`)
  const start = o.start ?? 1
  if (typeof start !== 'number' || !Number.isFinite(start) || start < 0) throw new SvcplaneRangeError(`runPcap: start must be seconds >= 0, got ${show(start)}`)
  const maxBytes = o.maxInputBytes ?? DEFAULT_MAX_CAPTURE_BYTES
  const writeReplies = o.replies ?? true

  let bytes: Uint8Array
  const inName = typeof o.in === 'string' ? o.in : 'the input bytes'
  if (typeof o.in === 'string') {
    const file = o.in
    try {
      bytes = readFileLimitedSync(file, { maxBytes, what: `capture ${file}`, checkStart: checkCaptureStart })
    } catch (err) {
      if ((err as { code?: unknown }).code === 'TOO_LARGE') throw new PcapFileError('in', file, (err as Error).message, { cause: err })
      if (err instanceof CaptureError) throw new PcapFileError('in', file, `capture ${file}: ${err.message}`, { cause: err })
      throw new PcapFileError('in', file, `cannot read capture ${file}: ${why(err)}`, { cause: err })
    }
  } else if (o.in instanceof Uint8Array) bytes = Uint8Array.from(o.in)  // rewritten in place: never the caller's
  else throw new SvcplaneTypeError('runPcap: in must be a path or a Uint8Array')
  let cap
  try {
    cap = readCapture(bytes)
  } catch (err) {
    if (typeof o.in === 'string') throw new PcapFileError('in', o.in, `capture ${inName}: ${(err as Error).message}`, { cause: err })
    throw err
  }

  const links = new Set(cap.linkTypes)
  if (links.size > 1) throw new CaptureError(`runPcap: the capture mixes link types ${[...links].join(', ')}; one is supported per file`)
  const linkType = cap.count ? cap.linkTypes[0] : 1
  const link = linkOf(linkType)
  if (link === undefined) throw new CaptureError(`runPcap: link type ${linkType} is not supported (Ethernet 1 or raw IP 101/228/229)`)

  const writer = new PcapWriter(linkType)
  const verdicts = new Uint8Array(batchSize)
  const reasons = new Uint8Array(batchSize)
  const replies = writeReplies ? new PacketReplies(batchSize * 1300, batchSize) : undefined
  const verdictCount = new Array<number>(VERDICTS.length).fill(0)
  const reasonCount = new Array<number>(PACKET_REASONS.length).fill(0)
  const t0 = cap.count ? cap.timestamps[0] : 0
  let replyCount = 0
  for (let base = 0; base < cap.count; base += batchSize) {
    const n = Math.min(batchSize, cap.count - base)
    const now = start + Math.max(0, cap.timestamps[base] - t0)
    dp.processPackets(cap.data, cap.offsets.subarray(base, base + n), cap.lengths.subarray(base, base + n), n,
      { direction: 'to-service', now, linkType: link, replies }, verdicts, reasons)
    for (let i = 0; i < n; i++) {
      const k = base + i
      const v = verdicts[i]
      verdictCount[v]++
      reasonCount[reasons[i]]++
      const ts = cap.timestamps[k]
      if (v === 4) continue  // drop
      if (v === 3) {
        const r = replies?.reply(i)
        if (r) {
          writer.write(r, ts)
          replyCount++
        }
        continue
      }
      const off = cap.offsets[k]
      writer.write(cap.data.subarray(off, off + cap.lengths[k]), ts, cap.originalLengths[k])
    }
  }
  const output = writer.bytes()
  if (o.out !== undefined) {
    try {
      fs.writeFileSync(o.out, output)
    } catch (err) {
      throw new PcapFileError('out', o.out, `cannot write output capture ${o.out}: ${why(err)}`, { cause: err })
    }
  }
  const reasonsOut: Partial<Record<PacketReason, number>> = {}
  PACKET_REASONS.forEach((r, i) => {
    if (reasonCount[i]) reasonsOut[r] = reasonCount[i]
  })
  return {
    format: cap.format,
    linkType,
    packets: cap.count,
    written: writer.count,
    replies: replyCount,
    verdicts: Object.fromEntries(VERDICTS.map((v, i) => [v, verdictCount[i]])) as Record<Verdict, number>,
    reasons: reasonsOut,
    output,
  }
}
