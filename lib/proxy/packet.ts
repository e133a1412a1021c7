// The packets route() and explain() take, and what they answer.
import { show } from '../util/show.js'
import { canonicalAddress } from '../util/address.js'
import { joinHostPort } from '../util/host-port.js'
import type { K8sProtocol } from '../k8s/types.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../errors.js'

/** `output`: sent by a process on this node; `prerouting`: arriving (from a pod or the network). */
export type Hook = 'output' | 'prerouting'

export interface Packet {
  src: string
  sport: number
  dst: string
  dport: number
  protocol: K8sProtocol
  /** Default `prerouting`. */
  hook?: Hook
  /** Seconds of the caller's (virtual) clock; default the Proxier's clock. */
  now?: number
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10), for the conntrack state machine. */
  tcpFlags?: number
}

/**
 * `invalid-port`: a service address on a port no Service uses (nftables' cluster-ips-check, ipvs'
 * KUBE-IPVS-FILTER); `unallocated-cluster-ip`: nftables only; `loopback-source`: ipvs only.
 * `not-programmed`: a Service answers here, but the mode could not program it (native mode: a map at its capacity).
 */
export type RouteReason =
  | 'no-endpoints' | 'no-local-endpoints' | 'source-range' | 'conntrack-full' | 'affinity-full'
  | 'invalid-port' | 'unallocated-cluster-ip' | 'loopback-source' | 'not-programmed'

export type RouteResult =
  /** `endpoint` is "ip:port" ("[ip6]:port"); `address` and `port` are its parts, as kube-proxy's Endpoint has them. */
  | { action: 'dnat'; servicePort: string; endpoint: string; address: string; port: number; masquerade: boolean }
  | { action: 'reject' | 'drop'; servicePort: string; reason: RouteReason }
  | { action: 'accept' }

/** A DNAT answer to the endpoint at address:port. */
export function dnatResult(servicePort: string, address: string, port: number, masquerade: boolean): RouteResult {
  return { action: 'dnat', servicePort, endpoint: joinHostPort(address, port), address, port, masquerade }
}

export interface CheckedPacket extends Required<Omit<Packet, 'now' | 'tcpFlags'>> {
  now: number | undefined
  tcpFlags: number | undefined
}

function port(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new SvcplaneTypeError(`packet: ${field} must be an integer 0..65535, got ${show(v)}`)
  if (v < 0 || v > 65535) throw new SvcplaneRangeError(`packet: ${field} must be an integer 0..65535, got ${v}`)
  return v
}

function address(field: string, v: unknown): string {
  const c = typeof v === 'string' ? canonicalAddress(v) : undefined
  if (c === undefined) throw new SvcplaneTypeError(`packet: ${field} must be an IP address, got ${show(v)}`)
  return c
}

export function checkPacket(p: Packet): CheckedPacket {
  if (typeof p !== 'object' || p === null) throw new SvcplaneTypeError('packet must be an object')
  const src = address('src', p.src)
  const dst = address('dst', p.dst)
  if (src.includes(':') !== dst.includes(':')) throw new SvcplaneTypeError(`packet: src ${src} and dst ${dst} must be of the same IP family`)
  if (p.protocol !== 'TCP' && p.protocol !== 'UDP' && p.protocol !== 'SCTP') {
    throw new SvcplaneTypeError(`packet: protocol must be one of TCP, UDP, SCTP, got ${show(p.protocol)}`)
  }
  const hook = p.hook ?? 'prerouting'
  if (hook !== 'output' && hook !== 'prerouting') throw new SvcplaneTypeError(`packet: hook must be "output" or "prerouting", got ${show(p.hook)}`)
  if (p.now !== undefined && (typeof p.now !== 'number' || !Number.isFinite(p.now) || p.now < 0)) {
    throw new SvcplaneRangeError(`packet: now must be a finite number of seconds >= 0, got ${show(p.now)}`)
  }
  if (p.tcpFlags !== undefined && (!Number.isInteger(p.tcpFlags) || p.tcpFlags < 0 || p.tcpFlags > 255)) {
    throw new SvcplaneRangeError(`packet: tcpFlags must be an integer 0..255, got ${show(p.tcpFlags)}`)
  }
  return { src, sport: port('sport', p.sport), dst, dport: port('dport', p.dport), protocol: p.protocol, hook, now: p.now, tcpFlags: p.tcpFlags }
}
