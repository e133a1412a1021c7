// The Proxier's mode-agnostic core: kube-proxy for one node. Services and EndpointSlices go in
// (validated on the way), sync() applies what changed since the last sync, route() and
// explain() decide packets through the mode it is handed (lib/modes picks and builds it).
import { performance } from 'node:perf_hooks'
import { parseEndpointSlice, type ValidEndpointSlice } from '../k8s/endpointslice.js'
import { parseObjects, type LoadNotice } from '../k8s/load.js'
import { notProxiedReason } from '../k8s/not-proxied.js'
import { objectKey } from '../k8s/object-key.js'
import { conflictMessage } from '../k8s/address-conflicts.js'
import { parseService, type ValidService } from '../k8s/service.js'
import { errorCode, SvcplaneError, SvcplaneRangeError } from '../errors.js'
import { ChangeTracker } from './change-tracker.js'
import { explanation, type Explanation } from './explain.js'
import { healthChecks, type HealthCheck } from './health.js'
import { isEmptyDiff, ProxyModel, type ProxyModelView, type ServiceDiff } from './model.js'
import type { ResolvedOptions } from './options.js'
import { checkPacket, type Packet, type RouteResult } from './packet.js'
import type { ApplyOutcome, ProxyModeFactory, ProxyModeImpl, SyncListener } from './proxy-mode.js'
import { classifySource, traceKubeProxy, type Step } from './trace.js'

export interface ChangeCounts {
  added: number
  changed: number
  removed: number
}

export interface SyncSummary {
  servicePorts: ChangeCounts
  endpoints: ChangeCounts
  durationMs: number
  /** Conntrack flows removed by the UDP reconciler. */
  flowsRemoved: number
  /** Services whose programming failed; their previous state stays and they are retried next sync. */
  errors: { service: string; error: Error }[]
}

export interface ApplyListResult {
  services: number
  endpointSlices: number
  /** Items of other kinds. */
  skipped: number
  /** v1 Endpoints read as EndpointSlices, objects kube-proxy skips (another proxy's, headless): one line each. */
  notices: LoadNotice[]
}

/**
 * A mode's refusal of two Services on one address and port names its own ids; say it with the
 * Services' names and the address instead, as the user wrote them.
 */
function withServiceNames(service: string, error: Error, services: ReadonlyMap<string, ValidService>): Error {
  if (errorCode(error) !== 'CONFLICT') return error
  const named = conflictMessage(service, [...services.values()])
  if (named === undefined) return error
  return error instanceof RangeError ? new SvcplaneRangeError(`${service}: ${named}`, 'CONFLICT') : new SvcplaneError('CONFLICT', `${service}: ${named}`, { cause: error })
}

export class ProxierCore<View = unknown> {
  readonly options: ResolvedOptions
  private readonly model: ProxyModel
  private readonly tracker = new ChangeTracker()
  private readonly mode: ProxyModeImpl<View>
  private readonly listeners: SyncListener[] = []
  /** Services to recompute at the next sync even without a new change (their last programming failed). */
  private readonly retry = new Set<string>()

  constructor(options: ResolvedOptions, createMode: ProxyModeFactory<View>) {
    this.options = options
    this.model = new ProxyModel(this.options)
    this.mode = createMode(this.model)
  }

  /** The model every proxy mode renders (read-only). */
  get state(): ProxyModelView {
    return this.model
  }

  /** The mode's own state (maps, rulesets, evaluator, counters), typed per mode. */
  inspect(): View {
    return this.mode.inspect()
  }

  /** Tells `listener` of every Service change each sync commits, and of each sync's end. */
  addSyncListener(listener: SyncListener): void {
    this.listeners.push(listener)
  }

  /**
   * Records a Service (added or updated) for the next sync; throws if it is malformed, recording
   * nothing. A Service labelled for another proxy (service.kubernetes.io/service-proxy-name) or
   * headless is one kube-proxy's informer never delivers: it counts as deleted, as when a label
   * moves a Service out of kube-proxy's selector.
   */
  applyService(service: unknown): void {
    const svc = parseService(service)
    this.tracker.serviceChanged(svc.key, notProxiedReason(service) === undefined ? svc : null)
  }

  deleteService(service: unknown): void {
    this.tracker.serviceChanged(objectKey('Service', service).key, null)
  }

  applyEndpointSlice(slice: unknown): void {
    const s = parseEndpointSlice(slice)
    this.tracker.sliceChanged(s.key, s)
  }

  deleteEndpointSlice(slice: unknown): void {
    this.tracker.sliceChanged(objectKey('EndpointSlice', slice).key, null)
  }

  /**
   * Records every Service and EndpointSlice of a List (kubectl `-o json`, an array, a single
   * object or JSON text). All or nothing: one malformed object refuses the whole input.
   */
  applyList(input: unknown): ApplyListResult {
    const parsed = parseObjects(input)
    for (const svc of parsed.services) this.tracker.serviceChanged(svc.key, svc)
    for (const slice of parsed.endpointSlices) this.tracker.sliceChanged(slice.key, slice)
    return { services: parsed.services.length, endpointSlices: parsed.endpointSlices.length, skipped: parsed.skipped, notices: parsed.notices }
  }

  /** Changes recorded and not yet synced. */
  get pendingChanges(): number {
    return this.tracker.pending
  }

  /** Applies what changed since the last sync; the cost grows with the changed Services only. */
  sync(): SyncSummary {
    const started = performance.now()
    const summary: SyncSummary = {
      servicePorts: { added: 0, changed: 0, removed: 0 },
      endpoints: { added: 0, changed: 0, removed: 0 },
      durationMs: 0,
      flowsRemoved: 0,
      errors: [],
    }
    const { services, slices } = this.tracker.drain()
    // Services that failed last time go last, so this sync's removals make room for them first.
    const retry = [...this.retry]
    this.retry.clear()
    const dirty = new Set<string>()
    for (const [key, slice] of slices) {
      const touched = slice === null ? this.model.slices.remove(key) : this.model.slices.set(slice as ValidEndpointSlice)
      for (const s of touched) dirty.add(s)
    }
    for (const [key, svc] of services) {
      if (svc === null) this.model.services.delete(key)
      else this.model.services.set(key, svc as ValidService)
      dirty.add(key)
    }
    for (const service of retry) dirty.add(service)
    const diffs: ServiceDiff[] = []
    for (const service of dirty) {
      const diff = this.model.diffService(service)
      if (!isEmptyDiff(diff)) diffs.push(diff)
    }
    // A mode that programs a whole sync at once (native: one call into the dataplane) gets
    // every diff before any is committed: diffs of different Services are independent.
    const outcomes = this.mode.applyAll?.(diffs)
    for (let i = 0; i < diffs.length; i++) {
      const diff = diffs[i]
      const outcome = outcomes?.[i] ?? this.applyOne(diff)
      if (outcome.error !== undefined) {
        summary.errors.push({ service: diff.service, error: withServiceNames(diff.service, outcome.error, this.model.services) })
        this.retry.add(diff.service)
        continue
      }
      summary.flowsRemoved += outcome.flowsRemoved
      this.model.commit(diff)
      for (const l of this.listeners) l.applied(diff)
      summary.servicePorts.added += diff.added.length
      summary.servicePorts.changed += diff.changed.length
      summary.servicePorts.removed += diff.removed.length
      summary.endpoints.added += diff.endpoints.added
      summary.endpoints.changed += diff.endpoints.changed
      summary.endpoints.removed += diff.endpoints.removed
    }
    this.mode.synced?.()
    for (const l of this.listeners) l.synced()
    summary.durationMs = performance.now() - started
    return summary
  }

  private applyOne(diff: ServiceDiff): ApplyOutcome {
    try {
      return this.mode.apply(diff)
    } catch (error) {
      return { error: error as Error }
    }
  }

  private decide(packet: Packet, withSteps: boolean): { result: RouteResult; steps: Step[] } {
    const p = checkPacket(packet)
    const source = classifySource(this.model, p)
    const trace = traceKubeProxy(this.model, p, source)
    const d = this.mode.route(p, source, trace, p.now ?? this.options.clock())
    return { result: d.result, steps: withSteps ? [...trace.steps, ...d.steps] : [] }
  }

  /** What happens to a packet: DNAT to an endpoint, REJECT/DROP with a reason, or ACCEPT (not service traffic). */
  route(packet: Packet): RouteResult {
    return this.decide(packet, false).result
  }

  /**
   * route() with the steps that led to the decision. It is a real decision: a new flow is
   * tracked (and affinity recorded) exactly as route() would.
   */
  explain(packet: Packet): Explanation {
    const d = this.decide(packet, true)
    return explanation(d.result, d.steps)
  }

  /** kube-proxy's health check node ports with their local ready endpoint counts. */
  healthChecks(): HealthCheck[] {
    return healthChecks(this.model)
  }
}
