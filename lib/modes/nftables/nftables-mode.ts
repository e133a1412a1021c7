// The nftables proxy mode: every sync() runs kube-proxy's nftables proxier per family (a full
// first transaction, partial ones after) against the table it keeps; packets go through
// conntrack first, as in the kernel, and a connection's first packet walks the table in the
// nft evaluator (lib/nftables/nft), loaded from the table as the syncs left it.
// `new Proxier({ mode: 'nftables', nftables: { ... }, serviceCIDRs, nodePortAddresses, ... })`.
import { DEFAULT_TIMEOUTS } from '../../dataplane/dataplane.js'
import { formatMasqueradeMark } from '../../iptables/kube-proxy/render.js'
import { Conntrack, type CtFlow } from '../../iptables/netfilter/conntrack.js'
import { removeUnservedUdpFlows, trackNewFlow, trackedDecision } from '../flow-tracking.js'
import { nftConfigFor, type Family } from '../../nftables/kube-proxy/from-model.js'
import { servicePortFromNftChain } from '../../nftables/nft/kube-proxy-names.js'
import { NftEvaluator, type NftEvalResult, type NftTraceEntry } from '../../nftables/nft/evaluator.js'
import { ruleText } from '../../nftables/nft/serialize.js'
import { NftProxierSync, type NftSyncResult } from '../../nftables/kube-proxy/proxier-sync.js'
import type { ProxyModelView, ServiceDiff } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type RouteReason, type RouteResult } from '../../proxy/packet.js'
import type { ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import type { KubeProxyTrace, SourceClass, Step } from '../../proxy/trace.js'
import { joinHostPort, splitHostPort } from '../../util/host-port.js'
import { seededRandom, type RandomSource } from '../../util/random.js'
import type { NftablesSettings } from './nftables-options.js'

export interface NftablesView {
  mode: 'nftables'
  nftables: NftablesMode
}

interface FamilyState {
  sync: NftProxierSync
  last: NftSyncResult | undefined
  /** The evaluator loaded from the table at `version` (rebuilt when a packet finds the table changed). */
  evaluator: NftEvaluator | undefined
  version: number
}

function seedOf(seed: number | bigint | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 0x100000000)
  return typeof seed === 'bigint' ? Number(BigInt.asUintN(32, seed)) : seed >>> 0
}

const ruleEntries = (r: NftEvalResult): NftTraceEntry[] => r.visited.filter((v) => v.kind === 'rule')

/** Why the table refused a packet: the chain whose rule or map element said so. */
function refusal(r: NftEvalResult): { servicePort: string; reason: RouteReason } {
  const entries = ruleEntries(r)
  const last = entries[entries.length - 1]
  const named = [...entries].reverse().map((v) => servicePortFromNftChain(v.chain)).find((n) => n !== undefined)
  const servicePort = r.servicePort ?? named ?? ''
  if (last === undefined) return { servicePort, reason: 'no-endpoints' }
  if (last.chain === 'reject-chain') return { servicePort, reason: 'no-endpoints' }
  if (last.chain === 'service-endpoints-check' || last.chain === 'nodeport-endpoints-check') return { servicePort, reason: 'no-local-endpoints' }
  if (last.chain.startsWith('firewall-')) return { servicePort, reason: 'source-range' }
  if (last.chain === 'cluster-ips-check') return { servicePort: '', reason: r.action === 'reject' ? 'invalid-port' : 'unallocated-cluster-ip' }
  return { servicePort, reason: 'no-endpoints' }
}

/** "nat-prerouting -> services -> service-... -> endpoint-..." from the rules that matched. */
function walkText(r: NftEvalResult): string {
  const out: string[] = []
  for (const v of ruleEntries(r)) if (out[out.length - 1] !== v.chain) out.push(v.chain)
  return out.join(' -> ')
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
      this.families.set(family, { sync, last: undefined, evaluator: undefined, version: -1 })
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
    if (f === undefined) throw new RangeError(`nftables mode: family ${JSON.stringify(family)} is not served`)
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

  /** The evaluator holding a family's table as it stands (its counters, sets, trace). */
  evaluator(family?: Family, now = this.clock()): NftEvaluator {
    return this.loaded(this.family(family), now)
  }

  private loaded(f: FamilyState, now: number): NftEvaluator {
    if (f.evaluator === undefined || f.version !== f.sync.table.version) {
      const next = new NftEvaluator(f.sync.table.dump(), { localAddresses: this.model.node.ips, random: this.random, now })
      // The kernel keeps what the data path wrote into the affinity sets across transactions.
      if (f.evaluator !== undefined) next.adoptDynamicState(f.evaluator, now)
      f.evaluator = next
      f.version = f.sync.table.version
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
    const r = this.loaded(f, now).evaluate({ src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol.toLowerCase(), hook: p.hook, now })
    const walk = walkText(r)
    const steps: Step[] = []
    let result: RouteResult
    if (r.action === 'dnat') {
      const named = [...ruleEntries(r)].reverse().map((v) => servicePortFromNftChain(v.chain)).find((n) => n !== undefined)
      const servicePort = r.servicePort ?? named ?? trace.state?.info.name ?? ''
      const { address, port } = splitHostPort(r.endpoint!)!
      const endpoint = joinHostPort(address, port)
      trackNewFlow(this.conntrack, p, now, trace, { servicePort, address, port, masquerade: r.masquerade })
      steps.push({ kind: 'endpoint', text: `new flow: the ruleset chose ${endpoint} (${walk})` })
      if (r.masquerade) steps.push({ kind: 'masquerade', text: 'mark-for-masquerade set the mark: masquerading masquerades in nat-postrouting' })
      result = dnatResult(servicePort, address, port, r.masquerade)
    } else if (r.action === 'drop' || r.action === 'reject') {
      const { servicePort, reason } = refusal(r)
      const entries = ruleEntries(r)
      const last = entries[entries.length - 1]
      const by = last?.rule !== undefined ? `"${ruleText(last.rule.rule)}" in ${last.chain}` : 'policy'
      steps.push({ kind: 'verdict', text: `${r.action.toUpperCase()} by ${by}${r.reason !== undefined ? ` (${r.reason})` : ''} (${walk})` })
      result = { action: r.action, servicePort, reason }
    } else {
      result = { action: 'accept' }
    }
    return { result, steps }
  }
}
