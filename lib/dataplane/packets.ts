// The batch packet path at the API: option and configuration checking, the numeric codes
// processPackets writes, and PacketReplies, the caller-owned buffer reject replies go into.
import { show } from '../util/show.js'
import { formatAddress, parseAddressInto, parseCidr } from '../util/address.js'
import { SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import { REASONS, VERDICTS } from './codes.js'
import type { Reason, Verdict } from './types.js'

export type PacketDirection = 'to-service' | 'from-backend'
export type LinkType = 'ethernet' | 'raw'
/** When a frontend's new flows get their source rewritten to the node address (SNAT). */
export type MasqueradePolicy = 'never' | 'always' | 'outside-pod-cidrs' | 'from-node'
/** What a rejected packet is answered with (iptables' --reject-with). */
export type RejectWith = 'icmp-port-unreachable' | 'tcp-reset' | 'none'

export type PacketReason =
  | Reason
  | 'not-tracked'
  | 'truncated'
  | 'malformed'
  | 'not-ip'
  | 'unsupported-protocol'
  | 'fragment-unknown'
  | 'icmp-untracked'
  | 'icmp-echo'
  | 'nat-ports-exhausted'
  | 'no-masquerade-address'
  | 'bad-checksum'
  | 'reply-buffer-full'

/** Reason names by the code processPackets writes into `reasons` (native/core/service_table.h). */
export const PACKET_REASONS: readonly PacketReason[] = [
  ...REASONS,
  'not-tracked',
  'truncated',
  'malformed',
  'not-ip',
  'unsupported-protocol',
  'fragment-unknown',
  'icmp-untracked',
  'icmp-echo',
  'nat-ports-exhausted',
  'no-masquerade-address',
  'bad-checksum',
  'reply-buffer-full',
]

/** Verdict codes processPackets writes into `verdicts`. */
export const PACKET_VERDICT = Object.freeze({ pass: 0, forward: 1, reply: 2, reject: 3, drop: 4 } as const)
export const PACKET_VERDICTS: readonly Verdict[] = VERDICTS

export const MASQUERADE_POLICIES: readonly MasqueradePolicy[] = ['never', 'always', 'outside-pod-cidrs', 'from-node']
/** By the core's RejectMode code. */
export const REJECT_WITH: readonly RejectWith[] = ['none', 'icmp-port-unreachable', 'tcp-reset']

/** Per-packet counters of the packet path, in the core's order (native/core/packet_path.h). */
export const PACKET_COUNT_NAMES = [
  'ipv4',
  'ipv6',
  'tcp',
  'udp',
  'sctp',
  'icmpErrors',
  'firstFragments',
  'laterFragments',
  'icmpErrorsTranslated',
  'rewritten',
  'masqueraded',
  'rejectReplies',
] as const
export type PacketCountName = (typeof PACKET_COUNT_NAMES)[number]

export interface ProcessOptions {
  /** `to-service`: from clients; new flows are created. `from-backend`: from endpoints; only tracked flows are translated. */
  direction: PacketDirection
  /** The caller's monotonic clock, in seconds. */
  now: number
  /** Frames start with an Ethernet header (default) or directly with the IP header. */
  linkType?: LinkType
  /** `output`: every packet was sent by this node itself (kube-proxy's OUTPUT hook). Default `prerouting`. */
  hook?: 'prerouting' | 'output'
  /** Where reject replies go; without it, rejected packets get no reply. */
  replies?: PacketReplies
  /** Default `icmp-port-unreachable`, what kube-proxy's REJECT sends. */
  rejectWith?: RejectWith
}

export interface PacketConfig {
  /** This node's addresses: sources among them (and loopback) are node traffic. */
  nodeAddresses?: string[]
  /** Sources inside these are pods (kube-proxy's --cluster-cidr). */
  podCIDRs?: string[]
  /** What masquerade rewrites sources to, one per family; default the first node address of each family. */
  masqueradeAddresses?: string[]
  /** kube-proxy's --masquerade-all: `outside-pod-cidrs` frontends masquerade every source. */
  masqueradeAll?: boolean
  /** Ports masquerade may use, inclusive. Default [1024, 65535]. */
  natPortRange?: [number, number]
  /** Seconds a first fragment's decision waits for later fragments. Default 30. */
  fragmentTimeout?: number
}

export interface ResolvedPacketConfig {
  nodeAddresses: string[]
  podCIDRs: string[]
  masqueradeAddresses: string[]
  masqueradeAll: boolean
  natPortRange: [number, number]
  fragmentTimeout: number
}

export interface PacketCounters {
  /** Packets given to processPackets. */
  packets: number
  verdicts: Record<Verdict, number>
  reasons: Record<PacketReason, number>
  counts: Record<PacketCountName, number>
}

/** The native arguments of a checked configuration. */
export interface EncodedPacketConfig {
  resolved: ResolvedPacketConfig
  nodes: Uint8Array
  cidrs: Uint8Array
  masq4: Uint8Array | null
  masq6: Uint8Array | null
}

export function encodePacketConfig(c: PacketConfig, cidrStride: number): EncodedPacketConfig {
  if (c === null || typeof c !== 'object') throw new SvcplaneTypeError('packet config must be an object')
  const known = ['nodeAddresses', 'podCIDRs', 'masqueradeAddresses', 'masqueradeAll', 'natPortRange', 'fragmentTimeout']
  for (const k of Object.keys(c)) if (!known.includes(k)) throw new SvcplaneTypeError(`packet config: unknown field ${k} (use ${known.join(', ')})`)
  const list = (v: unknown, field: string): unknown[] => {
    if (v === undefined) return []
    if (!Array.isArray(v)) throw new SvcplaneTypeError(`packet config: ${field} must be an array, got ${show(v)}`)
    if (v.length > 64) throw new SvcplaneRangeError(`packet config: ${field} holds at most 64 entries, got ${v.length}`)
    return v
  }
  const nodeTexts = list(c.nodeAddresses, 'nodeAddresses')
  const nodes = new Uint8Array(nodeTexts.length * 16)
  const nodeAddresses = nodeTexts.map((a, i) => {
    if (!parseAddressInto(a as string, nodes, i * 16))
      throw new SvcplaneTypeError(`packet config: nodeAddresses[${i}] is not an IP address: ${show(a)}`)
    return formatAddress(nodes, i * 16)
  })
  const cidrTexts = list(c.podCIDRs, 'podCIDRs')
  const cidrs = new Uint8Array(cidrTexts.length * cidrStride)
  const podCIDRs = cidrTexts.map((t, i) => {
    const p = typeof t === 'string' && t.includes('/') ? parseCidr(t.trim()) : undefined
    if (!p) throw new SvcplaneTypeError(`packet config: podCIDRs[${i}] is not a CIDR: ${show(t)}`)
    cidrs.set(p.bytes, i * cidrStride)
    cidrs[i * cidrStride + 16] = p.bits
    return p.text
  })
  let masq4: Uint8Array | null = null
  let masq6: Uint8Array | null = null
  const masqTexts = c.masqueradeAddresses === undefined ? undefined : list(c.masqueradeAddresses, 'masqueradeAddresses')
  if (masqTexts !== undefined) {
    masqTexts.forEach((a, i) => {
      const b = new Uint8Array(16)
      const fam = parseAddressInto(a as string, b, 0)
      if (!fam) throw new SvcplaneTypeError(`packet config: masqueradeAddresses[${i}] is not an IP address: ${show(a)}`)
      if ((fam === 4 ? masq4 : masq6) !== null) throw new SvcplaneTypeError(`packet config: masqueradeAddresses has two IPv${fam} addresses`)
      if (fam === 4) masq4 = b
      else masq6 = b
    })
  } else {
    for (let i = 0; i < nodeAddresses.length; i++) {
      const b = nodes.slice(i * 16, i * 16 + 16)
      if (nodeAddresses[i].includes(':')) masq6 ??= b
      else masq4 ??= b
    }
  }
  const masqueradeAddresses = [masq4, masq6].filter((b): b is Uint8Array => b !== null).map((b) => formatAddress(b))
  if (c.masqueradeAll !== undefined && typeof c.masqueradeAll !== 'boolean')
    throw new SvcplaneTypeError(`packet config: masqueradeAll must be a boolean, got ${show(c.masqueradeAll)}`)
  const range = c.natPortRange ?? [1024, 65535]
  if (!Array.isArray(range) || range.length !== 2 || !range.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535) || range[0] > range[1])
    throw new SvcplaneRangeError(`packet config: natPortRange must be [low, high] with 1 <= low <= high <= 65535, got ${show(c.natPortRange)}`)
  const fragmentTimeout = c.fragmentTimeout ?? 30
  if (typeof fragmentTimeout !== 'number' || !Number.isFinite(fragmentTimeout) || fragmentTimeout <= 0 || fragmentTimeout > 3600)
    throw new SvcplaneRangeError(`packet config: fragmentTimeout must be seconds in (0, 3600], got ${show(c.fragmentTimeout)}`)
  return {
    resolved: {
      nodeAddresses,
      podCIDRs,
      masqueradeAddresses,
      masqueradeAll: c.masqueradeAll ?? false,
      natPortRange: [range[0], range[1]],
      fragmentTimeout,
    },
    nodes,
    cidrs,
    masq4,
    masq6,
  }
}

export interface CheckedProcessOptions {
  direction: number
  now: number
  link: number
  fromNode: boolean
  reject: number
  replies: PacketReplies | undefined
}

export function checkProcessOptions(o: ProcessOptions): CheckedProcessOptions {
  if (o === null || typeof o !== 'object') throw new SvcplaneTypeError('processPackets options must be an object')
  if (o.direction !== 'to-service' && o.direction !== 'from-backend')
    throw new SvcplaneTypeError(`options.direction must be 'to-service' or 'from-backend', got ${show(o.direction)}`)
  if (typeof o.now !== 'number' || !Number.isFinite(o.now) || o.now < 0)
    throw new SvcplaneRangeError(`options.now must be a finite number of seconds >= 0, got ${show(o.now)}`)
  const linkType = o.linkType ?? 'ethernet'
  if (linkType !== 'ethernet' && linkType !== 'raw') throw new SvcplaneTypeError(`options.linkType must be 'ethernet' or 'raw', got ${show(o.linkType)}`)
  const hook = o.hook ?? 'prerouting'
  if (hook !== 'prerouting' && hook !== 'output') throw new SvcplaneTypeError(`options.hook must be 'prerouting' or 'output', got ${show(o.hook)}`)
  const reject = REJECT_WITH.indexOf(o.rejectWith ?? 'icmp-port-unreachable')
  if (reject < 0) throw new SvcplaneTypeError(`options.rejectWith must be one of ${REJECT_WITH.join(', ')}, got ${show(o.rejectWith)}`)
  if (o.replies !== undefined && !(o.replies instanceof PacketReplies)) throw new SvcplaneTypeError('options.replies must be a PacketReplies')
  return { direction: o.direction === 'to-service' ? 0 : 1, now: o.now, link: linkType === 'ethernet' ? 0 : 1, fromNode: hook === 'output', reject, replies: o.replies }
}

/**
 * Caller-owned room for reject replies: one buffer the replies are appended to, and per
 * packet of a batch its reply's offset and length (0: no reply). Reset by every
 * processPackets call it is given to.
 */
export class PacketReplies {
  readonly buffer: Uint8Array
  readonly offsets: Uint32Array
  readonly lengths: Uint32Array
  /** Bytes of `buffer` the last call filled. */
  used = 0

  /** `bytes`: room for replies (an ICMP reply is at most 576 + 18 bytes for IPv4, 1280 + 18 for IPv6); `maxPackets`: the largest batch. */
  constructor(bytes: number, maxPackets: number) {
    if (!Number.isInteger(bytes) || bytes < 1 || bytes > 1 << 30) throw new SvcplaneRangeError(`bytes must be an integer 1..2^30, got ${show(bytes)}`)
    if (!Number.isInteger(maxPackets) || maxPackets < 1 || maxPackets > 1 << 24)
      throw new SvcplaneRangeError(`maxPackets must be an integer 1..16777216, got ${show(maxPackets)}`)
    this.buffer = new Uint8Array(bytes)
    this.offsets = new Uint32Array(maxPackets)
    this.lengths = new Uint32Array(maxPackets)
  }

  /** The reply to packet i of the last batch (a view into `buffer`), or undefined. */
  reply(i: number): Uint8Array | undefined {
    const len = this.lengths[i]
    return len ? this.buffer.subarray(this.offsets[i], this.offsets[i] + len) : undefined
  }
}
