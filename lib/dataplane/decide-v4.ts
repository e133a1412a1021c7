// The numeric single-decision path: one IPv4 flow given as numbers (addresses as uint32 in host
// order, ports, protocol number), decided into a preallocated Uint32Array. No string is parsed
// and no object is created per call, so a proxy deciding packets one at a time from JS pays the
// boundary, not the wrapper (decide() parses two addresses and returns a fresh object).
import { SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import { show } from '../util/show.js'
import { parseAddressInto } from '../util/address.js'

/** Slots of the decision array decideV4 fills (native/addon/wire.h V4Out). */
export const DECISION_V4 = Object.freeze({ verdict: 0, reason: 1, flags: 2, serviceId: 3, backendId: 4, port: 5, address: 6 } as const)
export const DECISION_V4_SLOTS = 7
/** Slots of the tuple array (native/addon/wire.h V4In): src, dst, sport | dport << 16, proto | scope << 8 | tcpFlags << 16. */
export const TUPLE_V4_SLOTS = 4

/** The error naming decideV4's bad argument (worked out only once the cheap test has failed). */
export function decideV4Error(
  src: unknown, sport: unknown, dst: unknown, dport: unknown, protocol: unknown, now: unknown, tcpFlags: unknown, internal: unknown,
): SvcplaneRangeError | SvcplaneTypeError {
  const u32 = (v: unknown): boolean => typeof v === 'number' && v >>> 0 === v
  const port = (v: unknown): boolean => typeof v === 'number' && (v & 0xffff) === v
  const checks: [string, boolean, string][] = [
    ['src', u32(src), 'an IPv4 address as an integer 0..2^32-1'],
    ['sport', port(sport), 'a port 0..65535'],
    ['dst', u32(dst), 'an IPv4 address as an integer 0..2^32-1'],
    ['dport', port(dport), 'a port 0..65535'],
    ['protocol', protocol === 6 || protocol === 17 || protocol === 132, '6 (TCP), 17 (UDP) or 132 (SCTP)'],
    ['now', typeof now === 'number' && now >= 0 && now <= Number.MAX_VALUE, 'a finite number of seconds >= 0'],
    ['tcpFlags', typeof tcpFlags === 'number' && (tcpFlags & 0xff) === tcpFlags, '0..255'],
    ['internal', typeof internal === 'boolean', 'a boolean'],
  ]
  const args: Record<string, unknown> = { src, sport, dst, dport, protocol, now, tcpFlags, internal }
  const bad = checks.find(([, ok]) => !ok) ?? ['arguments', false, 'valid']
  const text = `decideV4: ${bad[0]} must be ${bad[2]}, got ${show(args[bad[0]])}`
  return bad[0] === 'internal' ? new SvcplaneTypeError(text) : new SvcplaneRangeError(text)
}

const parsed = new Uint8Array(16)

/** "10.0.0.1" -> 0x0a000001, for callers that hold text; undefined if it is not an IPv4 address. */
export function ipv4ToUint32(text: string): number | undefined {
  if (parseAddressInto(text, parsed) !== 4) return undefined
  return ((parsed[12] << 24) | (parsed[13] << 16) | (parsed[14] << 8) | parsed[15]) >>> 0
}

/** 0x0a000001 -> "10.0.0.1". */
export function uint32ToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}
