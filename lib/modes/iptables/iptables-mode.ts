// The iptables proxy mode: on every sync the model is rendered into kube-proxy's rules (the
// node's built-in chain jumps plus the restore text) and loaded into the linear evaluator;
// packets go through conntrack first, as in the kernel, and only a connection's first packet
// walks the nat table. `new Proxier({ mode: 'iptables', iptables: { ... }, ... })`.
import { DEFAULT_TIMEOUTS } from '../../dataplane/dataplane.js'
import { isServiceChainName } from '../../iptables/kube-proxy/chain-names.js'
import { Conntrack, type CtFlow } from '../../iptables/netfilter/conntrack.js'
import { removeUnservedUdpFlows, trackNewFlow, trackedDecision } from '../flow-tracking.js'
import { IptablesEvaluator, type EvalResult, type RuleCounter, type RuleVisit } from '../../iptables/netfilter/evaluator.js'
import { renderOptionsFor, renderServicePorts, type Family, type IptablesExtraOptions } from '../../iptables/kube-proxy/from-model.js'
import { joinHostPort, splitHostPort } from '../../util/host-port.js'
import { seededRandom, type RandomSource } from '../../util/random.js'
import { RecentLists } from '../../iptables/netfilter/recent.js'
import { renderNodeRuleset } from '../../iptables/kube-proxy/render.js'
import { serviceChainsOf } from '../../iptables/kube-proxy/restore-writer.js'
import type { ProxyModelView, ServiceDiff } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type RouteReason, type RouteResult } from '../../proxy/packet.js'
import type { ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import type { KubeProxyTrace, SourceClass, Step } from '../../proxy/trace.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])

/** What inspect() shows in mode 'iptables': the loaded rules, evaluator, counters and conntrack. */
export interface IptablesView {
  mode: 'iptables'
  iptables: IptablesMode
}

function seedOf(seed: number | bigint | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 0x100000000)
  return typeof seed === 'bigint' ? Number(BigInt.asUintN(32, seed)) : seed >>> 0
}

function reasonOf(comment: string | undefined, trace: KubeProxyTrace): RouteReason {
  if (comment !== undefined) {
    if (comment.endsWith(' has no endpoints')) return 'no-endpoints'
    if (comment.endsWith(' has no local endpoints')) return 'no-local-endpoints'
    // KUBE-PROXY-FIREWALL drops whatever reached a firewalled LB IP without being DNATed: a
    // source outside the ranges, or an allowed one under a Local policy without local endpoints.
    if (comment.includes(' traffic not accepted by KUBE-FW-')) return trace.reason ?? 'source-range'
  }
  return trace.reason ?? 'no-endpoints'
}

/** "nat PREROUTING -> KUBE-SERVICES -> KUBE-SVC-... -> KUBE-SEP-..." from the matched rules. */
function walkText(visited: readonly RuleVisit[]): string {
  const out: string[] = []
  for (const v of visited) {
    if (!v.matched) continue
    const here = `${v.ref.table} ${v.ref.chain}`
    if (out[out.length - 1] !== here) out.push(here)
  }
  return out.join(' -> ')
}

interface Built {
  text: string
  evaluator: IptablesEvaluator
}

export class IptablesMode implements ProxyModeImpl<IptablesView> {
  readonly conntrack: Conntrack
  /** -m recent lists, kept across rule reloads as the kernel keeps them. */
  readonly recent = new RecentLists(200)
  private readonly random: RandomSource
  private readonly built = new Map<Family, Built>()
  /** Services changed since the rules were last built. */
  private readonly changed = new Set<string>()
  private dirty = true
  private visited: readonly RuleVisit[] = []
  private last: EvalResult | undefined
  /** How many times the rules were rebuilt (one per sync that changed something). */
  builds = 0

  constructor(
    private readonly model: ProxyModelView,
    options: ResolvedOptions,
    readonly extra: IptablesExtraOptions = {},
  ) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const cidrs = model.detector.podCIDRs.filter((c) => c.includes(':') === (family === 'IPv6'))
      if (cidrs.length > 1) {
        throw new SvcplaneTypeError(`Proxier options: podCIDRs has ${cidrs.length} ${family} CIDRs (${cidrs.join(', ')}); kube-proxy's iptables mode detects pod traffic by one CIDR per family`)
      }
    }
    this.conntrack = new Conntrack({ ...DEFAULT_TIMEOUTS, ...options.timeouts })
    this.random = seededRandom(seedOf(options.seed))
  }

  inspect(): IptablesView {
    return { mode: 'iptables', iptables: this }
  }

  apply(diff: ServiceDiff): { flowsRemoved: number } {
    this.changed.add(diff.service)
    this.dirty = true
    return { flowsRemoved: removeUnservedUdpFlows(this.conntrack, diff) }
  }

  synced(): void {
    if (this.dirty) this.rebuild()
  }

  /** Renders every family's ruleset and loads it; counters survive for chains a partial sync would not rewrite. */
  private rebuild(): void {
    const rewritten = this.built.size === 0 ? new Set<string>() : serviceChainsOf(this.model, [...this.changed].flatMap((s) => this.model.servicePortsOf(s)))
    for (const family of this.model.node.families) {
      const text = renderNodeRuleset(renderServicePorts(this.model, family), renderOptionsFor(this.model, family, this.extra))
      const evaluator = new IptablesEvaluator(text, {
        localAddresses: this.model.node.ips,
        random: this.random,
        recent: this.recent,
        trace: 'matched',
      })
      const old = this.built.get(family)
      if (old !== undefined) {
        evaluator.importCounters(old.evaluator, (table, chain) =>
          BUILTIN_CHAINS.has(chain) || (table === 'nat' && isServiceChainName(chain) && !rewritten.has(chain)))
      }
      this.built.set(family, { text, evaluator })
    }
    this.changed.clear()
    this.dirty = false
    this.builds++
  }

  private ensureBuilt(): void {
    if (this.built.size === 0) this.rebuild()
  }

  private familyOf(family: Family | undefined): Family {
    this.ensureBuilt()
    const f = family ?? (this.built.has('IPv4') ? 'IPv4' : 'IPv6')
    if (!this.built.has(f)) throw new SvcplaneRangeError(`iptables mode: family ${JSON.stringify(family)} is not served`)
    return f
  }

  /** The node's ruleset as last loaded (iptables-save shaped: built-in chains, jumps, kube-proxy's chains). */
  ruleset(family?: Family): string {
    return this.built.get(this.familyOf(family))!.text
  }

  /** The evaluator holding the loaded rules (its counters, chains, recent lists). */
  evaluator(family?: Family): IptablesEvaluator {
    return this.built.get(this.familyOf(family))!.evaluator
  }

  /** Rules the last routed packet matched, in order (empty when conntrack decided it). */
  get lastVisited(): readonly RuleVisit[] {
    return this.visited
  }

  /** The evaluator's full answer for the last packet that walked the rules. */
  get lastEvaluation(): EvalResult | undefined {
    return this.last
  }

  /** Per-rule packet and byte counters, like `iptables -L -v`. */
  counters(options: { all?: boolean; family?: Family } = {}): RuleCounter[] {
    return this.evaluator(options.family).counters({ all: options.all })
  }

  /** `iptables -t TABLE -L CHAIN -v`-style text. */
  listChain(table: string, chain: string, family?: Family): string {
    return this.evaluator(family).listChain(table, chain)
  }

  flows(): CtFlow[] {
    return this.conntrack.flows()
  }

  route(p: CheckedPacket, _source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision {
    const tracked = trackedDecision(this.conntrack, p, now, 'the nat table')
    if (tracked !== undefined) {
      this.visited = []
      return tracked
    }
    const family: Family = p.src.includes(':') ? 'IPv6' : 'IPv4'
    this.ensureBuilt()
    const built = this.built.get(family)
    if (built === undefined) {
      this.visited = []
      return { result: { action: 'accept' }, steps: [{ kind: 'verdict', text: `${family} is not served: no rules` }] }
    }
    const r = built.evaluator.evaluate({ src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, hook: p.hook, now })
    this.visited = r.visited
    this.last = r
    const steps: Step[] = []
    const walk = walkText(r.visited)
    let result: RouteResult
    if (r.action === 'dnat') {
      const servicePort = r.servicePort ?? trace.state?.info.name ?? ''
      const { address, port } = splitHostPort(r.endpoint!)!
      const endpoint = joinHostPort(address, port)
      trackNewFlow(this.conntrack, p, now, trace, { servicePort, address, port, masquerade: r.masquerade })
      steps.push({ kind: 'endpoint', text: `new flow: the rules chose ${endpoint} (${walk})` })
      if (r.masquerade) steps.push({ kind: 'masquerade', text: 'KUBE-MARK-MASQ set the mark: KUBE-POSTROUTING masquerades' })
      result = dnatResult(servicePort, address, port, r.masquerade)
    } else if (r.action === 'reject' || r.action === 'drop') {
      const reason = reasonOf(r.reason, trace)
      steps.push({ kind: 'verdict', text: `${r.action.toUpperCase()} by "${r.reason}" (${walk})` })
      result = { action: r.action, servicePort: r.servicePort ?? trace.state?.info.name ?? '', reason }
    } else {
      result = { action: 'accept' }
    }
    return { result, steps }
  }
}
