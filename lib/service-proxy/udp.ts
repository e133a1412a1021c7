// UDP: one socket bound to the frontend; per client (address, port) a flow with its own socket
// towards the endpoint, so replies find their client. Every datagram is routed by the Proxier:
// the conntrack hit keeps the flow on its endpoint, and when that entry is gone (the endpoint
// stopped serving and kube-proxy's reconciler removed it, or the endpoint was deleted) the
// next datagram picks a live endpoint and the flow moves there. Idle flows are closed.
import * as dgram from 'node:dgram'
import { peerAddress, splitEndpoint } from './addresses.js'
import { feedConntrack, hookOf, type ProxyContext, type Tuple } from './context.js'

export interface UdpListenerRef {
  address: string
  port: number
  servicePort: string
}

interface UdpFlow {
  tuple: Tuple
  servicePort: string
  endpoint: string
  host: string
  port: number
  socket: dgram.Socket
  lastActive: number
  replied: boolean
}

export class UdpFrontend {
  private readonly flows = new Map<string, UdpFlow>()
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor(
    private readonly ctx: ProxyContext,
    readonly ref: UdpListenerRef,
    readonly socket: dgram.Socket,
  ) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo))
    socket.on('error', (err) => {
      this.ctx.counters.of(this.ref.servicePort).errors++
      this.ctx.onError(err, `${this.ref.servicePort}: UDP ${this.ref.address}:${this.ref.port}`)
    })
    const every = Math.max(10, Math.min(1000, Math.floor(ctx.udpIdleTimeoutMs / 2)))
    this.sweeper = setInterval(() => this.sweep(), every)
    this.sweeper.unref()
  }

  get activeFlows(): number {
    return this.flows.size
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return
    const src = peerAddress(rinfo.address)!
    const key = `${src}|${rinfo.port}`
    const tuple: Tuple = { src, sport: rinfo.port, dst: this.ref.address, dport: this.ref.port, protocol: 'UDP' }
    const now = this.ctx.now()
    let r
    try {
      r = this.ctx.route({ ...tuple, hook: hookOf(this.ctx, src), now })
    } catch (err) {
      this.ctx.counters.of(this.ref.servicePort).errors++
      this.ctx.onError(err as Error, `${this.ref.servicePort}: route`)
      return
    }
    let flow = this.flows.get(key)
    if (r.action !== 'dnat') {
      // No usable endpoint: the datagram is dropped (userspace cannot send the ICMP error
      // iptables' REJECT would); an open flow is closed, its endpoint no longer serves.
      this.ctx.counters.of(r.action === 'accept' ? this.ref.servicePort : r.servicePort).refused++
      if (flow !== undefined) this.closeFlow(flow)
      return
    }
    const c = this.ctx.counters.of(r.servicePort)
    if (flow !== undefined && flow.endpoint !== r.endpoint) {
      c.udpFlowsMoved++
      this.closeFlow(flow)
      flow = undefined
    }
    if (flow === undefined) flow = this.openFlow(key, tuple, r.servicePort, r.endpoint)
    flow.lastActive = now
    c.datagramsIn++
    c.bytesIn += msg.length
    flow.socket.send(msg, flow.port, flow.host)
  }

  private openFlow(key: string, tuple: Tuple, servicePort: string, endpoint: string): UdpFlow {
    const { host, port } = splitEndpoint(endpoint)
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    const flow: UdpFlow = { tuple, servicePort, endpoint, host, port, socket, lastActive: this.ctx.now(), replied: false }
    const c = this.ctx.counters.of(servicePort)
    c.udpFlows++
    c.activeUdpFlows++
    c.endpoints[endpoint] = (c.endpoints[endpoint] ?? 0) + 1
    socket.on('message', (reply, from) => {
      if (peerAddress(from.address) !== host || from.port !== port || this.closed) return
      flow.lastActive = this.ctx.now()
      if (!flow.replied) {
        flow.replied = true
        feedConntrack(this.ctx, tuple, { host, port }, 'reply', 0, this.ctx.generation())
      }
      c.datagramsOut++
      c.bytesOut += reply.length
      this.socket.send(reply, tuple.sport, tuple.src)
    })
    socket.on('error', (err) => {
      c.errors++
      this.ctx.onError(err, `${servicePort}: UDP endpoint ${endpoint}`)
    })
    this.flows.set(key, flow)
    return flow
  }

  private closeFlow(flow: UdpFlow): void {
    const key = `${flow.tuple.src}|${flow.tuple.sport}`
    if (this.flows.get(key) !== flow) return
    this.flows.delete(key)
    this.ctx.counters.of(flow.servicePort).activeUdpFlows--
    try {
      flow.socket.close()
    } catch {
      // already closed
    }
  }

  private sweep(): void {
    const limit = this.ctx.now() - this.ctx.udpIdleTimeoutMs / 1000
    for (const flow of [...this.flows.values()]) if (flow.lastActive <= limit) this.closeFlow(flow)
  }

  /** Closes the frontend socket and every flow. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweeper)
    for (const flow of [...this.flows.values()]) this.closeFlow(flow)
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve())
      } catch {
        resolve()
      }
    })
  }
}
