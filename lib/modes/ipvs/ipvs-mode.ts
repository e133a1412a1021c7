// The ipvs proxy mode (kube-proxy --proxy-mode ipvs): on every sync the model becomes IPVS
// virtual servers (IpvsTable), ipsets and the constant iptables rules, as kube-proxy's ipvs
// proxier writes them. A packet is decided the way the kernel would: IPVS's connection table,
// then the nat rules that set the masquerade mark, the filter rules (source ranges,
// KUBE-IPVS-FILTER), the virtual server lookup, persistence and the scheduler.
import { formatMasqueradeMark } from '../../iptables/kube-proxy/render.js'
import { podCIDROf } from '../../iptables/kube-proxy/from-model.js'
import { renderIpvsIptables } from '../../ipvs/iptables-rules.js'
import { formatIpvsadm, formatIpvsConnections, type IpvsadmOptions } from '../../ipvs/format-ipvsadm.js'
import { formatIpsetSave } from '../../ipvs/format-ipset.js'
import { FamilyProgram } from '../../ipvs/family-program.js'
import { ipsetName, IPSET_INFO } from '../../ipvs/ipsets.js'
import { connKey, isNewConn, IpvsTable, listOrder, type Connection, type Dest, type VsEntry } from '../../ipvs/ipvs-table.js'
import { nodePortIPs, type Family } from '../../ipvs/node-port-addresses.js'
import type { VirtualServer } from '../../ipvs/types.js'
import { cidrContains, parseAddressInto, parseCidr } from '../../util/address.js'
import type { ProxyModelView, ServiceDiff } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type RouteReason} from '../../proxy/packet.js'
import type { ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import type { KubeProxyTrace, SourceClass, Step } from '../../proxy/trace.js'
import type { IptablesExtraOptions } from '../../iptables/kube-proxy/from-model.js'
import type { IpvsSettings } from './ipvs-options.js'
import { SvcplaneTypeError } from '../../errors.js'
import { NativeIpvs, type NativeIpvsDecision } from './native-ipvs.js'
import type { Flow } from '../../dataplane/types.js'
import { joinHostPort } from '../../util/host-port.js'

/** What inspect() shows in mode 'ipvs'. */
export interface IpvsView {
  mode: 'ipvs'
  ipvs: IpvsMode
  /** The native core deciding the packets; undefined when the TypeScript model does (ipvs.dataplane 'typescript', or a scheduler the core lacks). */
  native: NativeIpvs | undefined
}

/** proxier.ipvsState(): what `ipvsadm -Ln`, `ipset save`, `iptables-save` and `ip addr show kube-ipvs0` would show. */
export interface IpvsState {
  /** In ipvsadm's order (protocol, address, port); real servers by address and port. */
  virtualServers: VirtualServer[]
  /** Set name -> entries; IPv6 sets are named KUBE-6-... */
  ipsets: Record<string, string[]>
  /** The iptables-restore input of the IPv4 proxier ('' when IPv4 is not served). */
  iptables: string
  /** The ip6tables-restore input of the IPv6 proxier ('' when IPv6 is not served). */
  ip6tables: string
  /** Addresses bound on the kube-ipvs0 dummy interface. */
  interfaceAddresses: string[]
  /** The sysctls kube-proxy's ipvs proxier sets at start. */
  sysctls: Record<string, number>
}

interface Built {
  program: FamilyProgram
  iptables: string
}

const PROTO_NUMBER: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 }

function addressBytes(address: string): Uint8Array {
  const b = new Uint8Array(16)
  parseAddressInto(address, b, 0)
  return b
}

/** ipvsadm's order: protocol number, then address bytes, then port. */
export function compareVirtualServers(a: Omit<VirtualServer, 'realServers'>, b: Omit<VirtualServer, 'realServers'>): number {
  return (PROTO_NUMBER[a.protocol]! - PROTO_NUMBER[b.protocol]!) || compareAddresses(a.address, b.address) || a.port - b.port
}

function compareAddresses(a: string, b: string): number {
  const x = addressBytes(a)
  const y = addressBytes(b)
  for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return 0
}

const isLoopback = (address: string) => address === '::1' || /^127\./.test(address)

function inCidr(cidr: string, address: string): boolean {
  const c = parseCidr(cidr)
  return c !== undefined && cidrContains(c, addressBytes(address), 0)
}

export class IpvsMode implements ProxyModeImpl<IpvsView> {
  readonly table: IpvsTable
  private readonly built = new Map<Family, Built>()
  /** ServicePorts (model keys) changed since the last build. */
  private readonly changed = new Set<string>()
  private dirty = true
  /** How many times the state was rebuilt (one per sync that changed something). */
  builds = 0
  /** The native hash core the virtual servers are programmed into, when it decides the packets. */
  readonly native: NativeIpvs | undefined

  constructor(
    private readonly model: ProxyModelView,
    private readonly options: ResolvedOptions,
    readonly settings: IpvsSettings,
    private readonly iptables: IptablesExtraOptions = {},
  ) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const cidrs = model.detector.podCIDRs.filter((c) => c.includes(':') === (family === 'IPv6'))
      if (cidrs.length > 1) {
        throw new SvcplaneTypeError(`Proxier options: podCIDRs has ${cidrs.length} ${family} CIDRs (${cidrs.join(', ')}); kube-proxy's ipvs mode detects pod traffic by one CIDR per family`)
      }
    }
    this.table = new IpvsTable(settings.timeouts)
    if (settings.dataplane === 'native' && NativeIpvs.supports(settings.scheduler)) {
      const native = (this.native = new NativeIpvs(settings.timeouts, options.seed))
      this.table.listener = (key, vs) => native.program(key, vs)
    }
  }

  inspect(): IpvsView {
    return { mode: 'ipvs', ipvs: this, native: this.native }
  }

  apply(diff: ServiceDiff): { flowsRemoved: number } {
    this.dirty = true
    for (const s of [...diff.added, ...diff.removed, ...diff.changed.flatMap((c) => [c.before, c.after])]) this.changed.add(s.info.key)
    // kube-proxy's conntrack cleanup for UDP: flows to endpoints that stopped serving go now.
    let flowsRemoved = 0
    const gone = new Set(diff.removed.map((s) => s.info.key))
    const serving = new Map(diff.changed.map(({ after }) => [after.info.key, new Set(after.endpoints.filter((e) => e.serving).map((e) => e.endpoint))]))
    flowsRemoved += this.table.removeWhere((c) => {
      if (c.vs.server.protocol !== 'UDP') return false
      const key = c.vs.origin.servicePortKey
      if (gone.has(key)) return true
      const still = serving.get(key)
      return still !== undefined && c.dest !== undefined && !still.has(c.dest.key)
    })
    return { flowsRemoved }
  }

  synced(): void {
    if (this.dirty) this.rebuild()
    // kube-proxy retries the graceful deletions on a timer; here every sync does.
    else this.table.sweep(this.table.now, true)
    // The core's expired flows still count for lc/wlc until collected.
    this.native?.dataplane.gc(this.table.now)
  }

  /** Recomputes the changed ServicePorts (all of them the first time) and programs what that changes. */
  private rebuild(): void {
    const mark = this.iptables.masqueradeMark ?? formatMasqueradeMark(this.model.options.masqueradeBit)
    const first = this.built.size === 0
    const keys = first ? this.model.servicePorts().map((s) => s.info.key) : [...this.changed]
    const keep = (address: string) => this.settings.excludeCIDRs.some((c) => inCidr(c, address))
    this.table.sweep(this.table.now, true)
    for (const family of this.model.node.families) {
      let built = this.built.get(family)
      if (built === undefined) {
        const nodePorts = nodePortIPs(family, this.options.node.ips, this.options.nodePortAddresses)
        const program = new FamilyProgram(family, { family, scheduler: this.settings.scheduler, nodeIPs: this.options.node.ips, nodePortIPs: nodePorts })
        this.built.set(family, (built = { program, iptables: '' }))
      }
      for (const [key, want] of built.program.update(this.model, keys)) this.table.applyOne(key, want, keep)
      built.iptables = renderIpvsIptables(built.program, {
        masqueradeMark: mark,
        masqueradeAll: this.model.options.masqueradeAll,
        podCIDR: podCIDROf(this.model, family),
        randomFully: this.iptables.randomFully ?? true,
      })
    }
    this.changed.clear()
    this.dirty = false
    this.builds++
  }

  private ensureBuilt(): void {
    if (this.built.size === 0) this.rebuild()
  }

  /** The state as the tools would list it. */
  state(): IpvsState {
    this.ensureBuilt()
    this.table.expire(this.table.now)
    const virtualServers = this.table.entries().map((vs) => ({
      ...vs.server,
      realServers: listOrder(vs.dests).map((d) => ({ address: d.address, port: d.port, weight: d.weight })),
    })).sort(compareVirtualServers)
    const ipsets: Record<string, string[]> = {}
    const bound: string[] = []
    for (const [family, b] of this.built) {
      const sets = b.program.ipsets()
      for (const info of IPSET_INFO) ipsets[ipsetName(info.name, family)] = [...sets.entries.get(info.name)!]
      bound.push(...b.program.bound())
    }
    const sysctls: Record<string, number> = {
      'net/ipv4/vs/conntrack': 1, 'net/ipv4/vs/expire_nodest_conn': 1, 'net/ipv4/vs/expire_quiescent_template': 1, 'net/ipv4/ip_forward': 1,
    }
    if (this.settings.strictARP) Object.assign(sysctls, { 'net/ipv4/conf/all/arp_ignore': 1, 'net/ipv4/conf/all/arp_announce': 2 })
    return {
      virtualServers,
      ipsets,
      iptables: this.built.get('IPv4')?.iptables ?? '',
      ip6tables: this.built.get('IPv6')?.iptables ?? '',
      interfaceAddresses: bound.sort(compareAddresses),
      sysctls,
    }
  }

  /** The virtual server entries with their destinations' counters (for ipvsadm --stats / --rate). */
  entries(): VsEntry[] {
    this.ensureBuilt()
    return this.table.entries().sort((a, b) => compareVirtualServers(a.server, b.server))
  }

  connections(): Connection[] {
    return this.table.connections()
  }

  /** `ipvsadm -Ln` (view 'list'), `--stats` or `--rate`, for the current state and counters. */
  ipvsadm(options: Omit<IpvsadmOptions, 'now'> = {}): string {
    this.table.expire(this.table.now)
    return formatIpvsadm(this.entries(), { ...options, now: this.table.now })
  }

  /** `ipvsadm -Lnc`: the connection table and the persistence templates. */
  ipvsadmConnections(): string {
    this.table.expire(this.table.now)
    return formatIpvsConnections(this.table, this.table.now)
  }

  /** `ipset save` of every family's sets. */
  ipsetSave(): string {
    this.ensureBuilt()
    return formatIpsetSave([...this.built.values()].map((b) => b.program.ipsets()))
  }

  route(p: CheckedPacket, source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision {
    this.ensureBuilt()
    const family: Family = p.dst.includes(':') ? 'IPv6' : 'IPv4'
    const built = this.built.get(family)
    if (built === undefined) return { result: { action: 'accept' }, steps: [{ kind: 'verdict', text: `${family} is not served: no ipvs proxier` }] }
    const steps: Step[] = []
    const flow: Flow = { src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, tcpFlags: p.tcpFlags }
    const hit = this.table.lookup(connKey(p.protocol, p.src, p.sport, p.dst, p.dport), now)
    if (hit !== undefined) {
      const c = hit.conn
      if (hit.reply) {
        this.table.packet(c, true, p.tcpFlags, now)
        const d = this.native?.decide(flow, now).decision
        if (d !== undefined) steps.push({ kind: 'conntrack', text: `native core: ${d.verdict === 'reply' ? `reply of flow of service ${d.serviceId}, source rewritten to ${joinHostPort(d.address, d.port)}` : `no flow for this reply (${d.verdict})`}` })
        return { result: { action: 'accept' }, steps: [{ kind: 'conntrack', text: `ipvs: reply of a connection through ${c.vs.key}, source rewritten to the virtual server` }, ...steps] }
      }
      const explicitSyn = p.tcpFlags !== undefined && isNewConn(p.protocol, p.tcpFlags) && p.protocol === 'TCP'
      if (c.dest === undefined) {
        this.table.remove(c)
        if (!explicitSyn) {
          steps.push({ kind: 'conntrack', text: `ipvs: the real server of this connection was deleted; expire_nodest_conn drops the packet and the connection` })
          return { result: { action: 'drop', servicePort: c.vs.origin.servicePort, reason: 'no-endpoints' }, steps }
        }
      } else if (explicitSyn && (c.dest.weight === 0 || c.state === 'TIME_WAIT' || c.state === 'CLOSE')) {
        // conn_reuse_mode / expire_nodest_conn: a SYN reusing the source port is scheduled afresh.
        steps.push({ kind: 'conntrack', text: `ipvs: new SYN on a ${c.dest.weight === 0 ? 'connection to a weight-0 real server' : `connection in ${c.state}`} (${c.dest.key}): rescheduled` })
        this.table.remove(c)
        this.native?.close(flow, now)
      } else if (this.native !== undefined) {
        return this.established(c, this.native.decide(flow, now), p, source, now, built, steps)
      } else {
        this.table.packet(c, false, p.tcpFlags, now)
        const text = c.dest.weight === 0
          ? `ipvs: established connection keeps ${c.dest.key} (weight 0: draining, graceful termination)`
          : `ipvs: established connection keeps ${c.dest.key}`
        return { result: dnatResult(c.vs.origin.servicePort, c.dest.address, c.dest.port, c.masquerade), steps: [{ kind: 'conntrack', text }] }
      }
    }
    return this.newConnection(p, source, trace, now, built, steps, flow)
  }

  /**
   * A packet of a connection both the IPVS table and the core track: the core's flow decides.
   * Should the core have lost it (its TCP state machine is netfilter's, not IPVS's), its new
   * decision stands and the table follows it.
   */
  private established(c: Connection, n: NativeIpvsDecision, p: CheckedPacket, source: SourceClass, now: number, built: Built, steps: Step[]): ModeDecision {
    const d = n.decision
    if (d.verdict === 'forward' && d.established && n.dest === c.dest && c.dest !== undefined) {
      this.table.packet(c, false, p.tcpFlags, now)
      const text = c.dest.weight === 0
        ? `ipvs: established connection keeps ${c.dest.key} (weight 0: draining, graceful termination)`
        : `ipvs: established connection keeps ${c.dest.key}`
      steps.push({ kind: 'conntrack', text }, { kind: 'conntrack', text: `native core: tracked flow of service ${d.serviceId} to backend ${d.backendId} (${joinHostPort(d.address, d.port)})` })
      return { result: dnatResult(c.vs.origin.servicePort, c.dest.address, c.dest.port, c.masquerade), steps }
    }
    this.table.remove(c)
    steps.push({ kind: 'conntrack', text: 'native core: the connection is no longer tracked there; its new decision stands' })
    return this.nativeOutcome(n, p, now, built, steps, this.natMark(p, source, built, []))
  }

  private isLocal(address: string, built: Built): boolean {
    return this.model.nodeAddresses.isLocal(address) || built.program.has('KUBE-IPVS-IPS', address)
  }

  /** KUBE-SERVICES (nat PREROUTING / OUTPUT): whether the rules set the masquerade mark. */
  private natMark(p: CheckedPacket, source: SourceClass, built: Built, steps: Step[]): boolean {
    const has = (set: string, entry: string) => built.program.has(set, entry)
    const proto = p.protocol.toLowerCase()
    const entry = `${p.dst},${proto}:${p.dport}`
    if (isLoopback(p.src)) {
      steps.push({ kind: 'masquerade', text: 'KUBE-SERVICES: loopback source returns early, no mark' })
      return false
    }
    const marks: string[] = []
    if (has('KUBE-LOAD-BALANCER', entry) && !has('KUBE-LOAD-BALANCER-LOCAL', entry)) marks.push('KUBE-LOAD-BALANCER (Cluster policy)')
    if (has('KUBE-CLUSTER-IP', entry)) {
      if (this.model.options.masqueradeAll) marks.push('KUBE-CLUSTER-IP (masqueradeAll)')
      else if (this.model.detector.implemented) {
        if (!source.fromPod) marks.push('KUBE-CLUSTER-IP from outside the pod CIDR')
      } else if (has('KUBE-CLUSTER-IP', `${p.src},${proto}:${p.dport}`)) marks.push('KUBE-CLUSTER-IP src,dst (the node used a VIP as source)')
    }
    const srcLocal = source.fromNode
    const dstLocal = this.isLocal(p.dst, built)
    let accepted = false
    for (const set of ['KUBE-EXTERNAL-IP', 'KUBE-EXTERNAL-IP-LOCAL']) {
      if (accepted || !has(set, entry)) continue
      if (set === 'KUBE-EXTERNAL-IP') marks.push('KUBE-EXTERNAL-IP')
      // physdev ! --physdev-is-in: not from a pod's bridge port; or the external IP is local.
      if ((!source.fromPod && !srcLocal) || dstLocal) accepted = true
    }
    if (!accepted && dstLocal) {
      const np = p.protocol === 'SCTP' ? `${p.dst},sctp:${p.dport}` : String(p.dport)
      const suffix = p.protocol === 'SCTP' ? 'SCTP-HASH' : p.protocol
      if (has(`KUBE-NODE-PORT-LOCAL-${suffix}`, np)) steps.push({ kind: 'masquerade', text: `KUBE-NODE-PORT: ${p.dport} is in KUBE-NODE-PORT-LOCAL-${suffix} (Local policy): no mark` })
      else if (has(`KUBE-NODE-PORT-${suffix}`, np)) marks.push(`KUBE-NODE-PORT-${suffix}`)
    }
    if (marks.length > 0) steps.push({ kind: 'masquerade', text: `KUBE-MARK-MASQ by ${marks.join(', ')}` })
    return marks.length > 0
  }

  /** filter INPUT / OUTPUT: the source-range firewall and KUBE-IPVS-FILTER. */
  private filter(p: CheckedPacket, built: Built, steps: Step[]): { action: 'drop' | 'reject'; reason: RouteReason } | undefined {
    const has = (set: string, entry: string) => built.program.has(set, entry)
    const proto = p.protocol.toLowerCase()
    const entry = `${p.dst},${proto}:${p.dport}`
    if (p.hook === 'output' && p.src === p.dst && built.program.noNodeAccess.some((e) => e.ip === p.dst && e.protocol === proto && e.port === p.dport)) {
      steps.push({ kind: 'firewall', text: `KUBE-IPVS-OUT-FILTER: loadBalancerSourceRanges leave out this node: DROP` })
      return { action: 'drop', reason: 'source-range' }
    }
    if (!this.isLocal(p.dst, built)) return undefined
    if (has('KUBE-LOAD-BALANCER-FW', entry)) {
      const allowed = [...built.program.entriesOf('KUBE-LOAD-BALANCER-SOURCE-CIDR')].some((e) => e.startsWith(`${entry},`) && inCidr(e.slice(entry.length + 1), p.src))
        || has('KUBE-LOAD-BALANCER-SOURCE-IP', `${entry},${p.src}`)
      if (!allowed) {
        steps.push({ kind: 'firewall', text: `KUBE-SOURCE-RANGES-FIREWALL: ${p.src} is outside loadBalancerSourceRanges: DROP` })
        return { action: 'drop', reason: 'source-range' }
      }
      steps.push({ kind: 'firewall', text: `KUBE-SOURCE-RANGES-FIREWALL: ${p.src} is allowed` })
    }
    const served = ['KUBE-LOAD-BALANCER', 'KUBE-CLUSTER-IP', 'KUBE-EXTERNAL-IP', 'KUBE-EXTERNAL-IP-LOCAL'].some((s) => has(s, entry))
      || has('KUBE-HEALTH-CHECK-NODE-PORT', String(p.dport))
    if (!served && has('KUBE-IPVS-IPS', p.dst)) {
      steps.push({ kind: 'firewall', text: `KUBE-IPVS-FILTER: ${p.dst} is on kube-ipvs0 but no service uses port ${p.dport}/${p.protocol}: REJECT` })
      return { action: 'reject', reason: 'invalid-port' }
    }
    return undefined
  }

  private newConnection(p: CheckedPacket, source: SourceClass, trace: KubeProxyTrace, now: number, built: Built, steps: Step[], flow: Flow): ModeDecision {
    if (p.protocol === 'TCP' && !isNewConn(p.protocol, p.tcpFlags) && this.native?.tracks(flow)) {
      // The core still tracks a connection the IPVS table let go (the two state machines differ): it decides.
      steps.push({ kind: 'conntrack', text: 'ipvs: no connection in the IPVS table, but the native core tracks this flow' })
      return this.nativeOutcome(this.native.decide(flow, now), p, now, built, steps, this.natMark(p, source, built, []))
    }
    if (p.protocol === 'TCP' && !isNewConn(p.protocol, p.tcpFlags)) {
      steps.push({ kind: 'frontend', text: 'ipvs: not a SYN and no connection: IPVS schedules TCP on SYN only, the packet goes to the node' })
      return { result: { action: 'accept' }, steps }
    }
    const masquerade = this.natMark(p, source, built, steps)
    const filtered = this.filter(p, built, steps)
    const vs = this.table.virtualServer(p.dst, p.dport, p.protocol)
    if (filtered !== undefined) {
      const servicePort = vs?.origin.servicePort ?? trace.state?.info.name ?? ''
      return { result: { action: filtered.action, servicePort, reason: filtered.reason }, steps }
    }
    if (vs === undefined) {
      steps.push({ kind: 'frontend', text: `ipvs: no virtual server ${p.dst}:${p.dport}/${p.protocol}: not service traffic` })
      return { result: { action: 'accept' }, steps }
    }
    steps.push({ kind: 'frontend', text: `ipvs: virtual server ${vs.key} (${vs.origin.kind} of ${vs.origin.servicePort}), scheduler ${vs.server.scheduler}` })
    if (this.native !== undefined) return this.nativeOutcome(this.native.decide(flow, now), p, now, built, steps, masquerade)
    steps.push({ kind: 'endpoint', text: `decided by the TypeScript IPVS model (${this.settings.dataplane === 'typescript' ? "ipvs.dataplane 'typescript'" : `the native core has no ${vs.server.scheduler} scheduler`})` })
    const { dest, persistent } = this.table.schedule(vs, p.src, p.sport, p.dst, now)
    if (dest === undefined) return this.refused(vs, steps)
    if (persistent) steps.push({ kind: 'affinity', text: `ipvs persistence (timeout ${vs.server.timeout}s): ${p.src} stays on ${dest.key}` })
    else steps.push({ kind: 'endpoint', text: `ipvs: ${vs.server.scheduler} chose ${dest.key}` })
    return this.forwardNew(p, vs, dest, masquerade, built, steps, now)
  }

  /** No real server may take the connection: IPVS answers ICMP port unreachable. */
  private refused(vs: VsEntry, steps: Step[]): ModeDecision {
    const state = this.model.servicePort(vs.origin.servicePortKey)
    const reason: RouteReason = state === undefined || !state.categorized.hasAnyEndpoints ? 'no-endpoints' : 'no-local-endpoints'
    const why = vs.dests.length === 0 ? 'no real servers' : 'no real server the scheduler may use (weight 0)'
    steps.push({ kind: 'verdict', text: `ipvs: ${why}: ICMP port unreachable (REJECT)` })
    return { result: { action: 'reject', servicePort: vs.origin.servicePort, reason }, steps }
  }

  /** The core's decision for a packet the IPVS table has no connection for, recorded in the table. */
  private nativeOutcome(n: NativeIpvsDecision, p: CheckedPacket, now: number, built: Built, steps: Step[], masquerade: boolean): ModeDecision {
    const { decision: d, vs, dest } = n
    if (d.verdict === 'pass' || d.verdict === 'reply' || vs === undefined) {
      steps.push({ kind: 'frontend', text: `native core: ${d.verdict === 'reply' ? 'reply of a tracked flow' : `no frontend ${joinHostPort(p.dst, p.dport)}/${p.protocol}`}` })
      return { result: { action: 'accept' }, steps }
    }
    const scheduler = vs.server.scheduler
    if (d.verdict !== 'forward' || dest === undefined) {
      steps.push({ kind: 'endpoint', text: `native core: service ${d.serviceId} (${scheduler}) has no backend taking new flows` })
      return this.refused(vs, steps)
    }
    const chose = `native core: service ${d.serviceId}, backend ${d.backendId}`
    if (d.established) steps.push({ kind: 'conntrack', text: `${chose}: tracked flow keeps ${dest.key}` })
    else if (d.affinityHit) steps.push({ kind: 'affinity', text: `${chose}: ipvs persistence as ClientIP affinity (timeout ${vs.server.timeout}s): ${p.src} stays on ${dest.key}` })
    else steps.push({ kind: 'endpoint', text: `${chose}: ${scheduler} chose ${dest.key}` })
    return this.forwardNew(p, vs, dest, masquerade, built, steps, now)
  }

  /** A real server chosen for a new connection: the loopback check, hairpin and masquerade, and the connection recorded. */
  private forwardNew(p: CheckedPacket, vs: VsEntry, dest: Dest, masquerade: boolean, built: Built, steps: Step[], now: number): ModeDecision {
    const destLocal = this.model.nodeAddresses.isLocal(dest.address)
    if (isLoopback(p.src) && !destLocal) {
      // __ip_vs_get_out_rt: "Stopping traffic from loopback address ... to non-local address".
      steps.push({ kind: 'verdict', text: `ipvs: a loopback source cannot be sent to the remote real server ${dest.key}: DROP` })
      return { result: { action: 'drop', servicePort: vs.origin.servicePort, reason: 'loopback-source' }, steps }
    }
    const hairpin = built.program.has('KUBE-LOOP-BACK', `${dest.address},${p.protocol.toLowerCase()}:${dest.port},${p.src}`)
    // A real server on this node's own address is delivered locally: POSTROUTING is not traversed.
    const delivered = destLocal && p.hook === 'prerouting'
    if (hairpin) steps.push({ kind: 'masquerade', text: 'KUBE-LOOP-BACK: the endpoint is the client itself: MASQUERADE' })
    else if (masquerade && delivered) steps.push({ kind: 'masquerade', text: `${dest.key} is this node: delivered locally, no POSTROUTING, no masquerade` })
    else if (masquerade) steps.push({ kind: 'masquerade', text: 'KUBE-POSTROUTING masquerades the marked packet' })
    const masq = hairpin || (masquerade && !delivered)
    this.table.connect({
      orig: connKey(p.protocol, p.src, p.sport, p.dst, p.dport),
      reply: connKey(p.protocol, dest.address, dest.port, p.src, p.sport),
      vs, dest, client: p.src, protocol: p.protocol, flags: p.tcpFlags, masquerade: masq,
    }, now)
    const result = dnatResult(vs.origin.servicePort, dest.address, dest.port, masq)
    return { result, steps }
  }
}
