// The nftables proxy mode: every sync() runs kube-proxy's nftables proxier per family (a full
// first transaction, partial ones after) against the table it keeps; packets go through
// conntrack first, as in the kernel, and a connection's first packet goes through the general
// nft evaluator (lib/nftables/nft), which replays every transaction the table applied (at the
// transaction's cost, when it is next used), so it always holds the table as it stands.
// `new Proxier({ mode: 'nftables', nftables: { ... }, serviceCIDRs, nodePortAddresses, ... })`.
import { DEFAULT_TIMEOUTS } from '../../dataplane/dataplane.js'
import { formatMasqueradeMark } from '../../iptables/kube-proxy/render.js'
import { Conntrack, type CtFlow } from '../../iptables/netfilter/conntrack.js'
import { removeUnservedUdpFlows, trackNewFlow, trackedDecision } from '../flow-tracking.js'
import { nftConfigFor, type Family } from '../../nftables/kube-proxy/from-model.js'
import { operationText, type NftOperation } from '../../nftables/kube-proxy/objects.js'
import { NftProxierSync, type NftSyncResult } from '../../nftables/kube-proxy/proxier-sync.js'
import { NftEvaluator, type NftEvalResult, type NftEvaluatorOptions, type NftTraceEntry } from '../../nftables/nft/evaluator.js'
import { servicePortFromNftChain } from '../../nftables/nft/kube-proxy-names.js'
import { parseNftCommands } from '../../nftables/nft/parser.js'
import { statementText } from '../../nftables/nft/serialize.js'
import type { NftCommand } from '../../nftables/nft/types.js'
import type { ProxyModelView, ServiceDiff } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type RouteReason, type RouteResult } from '../../proxy/packet.js'
import type { ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import type { KubeProxyTrace, SourceClass, Step } from '../../proxy/trace.js'
import { joinHostPort, splitHostPort } from '../../util/host-port.js'
import { seededRandom, type RandomSource } from '../../util/random.js'
import type { NftablesSettings } from './nftables-options.js'
import { SvcplaneRangeError } from '../../errors.js'

export interface NftablesView {
  mode: 'nftables'
  nftables: NftablesMode
}

interface FamilyState {
  sync: NftProxierSync
  last: NftSyncResult | undefined
  /** What route() walks: the nft evaluator, following the table transaction by transaction. */
  evaluator: NftEvaluator
  /** Transactions the table applied that the evaluator has not replayed yet. */
  pending: (readonly NftOperation[])[]
  /** Too many went unreplayed (nothing used the evaluator): it loads the table whole next time. */
  reload: boolean
}

/** Unreplayed transactions kept at most; past this the evaluator reloads instead (memory stays bounded without route() calls). */
const MAX_PENDING = 64

function seedOf(seed: number | bigint | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 0x100000000)
  return typeof seed === 'bigint' ? Number(BigInt.asUintN(32, seed)) : seed >>> 0
}

/** Why the table refused a packet: the element or rule that said so (`matched`: the rules that matched, in order). */
function refusal(r: NftEvalResult, matched: NftTraceEntry[]): { servicePort: string; reason: RouteReason } {
  const last = matched[matched.length - 1]
  const named = [...matched].reverse().find((v) => servicePortFromNftChain(v.chain) !== undefined)
  const fromChain = named !== undefined ? servicePortFromNftChain(named.chain)! : ''
  if (last === undefined) return { servicePort: '', reason: 'no-endpoints' }
  if (last.chain === 'reject-chain' || last.chain === 'service-endpoints-check' || last.chain === 'nodeport-endpoints-check') {
    // the no-endpoint map element's comment names the service port
    return { servicePort: r.servicePort ?? fromChain, reason: r.action === 'reject' ? 'no-endpoints' : 'no-local-endpoints' }
  }
  if (last.chain.startsWith('firewall-')) return { servicePort: fromChain, reason: 'source-range' }
  if (last.chain === 'cluster-ips-check') {
    return { servicePort: '', reason: r.action === 'reject' ? 'invalid-port' : 'unallocated-cluster-ip' }
  }
  return { servicePort: fromChain, reason: 'no-endpoints' }
}

/** "services -> service-... -> endpoint-..." from the rules that matched. */
function walkText(matched: NftTraceEntry[]): string {
  const out: string[] = []
  for (const v of matched) if (out[out.length - 1] !== v.chain) out.push(v.chain)
  return out.join(' -> ')
}

/** A transaction of the table as the evaluator's commands, one per operation (line i + 1). */
function commandsOf(ops: readonly NftOperation[], family: 'ip' | 'ip6', table: string): NftCommand[] {
  return ops.map((op, i) => ({ ...parseNftCommands(operationText(op, family, table))[0]!, line: i + 1 }))
}

export class NftablesMode implements ProxyModeImpl<NftablesView> {
  readonly conntrack: Conntrack
  private readonly random: RandomSource
  private readonly families = new Map<Family, FamilyState>()
  /** Services ("ns/name") changed since the last sync. */
  private readonly changed = new Set<string>()
  private readonly clock: () => number
  /** The error of the last sync's transaction, if the table refused it (the next sync is a full one). */
  lastSyncError: Error | undefined

  constructor(
    private readonly model: ProxyModelView,
    options: ResolvedOptions,
    settings: NftablesSettings = {},
  ) {
    this.conntrack = new Conntrack({ ...DEFAULT_TIMEOUTS, ...options.timeouts })
    this.random = seededRandom(seedOf(options.seed))
    this.clock = options.clock
    const masqueradeMark = settings.masqueradeMark ?? formatMasqueradeMark(settings.masqueradeBit ?? model.options.masqueradeBit)
    for (const family of model.node.families) {
      const sync = new NftProxierSync(nftConfigFor(model, family, { serviceCIDRs: options.serviceCIDRs, nodePortAddresses: options.nodePortAddresses, masqueradeMark }))
      const f: FamilyState = { sync, last: undefined, evaluator: new NftEvaluator('', this.evaluatorOptions()), pending: [], reload: false }
      sync.table.onApplied = (ops) => {
        if (f.reload) return
        f.pending.push(ops)
        if (f.pending.length > MAX_PENDING) {
          f.pending.length = 0
          f.reload = true
        }
      }
      this.families.set(family, f)
    }
  }

  inspect(): NftablesView {
    return { mode: 'nftables', nftables: this }
  }

  apply(diff: ServiceDiff): { flowsRemoved: number } {
    this.changed.add(diff.service)
    return { flowsRemoved: removeUnservedUdpFlows(this.conntrack, diff) }
  }

  synced(): void {
    const now = this.clock()
    const all = this.model.servicePorts()
    this.lastSyncError = undefined
    for (const [family, f] of this.families) {
      try {
        f.last = f.sync.sync(all.filter((s) => s.info.family === family), this.changed, now)
      } catch (error) {
        this.lastSyncError = error as Error
      }
    }
    this.changed.clear()
  }

  private family(family: Family | undefined): FamilyState {
    const f = this.families.get(family ?? (this.families.has('IPv4') ? 'IPv4' : 'IPv6'))
    if (f === undefined) throw new SvcplaneRangeError(`nftables mode: family ${JSON.stringify(family)} is not served`)
    return f
  }

  private familiesOf(family: Family | undefined): FamilyState[] {
    return family === undefined ? [...this.families.values()] : [this.family(family)]
  }

  /** The kube-proxy table(s) as they stand, in knftables' dump form (`add ...` lines); every family's without `family`. */
  ruleset(family?: Family): string {
    return this.familiesOf(family).map((f) => f.sync.table.dump()).join('')
  }

  /** What the last sync sent to nft, one operation a line (the stale-chain deletion, if any, is lastSync().staleChainDeletion). */
  transaction(family?: Family): string {
    return this.familiesOf(family).map((f) => f.last?.transaction.text() ?? '').join('')
  }

  /** The last sync's transactions of a family, with their operation counts. */
  lastSync(family?: Family): NftSyncResult | undefined {
    return this.family(family).last
  }

  /** The proxier of a family (its table, stale chains). */
  proxier(family?: Family): NftProxierSync {
    return this.family(family).sync
  }

  private evaluatorOptions(): NftEvaluatorOptions {
    return { localAddresses: this.model.node.ips, random: this.random }
  }

  /**
   * The general nft evaluator (lib/nftables/nft) over a family's table as it stands, the one
   * route() uses: counters, nft-monitor-style traces, `nft list ruleset` output. It replays the
   * transactions the table applied since it was last used, one by one.
   */
  evaluator(family?: Family): NftEvaluator {
    return this.followed(this.family(family))
  }

  private followed(f: FamilyState): NftEvaluator {
    const { family, name } = f.sync.table
    while (f.pending.length > 0 && !f.reload) {
      try {
        f.evaluator.apply(commandsOf(f.pending.shift()!, family, name))
      } catch {
        // The table took this transaction, so the evaluator should have: load the table whole instead.
        f.reload = true
      }
    }
    if (f.reload) {
      const fresh = new NftEvaluator(f.sync.table.dump(), this.evaluatorOptions())
      fresh.adoptDynamicState(f.evaluator, this.clock())
      f.evaluator = fresh
      f.pending.length = 0
      f.reload = false
    }
    return f.evaluator
  }

  flows(): CtFlow[] {
    return this.conntrack.flows()
  }

  route(p: CheckedPacket, _source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision {
    const tracked = trackedDecision(this.conntrack, p, now, 'nat chains')
    if (tracked !== undefined) return tracked
    const family: Family = p.src.includes(':') ? 'IPv6' : 'IPv4'
    const f = this.families.get(family)
    if (f === undefined || !f.sync.table.present) {
      return { result: { action: 'accept' }, steps: [{ kind: 'verdict', text: `${family}: no kube-proxy table (not served, or not synced yet)` }] }
    }
    const r = this.followed(f).evaluate({ src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, hook: p.hook, now })
    const matched = r.visited.filter((v) => v.kind === 'rule')
    const walk = walkText(matched)
    const steps: Step[] = []
    let result: RouteResult
    if (r.action === 'dnat' && r.endpoint !== undefined) {
      const chain = [...matched].reverse().find((v) => servicePortFromNftChain(v.chain) !== undefined)?.chain
      const servicePort = (chain !== undefined ? servicePortFromNftChain(chain) : undefined) ?? trace.state?.info.name ?? ''
      const { address, port } = splitHostPort(r.endpoint)!
      const endpoint = joinHostPort(address, port)
      trackNewFlow(this.conntrack, p, now, trace, { servicePort, address, port, masquerade: r.masquerade })
      steps.push({ kind: 'endpoint', text: `new flow: the ruleset chose ${endpoint} (${walk})` })
      if (r.masquerade) steps.push({ kind: 'masquerade', text: 'mark-for-masquerade set the mark: masquerading masquerades in nat-postrouting' })
      result = dnatResult(servicePort, address, port, r.masquerade)
    } else if (r.action === 'drop' || r.action === 'reject') {
      const { servicePort, reason } = refusal(r, matched)
      const rule = matched[matched.length - 1]?.rule?.rule
      const comment = rule?.comment ?? r.servicePort
      steps.push({ kind: 'verdict', text: `${r.action.toUpperCase()} by "${rule?.statements.map(statementText).join(' ') ?? ''}"${comment !== undefined ? ` (${comment})` : ''} (${walk})` })
      result = { action: r.action, servicePort, reason }
    } else {
      result = { action: 'accept' }
    }
    return { result, steps }
  }
}
