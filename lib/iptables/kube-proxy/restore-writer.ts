// proxier.iptablesRestore(): the text kube-proxy's iptables proxier writes at the end of a sync,
// rendered from the model in any proxy mode. A full sync rewrites every chain; a partial sync
// (KEP-3453) only the chains of the Services that sync changed, plus the top-level chains, and
// deletes (`-X`) the per-service chains the sync made unused.
import { show } from '../../util/show.js'
import type { ProxyModelView, ServiceDiff, ServicePortState } from '../../proxy/model.js'
import type { SyncListener } from '../../proxy/proxy-mode.js'
import { renderOptionsFor, renderServicePort, renderServicePorts, type Family, type IptablesExtraOptions } from './from-model.js'
import { renderRestore } from './render.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export interface IptablesRestoreRequest extends IptablesExtraOptions {
  /** kube-proxy's partial-sync text instead of the full one. */
  partial?: boolean
  /** Which family's text (kube-proxy runs one proxier per family). Default IPv4 when served. */
  ipFamily?: Family
}

interface SyncRecord {
  /** Services ("ns/name") the sync changed. */
  services: Set<string>
  /**
   * The ServicePorts each change replaced, with what replaced them. Which chains became stale
   * is worked out only when partial text is asked for, so a sync pays nothing for it.
   */
  diffs: Array<{ before: ServicePortState[]; after: ServicePortState[] }>
}

const emptyRecord = (): SyncRecord => ({ services: new Set(), diffs: [] })

/** The per-service nat chains one ServicePort's rules use (the renderer's own accounting). */
export function serviceChainsOf(model: ProxyModelView, states: readonly ServicePortState[]): Set<string> {
  const out = new Set<string>()
  for (const family of ['IPv4', 'IPv6'] as const) {
    const ports = states.filter((s) => s.info.family === family)
    if (ports.length === 0) continue
    // Chain names do not depend on comments, so the large-cluster switch does not matter here.
    for (const c of renderRestore(ports.map(renderServicePort), renderOptionsFor(model, family)).activeNatChains) out.add(c)
  }
  return out
}

const keyOf = (family: Family, chain: string) => `${family}|${chain}`

/** A sync listener: it records what each sync changed, and renders the text on request. */
export class ModelRestoreWriter implements SyncListener {
  private pending: SyncRecord = emptyRecord()
  private last: SyncRecord = emptyRecord()
  private lastStale: Set<string> | undefined

  constructor(
    private readonly model: ProxyModelView,
    private readonly defaults: IptablesExtraOptions = {},
  ) {}

  applied(diff: ServiceDiff): void {
    this.pending.services.add(diff.service)
    if (diff.removed.length === 0 && diff.changed.length === 0) return
    const before = [...diff.removed, ...diff.changed.map((c) => c.before)]
    if (before.length > 0) this.pending.diffs.push({ before, after: [...diff.added, ...diff.changed.map((c) => c.after)] })
  }

  synced(): void {
    this.last = this.pending
    this.pending = emptyRecord()
    this.lastStale = undefined
  }

  /** Per-service nat chains ("family|chain") in use before the last sync and unused after it. */
  private staleChains(): Set<string> {
    if (this.lastStale) return this.lastStale
    const stale = new Set<string>()
    for (const { before, after } of this.last.diffs) {
      const kept = serviceChainsOf(this.model, after)
      for (const s of before)
        for (const chain of serviceChainsOf(this.model, [s])) if (!kept.has(chain)) stale.add(keyOf(s.info.family, chain))
    }
    this.lastStale = stale
    return stale
  }

  /** Services changed by the last sync (what a partial sync rewrites). */
  get lastSyncServices(): ReadonlySet<string> {
    return this.last.services
  }

  render(request: IptablesRestoreRequest = {}): string {
    if (request === null || typeof request !== 'object') throw new SvcplaneTypeError(`iptablesRestore: the request must be an object, got ${show(request)}`)
    const families = this.model.node.families
    const family = request.ipFamily ?? (families.includes('IPv4') ? 'IPv4' : 'IPv6')
    if (!families.includes(family)) throw new SvcplaneRangeError(`iptablesRestore: ipFamily ${JSON.stringify(request.ipFamily)} is not served (node families: ${families.join(', ')})`)
    const extra: IptablesExtraOptions = { ...this.defaults }
    for (const k of ['nfacct', 'randomFully', 'masqueradeMark', 'conntrackTCPLiberal', 'largeClusterEndpointsThreshold'] as const) {
      if (request[k] !== undefined) (extra as Record<string, unknown>)[k] = request[k]
    }
    const prefix = `${family}|`
    const stale = [...this.staleChains()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length))
    const options = { ...renderOptionsFor(this.model, family, extra), existingNatChains: stale }
    if (request.partial === true) Object.assign(options, { changedServices: this.last.services })
    return renderRestore(renderServicePorts(this.model, family), options).text
  }
}
