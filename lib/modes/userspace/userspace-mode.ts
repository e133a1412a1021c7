// The userspace proxy mode (kube-proxy --proxy-mode userspace, removed in Kubernetes 1.26):
// every ServicePort gets a proxy port and, when the Proxier listens, a socket on it; portal
// rules send its cluster IP, external IPs, load-balancer IPs and NodePort there; the socket
// picks an endpoint with LoadBalancerRR (round-robin, ClientIP affinity) and opens its own
// connection to it, so the endpoint always sees this node as the source. route() walks the
// portal rules, then asks the same load balancer the sockets use.
import { seededRandom } from '../../util/random.js'
import { joinHostPort } from '../../util/host-port.js'
import type { ProxyModelView, ServiceDiff, ServicePortState } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type Packet, type RouteResult } from '../../proxy/packet.js'
import type { ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import type { KubeProxyTrace, SourceClass, Step } from '../../proxy/trace.js'
import type { ServiceCounters } from '../../service-proxy/counters.js'
import { splitEndpoint } from '../../service-proxy/addresses.js'
import { LoadBalancerRR, type AffinityEntry } from './round-robin.js'
import { formatPortalRule, portalJumpRules, portalRules, renderPortalRestore, NODEPORT_CONTAINER, NODEPORT_HOST, PORTALS_CONTAINER, PORTALS_HOST, type PortalRule } from './portal-rules.js'
import { ProxyPortAllocator } from './proxy-ports.js'
import { ProxySockets, type ProxySocketInfo } from './proxy-sockets.js'
import type { UserspaceSettings } from './userspace-options.js'
import { formatListenerTable } from './listener-table.js'

/** What inspect() shows in mode 'userspace'. */
export interface UserspaceView {
  mode: 'userspace'
  userspace: UserspaceMode
}

/** One ServicePort as the userspace proxier holds it. */
export interface UserspaceServicePort {
  servicePort: string
  protocol: 'TCP' | 'UDP'
  /** 0 while the kernel has not yet given the listener its port. */
  proxyPort: number
  /** Ready endpoints in the order round-robin walks them. */
  endpoints: string[]
  /** Index into `endpoints` of the next round-robin pick. */
  next: number
  /** ClientIP affinity timeout in seconds; 0: none. */
  affinitySeconds: number
}

interface Entry {
  state: ServicePortState
  protocol: 'TCP' | 'UDP'
  proxyPort: number
  rules: PortalRule[]
}

/** A client's flow through the proxy: its connection (TCP) or client socket (UDP). */
interface Flow {
  endpoint: string
  lastUsed: number
}

const FLOW_CAPACITY = 65536
/** kube-proxy's userspace proxy dialled an endpoint up to 4 times (EndpointDialTimeouts). */
const DIAL_ATTEMPTS = 4
const TCP_FLOW_SECONDS = 86400
const TCP_SYN = 0x02
const TCP_FIN = 0x01
const TCP_RST = 0x04
const isLoopback = (address: string) => address === '::1' || /^127\./.test(address)

function seedOf(seed: number | bigint | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 2 ** 32)
  return typeof seed === 'bigint' ? Number(BigInt.asUintN(32, seed)) : seed
}

export class UserspaceMode implements ProxyModeImpl<UserspaceView> {
  private readonly lb: LoadBalancerRR
  private readonly entries = new Map<string, Entry>()
  private readonly ports: ProxyPortAllocator
  /** The kernel picks listener ports (no --proxy-port-range, listening). */
  private readonly kernelPorts: boolean
  private readonly sockets: ProxySockets
  private readonly flows = new Map<string, Flow>()
  /** ServicePorts (model keys) that have a socket, open or opening. */
  private readonly socketKeys = new Set<string>()
  private readonly family: 'IPv4' | 'IPv6'
  private readonly hostIP: string
  /** Listener changes run one after the other; settled() waits for them. */
  private queue: Promise<void> = Promise.resolve()
  private closed = false

  constructor(
    private readonly model: ProxyModelView,
    private readonly options: ResolvedOptions,
    readonly settings: UserspaceSettings,
  ) {
    this.lb = new LoadBalancerRR(seededRandom(seedOf(options.seed)))
    this.family = settings.bindAddress.includes(':') ? 'IPv6' : 'IPv4'
    this.hostIP = options.node.ips.find((ip) => ip.includes(':') === (this.family === 'IPv6')) ?? settings.bindAddress
    this.kernelPorts = settings.listen && settings.portRange === undefined
    this.ports = new ProxyPortAllocator(settings.portRange)
    this.sockets = new ProxySockets({
      decide: (key, packet) => this.decideAtSocket(key, packet),
      redial: (key, packet, _failed, attempt) => this.redialAtSocket(key, packet, attempt),
      clock: options.clock,
      connectTimeoutMs: settings.connectTimeoutMs,
      udpIdleTimeoutMs: settings.udpIdleTimeoutMs,
      onError: settings.onError,
    })
  }

  inspect(): UserspaceView {
    return { mode: 'userspace', userspace: this }
  }

  private serves(s: ServicePortState): boolean {
    return s.info.family === this.family && (s.info.protocol === 'TCP' || s.info.protocol === 'UDP')
  }

  apply(diff: ServiceDiff): { flowsRemoved: number } {
    // Proxy ports first: a full range refuses the Service before anything changed.
    const fresh: { key: string; port: number }[] = []
    const allocate = (s: ServicePortState) => {
      if (!this.serves(s) || this.entries.has(s.info.key) || this.kernelPorts) return
      fresh.push({ key: s.info.key, port: this.ports.allocate(s.info.name) })
    }
    try {
      for (const s of diff.added) allocate(s)
      for (const c of diff.changed) allocate(c.after)
    } catch (err) {
      for (const f of fresh) this.ports.release(f.port)
      throw err
    }
    const portOf = new Map(fresh.map((f) => [f.key, f.port]))
    let flowsRemoved = 0
    const gone = [...diff.removed, ...diff.changed.filter((c) => !this.serves(c.after)).map((c) => c.before)]
    for (const s of gone) flowsRemoved += this.remove(s.info.key)
    for (const s of [...diff.added, ...diff.changed.map((c) => c.after)]) {
      if (!this.serves(s)) continue
      const proxyPort = this.entries.get(s.info.key)?.proxyPort ?? portOf.get(s.info.key) ?? 0
      this.install(s, proxyPort)
    }
    return { flowsRemoved }
  }

  private install(s: ServicePortState, proxyPort: number): void {
    const protocol = s.info.protocol as 'TCP' | 'UDP'
    this.lb.setAffinity(s.info.key, s.info.affinityTimeoutSeconds)
    this.lb.setEndpoints(s.info.key, s.endpoints.filter((e) => e.ready).map((e) => e.endpoint))
    this.entries.set(s.info.key, { state: s, protocol, proxyPort, rules: this.rulesOf(s, protocol, proxyPort) })
  }

  private rulesOf(s: ServicePortState, protocol: 'TCP' | 'UDP', proxyPort: number): PortalRule[] {
    if (proxyPort === 0) return []
    const i = s.info
    return portalRules(
      { servicePort: i.name, protocol, clusterIP: i.clusterIP, port: i.port, externalIPs: i.externalIPs, loadBalancerIPs: i.loadBalancerVIPs, nodePort: i.nodePort, proxyPort },
      { bindAddress: this.settings.bindAddress, hostIP: this.hostIP },
    )
  }

  private remove(key: string): number {
    const e = this.entries.get(key)
    if (e === undefined) return 0
    this.entries.delete(key)
    if (e.proxyPort !== 0) this.ports.release(e.proxyPort)
    this.lb.deleteService(key)
    let removed = 0
    for (const [k] of this.flows) {
      if (k.endsWith(`|${key}`)) {
        this.flows.delete(k)
        removed++
      }
    }
    return removed
  }

  synced(): void {
    this.lb.cleanup(this.options.clock())
    if (this.settings.listen && !this.closed) this.queue = this.queue.then(() => this.reconcileSockets())
  }

  /** Opens a socket for every ServicePort that has none, closes those of removed ServicePorts. */
  private async reconcileSockets(): Promise<void> {
    if (this.closed) return
    const stale = [...this.socketKeys].filter((k) => !this.entries.has(k))
    for (const k of stale) this.socketKeys.delete(k)
    await Promise.all(stale.map((k) => this.sockets.close(k)))
    const opening: Promise<void>[] = []
    for (const [key, e] of this.entries) {
      const state = this.sockets.state(key)
      if (state === 'listening' || state === 'opening') continue
      // A socket that could not bind is tried again at every sync (the port may be free now).
      if (state === 'failed') await this.sockets.close(key)
      this.socketKeys.add(key)
      const spec = { key, servicePort: e.state.info.name, protocol: e.protocol, address: this.settings.bindAddress, port: e.proxyPort }
      opening.push(
        this.sockets.open(spec).then(
          (port) => {
            const now = this.entries.get(key)
            if (now === undefined || now.proxyPort === port) return
            // The kernel chose the port: the portal rules can name it now.
            this.ports.claim(port)
            now.proxyPort = port
            now.rules = this.rulesOf(now.state, now.protocol, port)
          },
          // Counted, reported and listed by the socket table; tried again at the next sync.
          () => {},
        ),
      )
    }
    await Promise.all(opening)
  }

  /** Resolves once the listeners follow the last sync (opened, closed, or failed). */
  settled(): Promise<void> {
    return this.queue
  }

  /** Closes every listener; open connections get `drainMs` (default 0) to end. No listening after this. */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    this.closed = true
    await this.queue
    await this.sockets.closeAll(options.drainMs ?? 0)
  }

  /** The ServicePorts with their proxy ports and round-robin state, by name. */
  servicePorts(): UserspaceServicePort[] {
    return [...this.entries.entries()]
      .map(([key, e]) => {
        const order = this.lb.order(key)
        return {
          servicePort: e.state.info.name,
          protocol: e.protocol,
          proxyPort: e.proxyPort,
          endpoints: [...(order?.endpoints ?? [])],
          next: order?.next ?? 0,
          affinitySeconds: e.state.info.affinityTimeoutSeconds,
        }
      })
      .sort((a, b) => (a.servicePort < b.servicePort ? -1 : a.servicePort > b.servicePort ? 1 : a.protocol < b.protocol ? -1 : 1))
  }

  /** Every portal rule, in chain order then ServicePort order. */
  rules(): PortalRule[] {
    const all = [...this.entries.values()].sort((a, b) => (a.state.info.key < b.state.info.key ? -1 : 1)).flatMap((e) => e.rules)
    const order = [PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST]
    return all.sort((a, b) => (order.indexOf(a.chain) + 1 || 99) - (order.indexOf(b.chain) + 1 || 99))
  }

  /** The portal chains as iptables-restore input (load with --noflush). */
  portalRules(): string {
    return renderPortalRestore(this.rules())
  }

  /** The jumps from PREROUTING, OUTPUT and INPUT into the portal chains. */
  jumpRules(): { nat: string[]; filter: string[] } {
    return portalJumpRules()
  }

  /**
   * The listener table: one row per ServicePort; `state` is 'listening' / 'opening' / 'failed'
   * for real sockets and 'model' when this Proxier does not listen.
   */
  listeners(): (Omit<ProxySocketInfo, 'state'> & { state: ProxySocketInfo['state'] | 'model' })[] {
    if (!this.settings.listen) {
      return this.servicePorts().map((s) => ({ servicePort: s.servicePort, protocol: s.protocol, address: this.settings.bindAddress, port: s.proxyPort, state: 'model' as const }))
    }
    return this.sockets.list()
  }

  /** The listener table as text: sockets, their state, counters, round-robin order. */
  listenerTable(): string {
    return formatListenerTable(this.listeners(), this.servicePorts(), this.counters())
  }

  /** Connection counters per ServicePort name (the sockets' traffic). */
  counters(): Record<string, ServiceCounters> {
    return this.sockets.counters()
  }

  /** The ClientIP affinity entries of a ServicePort (by name) that have not expired. */
  affinity(servicePort: string, now = this.options.clock()): AffinityEntry[] {
    const e = [...this.entries.entries()].filter(([, v]) => v.state.info.name === servicePort)
    return e.flatMap(([key]) => this.lb.affinityEntries(key, now))
  }

  /** The endpoint for a client at a ServicePort's socket: its flow's, its affinity's, or the next. */
  private pick(key: string, protocol: 'TCP' | 'UDP', src: string, sport: number, isNew: boolean, now: number, steps: Step[] | undefined): string | undefined {
    const flowKey = `${protocol}|${src}|${sport}|${key}`
    const flow = this.flows.get(flowKey)
    const live = this.lb.order(key)?.endpoints ?? []
    const timeout = protocol === 'UDP' ? this.settings.udpIdleTimeoutMs / 1000 : TCP_FLOW_SECONDS
    if (flow !== undefined && !isNew && now - flow.lastUsed < timeout && (protocol === 'TCP' || live.includes(flow.endpoint))) {
      flow.lastUsed = now
      steps?.push({ kind: 'conntrack', text: `the proxy's ${protocol === 'TCP' ? 'connection' : 'client socket'} for ${joinHostPort(src, sport)} goes on to ${flow.endpoint}` })
      return flow.endpoint
    }
    this.flows.delete(flowKey)
    const chosen = this.lb.next(key, src, now)
    if (chosen === undefined) return undefined
    if (steps !== undefined) {
      const of = `${chosen.index + 1} of ${live.length}`
      if (chosen.reason === 'affinity') steps.push({ kind: 'affinity', text: `ClientIP affinity: ${src} stays on ${chosen.endpoint} (endpoint ${of}; affinity timeout ${this.entries.get(key)?.state.info.affinityTimeoutSeconds}s)` })
      else steps.push({ kind: 'endpoint', text: `round-robin: ${chosen.endpoint}, endpoint ${of} in the proxier's shuffled order${chosen.affinity !== undefined ? `; ${src} is remembered for ClientIP affinity` : ''}` })
    }
    if (this.flows.size >= FLOW_CAPACITY) this.flows.delete(this.flows.keys().next().value!)
    this.flows.set(flowKey, { endpoint: chosen.endpoint, lastUsed: now })
    return chosen.endpoint
  }

  /** A connection or datagram at the socket of ServicePort `key` (the sockets' decision). */
  private decideAtSocket(key: string, p: Packet): RouteResult {
    const e = this.entries.get(key)
    if (e === undefined) return { action: 'accept' }
    const isNew = p.protocol === 'TCP'
    const endpoint = this.pick(key, e.protocol, p.src, p.sport, isNew, p.now ?? this.options.clock(), undefined)
    if (endpoint === undefined) return { action: 'reject', servicePort: e.state.info.name, reason: 'no-endpoints' }
    if (e.protocol === 'TCP') this.flows.delete(`TCP|${p.src}|${p.sport}|${key}`)
    return this.dnat(e, endpoint)
  }

  /**
   * kube-proxy's TryConnectEndpoints: a failed dial is tried again, up to DIAL_ATTEMPTS in
   * all, on the endpoint the load balancer gives with the client's affinity reset (so an
   * affinity entry pointing at a dead endpoint is replaced).
   */
  private redialAtSocket(key: string, p: Packet, attempt: number): RouteResult | undefined {
    const e = this.entries.get(key)
    if (e === undefined || attempt >= DIAL_ATTEMPTS) return undefined
    const chosen = this.lb.next(key, p.src, p.now ?? this.options.clock(), true)
    return chosen === undefined ? undefined : this.dnat(e, chosen.endpoint)
  }

  private dnat(e: Entry, endpoint: string): RouteResult {
    const ep = e.state.endpoints.find((x) => x.endpoint === endpoint)
    const { host, port } = ep !== undefined ? { host: ep.ip, port: ep.port } : splitEndpoint(endpoint)
    // The proxy dials the endpoint itself: the endpoint sees this node, never the client.
    return dnatResult(e.state.info.name, host, port, true)
  }

  /** The first portal rule the packet matches, walking the chains its hook traverses. */
  private matchRule(p: CheckedPacket, source: SourceClass): { rule: PortalRule; entry: Entry } | undefined {
    const dstLocal = isLoopback(p.dst) || this.model.nodeAddresses.isLocal(p.dst)
    const chains = p.hook === 'output' ? [PORTALS_HOST, NODEPORT_HOST] : [PORTALS_CONTAINER, NODEPORT_CONTAINER]
    const entries = [...this.entries.values()].sort((a, b) => (a.state.info.key < b.state.info.key ? -1 : 1))
    for (const chain of chains) {
      for (const entry of entries) {
        for (const rule of entry.rules) {
          if (rule.chain !== chain || rule.protocol !== p.protocol || rule.dport !== p.dport) continue
          if (rule.destination !== undefined && rule.destination !== p.dst) continue
          if (rule.notFromBridge && source.fromPod) continue
          if (rule.dstLocal && !dstLocal) continue
          if (chain.startsWith('KUBE-NODEPORT') && !dstLocal) continue
          return { rule, entry }
        }
      }
    }
    return undefined
  }

  route(p: CheckedPacket, source: SourceClass, _trace: KubeProxyTrace, now: number): ModeDecision {
    const steps: Step[] = []
    if (p.dst.includes(':') !== (this.family === 'IPv6')) {
      steps.push({ kind: 'frontend', text: `the userspace proxier serves ${this.family} (--bind-address ${this.settings.bindAddress}): no portal rule for ${p.dst}` })
      return { result: { action: 'accept' }, steps }
    }
    const hit = this.matchRule(p, source)
    if (hit === undefined) {
      const chains = p.hook === 'output' ? `${PORTALS_HOST} / ${NODEPORT_HOST}` : `${PORTALS_CONTAINER} / ${NODEPORT_CONTAINER}`
      steps.push({ kind: 'frontend', text: `no rule in ${chains} matches ${joinHostPort(p.dst, p.dport)}/${p.protocol}: not service traffic` })
      return { result: { action: 'accept' }, steps }
    }
    const { rule, entry } = hit
    const name = entry.state.info.name
    const to = rule.target.kind === 'REDIRECT' ? `the incoming interface's address, port ${rule.target.toPort}` : rule.target.kind === 'DNAT' ? joinHostPort(rule.target.address, rule.target.port) : ''
    steps.push({ kind: 'frontend', text: `${formatPortalRule(rule)}: ${rule.target.kind} to ${to}, the proxy port of ${name}` })
    const listener = this.settings.listen ? this.sockets.list().find((l) => l.servicePort === name && l.protocol === entry.protocol) : undefined
    if (this.settings.listen && listener?.state !== 'listening') {
      steps.push({ kind: 'verdict', text: `nothing listens on proxy port ${entry.proxyPort} (${listener?.error ?? 'the socket is not open yet'}): the kernel refuses` })
      return { result: { action: 'reject', servicePort: name, reason: 'not-programmed' }, steps }
    }
    const isNew = p.protocol === 'TCP' && (p.tcpFlags === undefined || (p.tcpFlags & TCP_SYN) !== 0)
    const flowKey = `${p.protocol}|${p.src}|${p.sport}|${entry.state.info.key}`
    if (p.protocol === 'TCP' && !isNew && !this.flows.has(flowKey)) {
      steps.push({ kind: 'conntrack', text: `not a SYN and the proxy has no connection from ${joinHostPort(p.src, p.sport)}: the proxy port's socket answers with a reset` })
      return { result: { action: 'reject', servicePort: name, reason: 'no-endpoints' }, steps }
    }
    const endpoint = this.pick(entry.state.info.key, entry.protocol, p.src, p.sport, isNew, now, steps)
    if (endpoint === undefined) {
      const how = p.protocol === 'TCP' ? 'accepts the connection, has no endpoint to dial and closes it' : 'drops the datagram'
      steps.push({ kind: 'verdict', text: `${name} has no ready endpoints: the proxy ${how}` })
      return { result: { action: 'reject', servicePort: name, reason: 'no-endpoints' }, steps }
    }
    if (p.protocol === 'TCP' && p.tcpFlags !== undefined && (p.tcpFlags & (TCP_FIN | TCP_RST)) !== 0) this.flows.delete(flowKey)
    steps.push({ kind: 'masquerade', text: `the proxy dials ${endpoint} from this node: the endpoint sees the node's address, not ${p.src}` })
    return { result: this.dnat(entry, endpoint), steps }
  }
}
