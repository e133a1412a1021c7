// What the TCP and UDP halves of the socket proxy share: what decides a connection (the
// Proxier, or the userspace mode's load balancer), the clock, the counters, and the feed that
// keeps the native conntrack's TCP/UDP state machine in step with what the sockets actually
// see (so timeouts and least-connection counts are right).
import type { Dataplane } from '../dataplane/dataplane.js'
import type { Hook, Packet, RouteResult } from '../proxy/packet.js'
import type { CounterTable } from './counters.js'
import type { LocalAddresses } from './addresses.js'

export const TCP_FIN = 0x01
export const TCP_SYN = 0x02
export const TCP_RST = 0x04
export const TCP_ACK = 0x10

export interface Tuple {
  src: string
  sport: number
  dst: string
  dport: number
  protocol: 'TCP' | 'UDP'
}

export interface ProxyContext {
  /** Decides a new TCP connection (its SYN) or a UDP datagram, as route() does. */
  route(packet: Packet): RouteResult
  /**
   * A new TCP connection's dial to `failed` did not connect: the endpoint to try instead
   * (attempt 1, 2, ...), or undefined to give up and reset the client. Unset: never redial.
   */
  redial?(tuple: Tuple, failed: string, attempt: number): RouteResult | undefined
  /** The native dataplane whose conntrack follows the sockets; undefined in other modes. */
  dataplane(): Pick<Dataplane, 'lookupFlow' | 'decide'> | undefined
  /** Seconds of a monotonic clock. */
  now(): number
  readonly counters: CounterTable
  readonly local: LocalAddresses
  readonly connectTimeoutMs: number
  readonly udpIdleTimeoutMs: number
  onError(error: Error, context: string): void
  /**
   * Changes whenever conntrack entries may have been removed behind a session's back (a sync,
   * a garbage collection that removed something). While it is unchanged, a flow the session
   * saw created still exists and can be fed without looking it up first.
   */
  generation(): number
}

/** kube-proxy's view of where a client is: a process on this node (output) or arriving (prerouting). */
export function hookOf(ctx: ProxyContext, src: string): Hook {
  return ctx.local.has(src) ? 'output' : 'prerouting'
}

/**
 * Accounts a packet the proxy saw on a flow the Proxier already tracks (native mode only). It
 * must never create a flow: when the flow may be gone (its endpoint was deleted, it expired)
 * it is looked up first, and nothing happens unless it still belongs to this endpoint — a
 * stray FIN must not leave an entry behind. Reply-direction packets cannot create flows (the
 * client is not a frontend), so they need no check.
 */
export function feedConntrack(
  ctx: ProxyContext,
  orig: Tuple,
  endpoint: { host: string; port: number },
  dir: 'original' | 'reply',
  tcpFlags: number,
  seenAt: number,
): void {
  const dp = ctx.dataplane()
  if (dp === undefined) return
  try {
    if (dir === 'original' && seenAt !== ctx.generation()) {
      const f = dp.lookupFlow(orig)
      if (f === null || f.backendAddress !== endpoint.host || f.backendPort !== endpoint.port) return
    }
    const pkt =
      dir === 'original'
        ? { ...orig, tcpFlags }
        : { src: endpoint.host, sport: endpoint.port, dst: orig.src, dport: orig.sport, protocol: orig.protocol, tcpFlags }
    dp.decide(pkt, ctx.now())
  } catch (err) {
    ctx.onError(err as Error, 'conntrack update')
  }
}
