// ServiceProxy: a socket-level L4 proxy (what kube-proxy's old userspace mode did) on top of
// the Proxier. It listens on every frontend of every ServicePort (cluster IP, NodePorts on the
// node IPs, external and load-balancer IPs that are local addresses), asks the Proxier for the
// endpoint of each new connection or datagram with the real client address and port, and
// forwards. Endpoint changes apply at sync(): listeners follow the Services, established TCP
// connections stay where they are, new ones only go to endpoints that take new flows.
import * as dgram from 'node:dgram'
import * as net from 'node:net'
import type { SyncSummary } from '../proxy/proxier.js'
import type { Proxier } from '../modes/index.js'
import type { FrontendKind } from '../proxy/frontends.js'
import { LocalAddresses } from './addresses.js'
import type { ProxyContext } from './context.js'
import { CounterTable, type ServiceCounters } from './counters.js'
import { acceptTcp, type TcpSession } from './tcp.js'
import { UdpFrontend } from './udp.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'
import { SvcplaneError, SvcplaneTypeError, SvcplaneRangeError } from '../errors.js'

export interface ServiceProxyOptions {
  /** Decides every new connection and datagram; the proxy calls its sync(). */
  proxier: Proxier
  /** Seconds of a monotonic clock; default the Proxier's clock. */
  clock?: () => number
  /** Connect timeout towards an endpoint, ms (default 5000); on expiry the client gets a reset. */
  connectTimeoutMs?: number
  /** A UDP client flow with no datagram either way for this long is closed, ms (default 30000, conntrack's UDP timeout). */
  udpIdleTimeoutMs?: number
  /** How often conntrack and affinity entries are garbage-collected, ms (default 10000; 0 = never). */
  gcIntervalMs?: number
  /**
   * Which frontends get a listener. Default: cluster IPs and NodePorts always (a bind failure
   * is reported in listeners() and counted), external and load-balancer IPs only when the
   * address is local to this host.
   */
  listenOn?: (frontend: ListenerSpec, isLocal: boolean) => boolean
  /** Socket and routing errors (they are also counted); default: ignored. */
  onError?: (error: Error, context: string) => void
}

export interface ListenerSpec {
  address: string
  port: number
  protocol: 'TCP' | 'UDP'
  kind: FrontendKind
  /** ServicePort name, "ns/name:port". */
  servicePort: string
}

export interface ListenerInfo extends ListenerSpec {
  state: 'listening' | 'failed' | 'skipped'
  error?: string
}

export interface ProxySyncResult {
  proxier: SyncSummary
  listenersOpened: number
  listenersClosed: number
  listenersFailed: number
}

interface Listener {
  spec: ListenerSpec
  state: ListenerInfo['state']
  error?: string
  tcp?: net.Server
  udp?: UdpFrontend
}

const keyOf = (address: string, port: number, protocol: string) => `${protocol}|${address}|${port}`

function defaultListenOn(f: ListenerSpec, isLocal: boolean): boolean {
  return f.kind === 'clusterIP' || f.kind === 'nodePort' || isLocal
}

function positive(name: string, v: number | undefined, dflt: number, allowZero = false): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new SvcplaneRangeError(`ServiceProxy options: ${name} must be a ${allowZero ? 'number >= 0' : 'positive number'}, got ${JSON.stringify(v)}`)
  }
  return v
}

const SERVICE_PROXY_KEYS = optionKeys<ServiceProxyOptions>({ proxier: true, clock: true, connectTimeoutMs: true, udpIdleTimeoutMs: true, gcIntervalMs: true, listenOn: true, onError: true })

export class ServiceProxy {
  readonly proxier: Proxier
  private readonly ctx: ProxyContext
  private readonly counterTable = new CounterTable()
  private readonly local = new LocalAddresses()
  private readonly listenersByKey = new Map<string, Listener>()
  private readonly sessions = new Set<TcpSession>()
  private readonly listenOn: NonNullable<ServiceProxyOptions['listenOn']>
  private readonly gcTimer: NodeJS.Timeout | undefined
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new'
  private conntrackGeneration = 0
  /** Serialises start/sync/close so two reconciles never interleave. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor(options: ServiceProxyOptions) {
    if (typeof options !== 'object' || options === null) throw new SvcplaneTypeError('ServiceProxy options must be an object')
    checkOptions('ServiceProxy options', options, SERVICE_PROXY_KEYS)
    const p = options.proxier
    if (typeof p !== 'object' || p === null || typeof (p as Proxier).route !== 'function' || typeof (p as Proxier).options !== 'object' || (p as Proxier).options === null) {
      throw new SvcplaneTypeError('ServiceProxy options: proxier must be a Proxier')
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new SvcplaneTypeError('ServiceProxy options: clock must be a function')
    this.proxier = p
    const clock = options.clock ?? p.options.clock
    const onError = options.onError ?? (() => {})
    this.listenOn = options.listenOn ?? defaultListenOn
    this.ctx = {
      route: (packet) => p.route(packet),
      dataplane: () => p.dataplane,
      now: clock,
      counters: this.counterTable,
      local: this.local,
      connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, 5000),
      udpIdleTimeoutMs: positive('udpIdleTimeoutMs', options.udpIdleTimeoutMs, 30000),
      onError,
      generation: () => this.conntrackGeneration,
    }
    const gcMs = positive('gcIntervalMs', options.gcIntervalMs, 10000, true)
    if (gcMs > 0) {
      this.gcTimer = setInterval(() => this.gc(), gcMs)
      this.gcTimer.unref()
    }
  }

  /** Syncs the Proxier and opens a listener for every frontend. */
  start(): Promise<ProxySyncResult> {
    if (this.state !== 'new') return Promise.reject(new SvcplaneError('WRONG_STATE', `ServiceProxy: start() on a proxy that is ${this.state}`))
    this.state = 'running'
    return this.sync()
  }

  /**
   * Applies pending Service/EndpointSlice changes (Proxier.sync) and follows them with the
   * listeners. Established TCP connections are left alone, also those to endpoints that are
   * now terminating or gone; UDP flows move on their next datagram.
   */
  sync(): Promise<ProxySyncResult> {
    const run = this.queue.then(() => this.syncNow())
    this.queue = run.catch(() => {})
    return run
  }

  private async syncNow(): Promise<ProxySyncResult> {
    if (this.state !== 'running') throw new SvcplaneError('WRONG_STATE', `ServiceProxy: sync() on a proxy that is ${this.state}`)
    const summary = this.proxier.sync()
    this.conntrackGeneration++
    const result: ProxySyncResult = { proxier: summary, listenersOpened: 0, listenersClosed: 0, listenersFailed: 0 }
    this.local.refresh()
    const desired = new Map<string, ListenerSpec>()
    for (const sp of this.proxier.state.servicePorts()) {
      for (const f of sp.frontends) {
        if (f.protocol !== 'TCP' && f.protocol !== 'UDP') continue // Node has no SCTP sockets
        const key = keyOf(f.address, f.port, f.protocol)
        if (desired.has(key)) continue // the first ServicePort in kube-proxy's order owns it
        desired.set(key, { address: f.address, port: f.port, protocol: f.protocol, kind: f.kind, servicePort: sp.info.name })
      }
    }
    const closing: Promise<void>[] = []
    const failedBefore = new Map<string, string | undefined>()
    for (const [key, l] of this.listenersByKey) {
      if (l.state === 'failed') failedBefore.set(key, l.error)
      const want = desired.get(key)
      // Failed and skipped frontends are tried again at every sync (addresses come and go).
      if (want !== undefined && l.state === 'listening') {
        l.spec.servicePort = want.servicePort
        continue
      }
      this.listenersByKey.delete(key)
      if (l.state === 'listening') result.listenersClosed++
      closing.push(this.closeListener(l))
    }
    await Promise.all(closing)
    const opening: Promise<void>[] = []
    for (const [key, spec] of desired) {
      if (this.listenersByKey.has(key)) continue
      const l: Listener = { spec, state: 'skipped' }
      this.listenersByKey.set(key, l)
      if (!this.listenOn(spec, this.local.has(spec.address))) {
        l.error = 'not a local address'
        continue
      }
      opening.push(
        this.openListener(l).then(
          () => void result.listenersOpened++,
          (err: Error) => {
            l.state = 'failed'
            l.error = err.message
            result.listenersFailed++
            // Retried at every sync; the same failure again is not counted or reported again.
            if (failedBefore.get(key) === err.message) return
            this.counterTable.of(spec.servicePort).errors++
            this.ctx.onError(err, `${spec.servicePort}: listen on ${spec.protocol} ${spec.address}:${spec.port}`)
          },
        ),
      )
    }
    await Promise.all(opening)
    return result
  }

  private openListener(l: Listener): Promise<void> {
    const { address, port, protocol } = l.spec
    if (protocol === 'TCP') {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => {
        acceptTcp(
          this.ctx,
          l.spec,
          socket,
          (s) => this.sessions.add(s),
          (s) => this.sessions.delete(s),
        )
      })
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: address, port, exclusive: true, backlog: 1024 }, () => {
          server.off('error', reject)
          server.on('error', (err) => {
            this.counterTable.of(l.spec.servicePort).errors++
            this.ctx.onError(err, `${l.spec.servicePort}: TCP ${address}:${port}`)
          })
          l.tcp = server
          l.state = 'listening'
          resolve()
        })
      })
    }
    const socket = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' })
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        try {
          socket.close()
        } catch {
          // never bound
        }
        reject(err)
      }
      socket.once('error', fail)
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', fail)
        l.udp = new UdpFrontend(this.ctx, l.spec, socket)
        l.state = 'listening'
        resolve()
      })
    })
  }

  private async closeListener(l: Listener): Promise<void> {
    if (l.tcp !== undefined) {
      const server = l.tcp
      l.tcp = undefined
      // Stops accepting at once; connections already accepted keep going (they are sessions
      // now). close()'s callback waits for those too, so it is not awaited here.
      server.close()
    }
    if (l.udp !== undefined) {
      const udp = l.udp
      l.udp = undefined
      await udp.close()
    }
  }

  /** Every frontend and what became of it. */
  listeners(): ListenerInfo[] {
    return [...this.listenersByKey.values()]
      .map((l) => ({ ...l.spec, state: l.state, ...(l.error !== undefined ? { error: l.error } : {}) }))
      .sort((a, b) => (keyOf(a.address, a.port, a.protocol) < keyOf(b.address, b.port, b.protocol) ? -1 : 1))
  }

  /** Counters per ServicePort name; byte counts include connections still open. */
  counters(): Record<string, ServiceCounters> {
    return this.counterTable.snapshot(this.sessions)
  }

  /** TCP connections open now. */
  get activeConnections(): number {
    return this.sessions.size
  }

  private gc(): void {
    const dp = this.proxier.dataplane
    if (dp === undefined) return
    try {
      const removed = dp.gc(this.ctx.now())
      if (removed.flows > 0) this.conntrackGeneration++
    } catch (err) {
      this.ctx.onError(err as Error, 'conntrack gc')
    }
  }

  /**
   * Clean shutdown: stops listening and closes UDP flows at once, gives open TCP connections
   * up to `drainMs` (default 5000) to finish, then resets the rest. Resolves when every socket
   * is closed.
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    const drainMs = positive('drainMs', options.drainMs, 5000, true)
    const run = this.queue.then(() => this.closeNow(drainMs))
    this.queue = run.catch(() => {})
    return run
  }

  private async closeNow(drainMs: number): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return
    this.state = 'closing'
    if (this.gcTimer !== undefined) clearInterval(this.gcTimer)
    const listeners = [...this.listenersByKey.values()]
    this.listenersByKey.clear()
    await Promise.all(listeners.map((l) => this.closeListener(l)))
    if (this.sessions.size > 0) {
      const all = Promise.all([...this.sessions].map((s) => s.done))
      let timer: NodeJS.Timeout | undefined
      const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))
      await Promise.race([all, expired])
      clearTimeout(timer)
      for (const s of this.sessions) s.abort()
      await all
    }
    this.state = 'closed'
  }
}
