// TCP: one accepted client connection, routed by the Proxier as a new flow (SYN) and piped to
// the chosen endpoint with backpressure (stream.pipe pauses the faster side) and half-close
// (a FIN in one direction is forwarded, the other keeps flowing). Refusals are TCP resets.
import * as net from 'node:net'
import { SvcplaneError } from '../errors.js'
import { peerAddress, splitEndpoint } from './addresses.js'
import { feedConntrack, hookOf, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type ProxyContext, type Tuple } from './context.js'
import type { ServiceCounters } from './counters.js'

export interface TcpListenerRef {
  address: string
  port: number
  /** The ServicePort this listener was opened for; used for counters when routing finds none. */
  servicePort: string
}

function reset(s: net.Socket): void {
  if (s.destroyed) return
  try {
    s.resetAndDestroy()
  } catch {
    s.destroy()
  }
}

/** A forwarded connection: client <-> endpoint. */
export class TcpSession {
  private closed = 0
  private readonly client: net.Socket
  private upstream!: net.Socket
  private endpoint!: { host: string; port: number }
  private connected = false
  /** Dials tried after the first failed (ctx.redial). */
  private redials = 0
  /** ctx.generation() when the flow was created by route(). */
  private readonly generation: number
  /** Set once both sockets have closed and the counters are final. */
  done: Promise<void>
  private resolveDone!: () => void

  constructor(
    private readonly ctx: ProxyContext,
    private readonly tuple: Tuple,
    readonly servicePort: string,
    /** The endpoint this connection is forwarded to (another one after a redial). */
    public endpointName: string,
    private readonly counters: ServiceCounters,
    client: net.Socket,
    private readonly onFinished: (s: TcpSession) => void,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve))
    this.generation = ctx.generation()
    this.client = client
    this.client.on('error', (err) => this.onSocketError('client', err))
    this.client.once('end', () => this.conntrack('original', TCP_FIN | TCP_ACK))
    this.client.once('close', () => this.onClose())
    this.dial(endpointName)
  }

  private dial(endpointName: string): void {
    this.endpointName = endpointName
    this.endpoint = splitEndpoint(endpointName)
    const up = net.connect({ host: this.endpoint.host, port: this.endpoint.port, allowHalfOpen: true, noDelay: true })
    this.upstream = up
    up.setTimeout(this.ctx.connectTimeoutMs, () => {
      if (!this.connected) up.destroy(new SvcplaneError('TIMEOUT', `connect to ${endpointName} timed out after ${this.ctx.connectTimeoutMs} ms`))
    })
    up.once('connect', () => this.onConnect())
    up.on('error', (err) => this.onUpstreamError(up, err))
    up.once('end', () => this.conntrack('reply', TCP_FIN | TCP_ACK))
    up.once('close', () => this.onClose())
  }

  /** A dial that failed before connecting is tried on another endpoint when the context allows it. */
  private onUpstreamError(up: net.Socket, err: Error): void {
    const next = !this.connected && !this.client.destroyed ? this.ctx.redial?.(this.tuple, this.endpointName, ++this.redials) : undefined
    if (next?.action !== 'dnat') {
      this.onSocketError('endpoint', err)
      return
    }
    up.removeAllListeners()
    up.on('error', () => {})
    up.destroy()
    this.counters.errors++
    this.ctx.onError(err, `${this.servicePort}: endpoint ${this.endpointName} (dialling ${next.endpoint} instead)`)
    this.counters.endpoints[next.endpoint] = (this.counters.endpoints[next.endpoint] ?? 0) + 1
    this.dial(next.endpoint)
  }

  private conntrack(dir: 'original' | 'reply', flags: number): void {
    feedConntrack(this.ctx, this.tuple, this.endpoint, dir, flags, this.generation)
  }

  private onConnect(): void {
    this.connected = true
    this.upstream.setTimeout(0)
    // The handshake as conntrack would have seen it: the endpoint's SYN-ACK, the client's ACK.
    this.conntrack('reply', TCP_SYN | TCP_ACK)
    this.conntrack('original', TCP_ACK)
    this.client.pipe(this.upstream)
    this.upstream.pipe(this.client)
  }

  private onSocketError(side: 'client' | 'endpoint', err: Error): void {
    // A reset on one side is passed on as a reset on the other, like a NAT in the kernel would.
    if (side === 'endpoint') {
      this.counters.errors++
      this.ctx.onError(err, `${this.servicePort}: endpoint ${this.endpointName}`)
      reset(this.client)
    } else {
      reset(this.upstream)
    }
    this.conntrack('original', TCP_RST)
  }

  private onClose(): void {
    if (++this.closed === 1) {
      // One side is fully closed; make sure the other does not linger half-open forever.
      if (this.client.destroyed && !this.upstream.destroyed && !this.upstream.writableEnded) this.upstream.end()
      if (this.upstream.destroyed && !this.client.destroyed && !this.client.writableEnded) this.client.end()
      return
    }
    if (this.closed !== 2) return
    this.conntrack('original', TCP_ACK)
    this.counters.activeConnections--
    this.counters.bytesIn += this.upstream.bytesWritten
    this.counters.bytesOut += this.client.bytesWritten
    this.onFinished(this)
    this.resolveDone()
  }

  /** Bytes so far, for live counters: [client -> endpoint, endpoint -> client]. */
  bytes(): [number, number] {
    return [this.upstream.bytesWritten, this.client.bytesWritten]
  }

  /** Ends the session now (shutdown after the drain period): both sides get a reset. */
  abort(): void {
    reset(this.client)
    reset(this.upstream)
  }
}

/**
 * Decides an accepted connection: forward (a TcpSession), or reset it when the Proxier rejects
 * or drops (a userspace proxy has already completed the handshake, so a DROP is also a reset).
 */
export function acceptTcp(ctx: ProxyContext, l: TcpListenerRef, client: net.Socket, onSession: (s: TcpSession) => void, onFinished: (s: TcpSession) => void): void {
  client.setNoDelay(true)
  const src = peerAddress(client.remoteAddress)
  const sport = client.remotePort
  if (src === undefined || sport === undefined) {
    client.destroy()
    return
  }
  const tuple: Tuple = { src, sport, dst: l.address, dport: l.port, protocol: 'TCP' }
  let r
  try {
    r = ctx.route({ ...tuple, hook: hookOf(ctx, src), tcpFlags: TCP_SYN, now: ctx.now() })
  } catch (err) {
    ctx.counters.of(l.servicePort).errors++
    ctx.onError(err as Error, `${l.servicePort}: route`)
    reset(client)
    return
  }
  if (r.action === 'accept') {
    // The listener outlived its service (a sync is about to close it).
    ctx.counters.of(l.servicePort).refused++
    reset(client)
    return
  }
  const c = ctx.counters.of(r.servicePort)
  if (r.action !== 'dnat') {
    c.refused++
    client.on('error', () => {})
    reset(client)
    return
  }
  c.connections++
  c.activeConnections++
  c.endpoints[r.endpoint] = (c.endpoints[r.endpoint] ?? 0) + 1
  onSession(new TcpSession(ctx, tuple, r.servicePort, r.endpoint, c, client, onFinished))
}
