// The userspace mode's proxy sockets: one listener per ServicePort on --bind-address and its
// proxy port, as kube-proxy's userspace ProxySocket had. Accepted TCP connections and UDP
// client flows are forwarded by lib/service-proxy's TCP and UDP halves; which endpoint each
// gets is the mode's round-robin decision for that ServicePort (the socket cannot know the
// portal address the client dialled, and does not need to: the port says the ServicePort).
import * as dgram from 'node:dgram'
import * as net from 'node:net'
import type { Packet, RouteResult } from '../../proxy/packet.js'
import { LocalAddresses } from '../../service-proxy/addresses.js'
import type { ProxyContext } from '../../service-proxy/context.js'
import { CounterTable, type ServiceCounters } from '../../service-proxy/counters.js'
import { acceptTcp, type TcpSession } from '../../service-proxy/tcp.js'
import { UdpFrontend } from '../../service-proxy/udp.js'

export interface ProxySocketSpec {
  /** The ServicePort's model key. */
  key: string
  /** The ServicePort's name, "ns/name:port" (counters are kept by it). */
  servicePort: string
  protocol: 'TCP' | 'UDP'
  address: string
  /** 0: the kernel picks. */
  port: number
}

export interface ProxySocketInfo {
  servicePort: string
  protocol: 'TCP' | 'UDP'
  address: string
  port: number
  state: 'opening' | 'listening' | 'failed'
  error?: string
}

interface Socket {
  spec: ProxySocketSpec
  state: ProxySocketInfo['state']
  error?: string
  tcp?: net.Server
  udp?: UdpFrontend
}

export interface ProxySocketOptions {
  /** The endpoint for a new connection / a datagram that reached the socket of ServicePort `key`. */
  decide(key: string, packet: Packet): RouteResult
  /** Another endpoint after a failed dial (kube-proxy's TryConnectEndpoints), or undefined to give up. */
  redial(key: string, packet: Packet, failed: string, attempt: number): RouteResult | undefined
  clock(): number
  connectTimeoutMs: number
  udpIdleTimeoutMs: number
  onError(error: Error, context: string): void
}

export class ProxySockets {
  private readonly byKey = new Map<string, Socket>()
  private readonly sessions = new Set<TcpSession>()
  private readonly counterTable = new CounterTable()
  private readonly local = new LocalAddresses()

  constructor(private readonly options: ProxySocketOptions) {}

  private context(key: string): ProxyContext {
    const o = this.options
    return {
      route: (packet) => o.decide(key, packet),
      redial: (tuple, failed, attempt) => o.redial(key, { ...tuple, now: o.clock() }, failed, attempt),
      dataplane: () => undefined,
      now: o.clock,
      counters: this.counterTable,
      local: this.local,
      connectTimeoutMs: o.connectTimeoutMs,
      udpIdleTimeoutMs: o.udpIdleTimeoutMs,
      onError: o.onError,
      generation: () => 0,
    }
  }

  /** The state of ServicePort `key`'s socket; undefined when it has none. */
  state(key: string): ProxySocketInfo['state'] | undefined {
    return this.byKey.get(key)?.state
  }

  /** Opens the ServicePort's socket; resolves with the port it listens on, rejects when it cannot bind. */
  async open(spec: ProxySocketSpec): Promise<number> {
    const s: Socket = { spec: { ...spec }, state: 'opening' }
    this.byKey.set(spec.key, s)
    const ctx = this.context(spec.key)
    try {
      const port = spec.protocol === 'TCP' ? await this.listenTcp(s, ctx) : await this.bindUdp(s, ctx)
      s.spec.port = port
      s.state = 'listening'
      return port
    } catch (err) {
      s.state = 'failed'
      s.error = (err as Error).message
      this.counterTable.of(spec.servicePort).errors++
      this.options.onError(err as Error, `${spec.servicePort}: listen on ${spec.protocol} ${spec.address}:${spec.port}`)
      throw err
    }
  }

  private listenTcp(s: Socket, ctx: ProxyContext): Promise<number> {
    const ref = { address: s.spec.address, port: s.spec.port, servicePort: s.spec.servicePort }
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      acceptTcp(ctx, ref, client, (x) => this.sessions.add(x), (x) => this.sessions.delete(x))
    })
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: s.spec.address, port: s.spec.port, exclusive: true, backlog: 1024 }, () => {
        server.off('error', reject)
        server.on('error', (err) => {
          this.counterTable.of(s.spec.servicePort).errors++
          this.options.onError(err, `${s.spec.servicePort}: TCP ${s.spec.address}:${s.spec.port}`)
        })
        s.tcp = server
        ref.port = (server.address() as net.AddressInfo).port
        resolve(ref.port)
      })
    })
  }

  private bindUdp(s: Socket, ctx: ProxyContext): Promise<number> {
    const socket = dgram.createSocket({ type: s.spec.address.includes(':') ? 'udp6' : 'udp4' })
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => {
        try {
          socket.close()
        } catch {
          // never bound
        }
        reject(err)
      })
      socket.bind({ address: s.spec.address, port: s.spec.port, exclusive: true }, () => {
        socket.removeAllListeners('error')
        const port = socket.address().port
        s.udp = new UdpFrontend(ctx, { address: s.spec.address, port, servicePort: s.spec.servicePort }, socket)
        resolve(port)
      })
    })
  }

  /** Stops listening; accepted TCP connections keep going until they end. */
  async close(key: string): Promise<void> {
    const s = this.byKey.get(key)
    if (s === undefined) return
    this.byKey.delete(key)
    s.tcp?.close()
    await s.udp?.close()
  }

  /** Every socket with its state, by ServicePort name then protocol. */
  list(): ProxySocketInfo[] {
    return [...this.byKey.values()]
      .map((s) => ({
        servicePort: s.spec.servicePort,
        protocol: s.spec.protocol,
        address: s.spec.address,
        port: s.spec.port,
        state: s.state,
        ...(s.error !== undefined ? { error: s.error } : {}),
      }))
      .sort((a, b) => (a.servicePort < b.servicePort ? -1 : a.servicePort > b.servicePort ? 1 : a.protocol < b.protocol ? -1 : 1))
  }

  /** Counters per ServicePort name; byte counts include connections still open. */
  counters(): Record<string, ServiceCounters> {
    return this.counterTable.snapshot(this.sessions)
  }

  get activeConnections(): number {
    return this.sessions.size
  }

  /** Closes every listener, gives open connections `drainMs` to end, then resets them. */
  async closeAll(drainMs: number): Promise<void> {
    await Promise.all([...this.byKey.keys()].map((k) => this.close(k)))
    if (this.sessions.size === 0) return
    const all = Promise.all([...this.sessions].map((s) => s.done))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))])
    clearTimeout(timer)
    for (const s of this.sessions) s.abort()
    await all
  }
}
