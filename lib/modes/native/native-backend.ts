// Native mode: renders the model into the Dataplane the way Cilium does. Each ServicePort gets
// up to two dataplane services, one per endpoint set: "cluster" and "local". Frontends are
// scoped: `internal` lookups (pod or node sources) try internal frontends first, so the
// short-circuit of externalTrafficPolicy Local is an internal-scope copy of the external
// frontends on the cluster set. Every listed endpoint is a backend (active when in the set,
// terminating otherwise) so established flows keep it while the slices still list it.
import type { Dataplane } from '../../dataplane/dataplane.js'
import type { UpdateBatch } from '../../dataplane/update-batch.js'
import type { BackendSpec, FrontendSpec, ServiceSpec, SchedulerName } from '../../dataplane/types.js'
import type { EndpointInfo } from '../../proxy/endpoints.js'
import type { Frontend } from '../../proxy/frontends.js'
import type { ServiceDiff, ServicePortState } from '../../proxy/model.js'
import type { ApplyOutcome } from '../../proxy/proxy-mode.js'
import type { EndpointSetName } from '../../proxy/traffic-plan.js'

export interface DesiredDataplaneService {
  role: EndpointSetName
  frontends: FrontendSpec[]
  /** Endpoints taking new flows. */
  active: EndpointInfo[]
  emptyVerdict: 'reject' | 'drop'
  sourceRanges: string[]
}

function frontendSpec(f: Frontend, scope: 'internal' | 'external', masquerade: FrontendSpec['masquerade'], firewall: boolean): FrontendSpec {
  return { address: f.address, port: f.port, protocol: f.protocol, scope, checkSourceRanges: firewall && f.kind === 'loadBalancer', masquerade }
}

/** The dataplane services a ServicePort needs (pure; exported for tests and dumps). */
export function desiredDataplaneServices(s: ServicePortState): DesiredDataplaneService[] {
  const { info, plan, categorized } = s
  const firewall = plan.usesFirewall
  // s.frontends lists the cluster IP first, then the external frontends (frontendsOf).
  // Masquerade for the packet path, decided in the dataplane per packet as kube-proxy's rules
  // would: cluster IPs from outside the pod CIDRs (all with masqueradeAll), external traffic
  // under Cluster policy, node traffic short-circuited under Local policy; hairpin always.
  if (!plan.hasEndpoints) {
    const frontends = new Array<FrontendSpec>(s.frontends.length)
    let n = 0
    for (const f of s.frontends) if (f.kind === 'clusterIP') frontends[n++] = frontendSpec(f, 'internal', 'never', firewall)
    for (const f of s.frontends) if (f.kind !== 'clusterIP') frontends[n++] = frontendSpec(f, 'external', 'never', firewall)
    return [{ role: 'cluster', frontends, active: [], emptyVerdict: 'reject', sourceRanges: [] }]
  }
  // Arrays sized once (a pushed-to empty array grows to 17 slots): a full sync builds these per ServicePort.
  let clusterIPs = 0
  for (const f of s.frontends) if (f.kind === 'clusterIP') clusterIPs++
  const external = s.frontends.length - clusterIPs
  const cluster = new Array<FrontendSpec>((info.internalPolicyLocal ? 0 : clusterIPs) + external)
  const local = new Array<FrontendSpec>((info.internalPolicyLocal ? clusterIPs : 0) + (info.externalPolicyLocal ? external : 0))
  let c = 0
  let l = 0
  for (const f of s.frontends) {
    if (f.kind !== 'clusterIP') continue
    const spec = frontendSpec(f, 'internal', 'outside-pod-cidrs', firewall)
    if (info.internalPolicyLocal) local[l++] = spec
    else cluster[c++] = spec
  }
  for (const f of s.frontends) {
    if (f.kind === 'clusterIP') continue
    if (info.externalPolicyLocal) {
      local[l++] = frontendSpec(f, 'external', 'never', firewall)
      cluster[c++] = frontendSpec(f, 'internal', 'from-node', firewall)
    } else {
      cluster[c++] = frontendSpec(f, 'external', 'always', firewall)
    }
  }
  const clusterSet: DesiredDataplaneService = { role: 'cluster', frontends: cluster, active: categorized.cluster, emptyVerdict: 'reject', sourceRanges: plan.firewallAllows }
  const localSet: DesiredDataplaneService = { role: 'local', frontends: local, active: categorized.local, emptyVerdict: 'drop', sourceRanges: plan.firewallAllows }
  if (local.length === 0) return cluster.length === 0 ? [] : [clusterSet]
  return cluster.length === 0 ? [localSet] : [clusterSet, localSet]
}

/**
 * program()'s undo log: flat records of UNDO_SLOTS values (kind, then up to three operands),
 * not closures, as a full sync logs tens of thousands of them.
 *   NewService (key, role, id): a dataplane service id taken for a ServicePort's role, with
 *     every backend id taken for it (the undo frees those too).
 *   NewBackend (backends map, endpoint, id): a backend id taken for an endpoint of a service
 *     that existed before.
 *   Backend (old spec): a backend upserted over `old`.
 *   Service (id, old spec or undefined when new): a service upserted.
 */
enum Undo {
  NewService,
  NewBackend,
  Backend,
  Service,
}
const UNDO_SLOTS = 4

const ROLES: readonly EndpointSetName[] = ['cluster', 'local']

/** The outcome of a Service whose programming removed nothing (shared: never mutated). */
const NOTHING_REMOVED: ApplyOutcome = Object.freeze({ flowsRemoved: 0 })

function runCleanup(cleanup: (() => number)[]): number {
  let flowsRemoved = 0
  for (const c of cleanup) flowsRemoved += c()
  return flowsRemoved
}

/** Ids from 1 up, reusing freed ones. */
class IdPool {
  private next = 1
  private readonly free: number[] = []
  take(): number {
    return this.free.pop() ?? this.next++
  }
  give(id: number): void {
    this.free.push(id)
  }
}

/** Values by id: the ids come from an IdPool (dense from 1), so an array beats a Map's hashing. */
class IdTable<T> {
  private readonly values: (T | undefined)[] = []
  get(id: number): T | undefined {
    return this.values[id]
  }
  set(id: number, value: T): void {
    this.values[id] = value
  }
  delete(id: number): void {
    this.values[id] = undefined
  }
}

/** Dataplane service ids by ServicePort key and role (no "key|role" strings built per lookup). */
class ServiceIds {
  private readonly ids = new Map<string, { cluster: number | undefined; local: number | undefined }>()
  has(key: string): boolean {
    return this.ids.has(key)
  }
  get(key: string, role: EndpointSetName): number | undefined {
    return this.ids.get(key)?.[role]
  }
  set(key: string, role: EndpointSetName, id: number): void {
    const entry = this.ids.get(key)
    if (entry === undefined) this.ids.set(key, role === 'cluster' ? { cluster: id, local: undefined } : { cluster: undefined, local: id })
    else entry[role] = id
  }
  delete(key: string, role: EndpointSetName): void {
    const entry = this.ids.get(key)
    if (entry === undefined) return
    entry[role] = undefined
    if (entry.cluster === undefined && entry.local === undefined) this.ids.delete(key)
  }
}

/** Where program() sends upserts (and its undo, the deletes of what it created). */
type UpdateSink = Pick<Dataplane, 'upsertBackend' | 'upsertService' | 'deleteBackend' | 'deleteService'>

/**
 * A whole sync's upserts, encoded as they are made into the Dataplane's batch (beginBatch), for
 * one sendBatch call. Deletes come only from undo, after the batch was refused as a whole:
 * nothing of it reached the dataplane then.
 */
class BatchSink implements UpdateSink {
  constructor(private readonly batch: Pick<UpdateBatch, 'addBackend' | 'addService'>) {}
  upsertBackend(spec: BackendSpec): void {
    this.batch.addBackend(spec)
  }
  upsertService(spec: ServiceSpec): void {
    this.batch.addService(spec)
  }
  deleteBackend(): void {}
  deleteService(): void {}
}

export interface DataplaneServiceRef {
  servicePort: string
  role: EndpointSetName
}

export class NativeBackend {
  private readonly serviceIds = new IdPool()
  private readonly backendIds = new IdPool()
  /** "spKey|role" -> dataplane service id */
  /** ServicePort key -> role -> dataplane service id */
  private readonly serviceIdOf = new ServiceIds()
  private readonly refOf = new IdTable<DataplaneServiceRef>()
  /** dataplane service id -> endpoint string -> backend id */
  private readonly backendsOf = new IdTable<Map<string, number>>()
  private readonly specOf = new IdTable<ServiceSpec>()
  private readonly backendSpecOf = new IdTable<BackendSpec>()

  constructor(
    readonly dataplane: Dataplane,
    private readonly scheduler: SchedulerName,
  ) {}

  /** Which ServicePort and endpoint set a dataplane service id renders. */
  ref(serviceId: number): DataplaneServiceRef | undefined {
    return this.refOf.get(serviceId)
  }

  /** Programs one Service's changes; on failure the previous programming is restored and the error rethrown. */
  apply(diff: ServiceDiff): { flowsRemoved: number } {
    const undo: unknown[] = []
    const cleanup: (() => number)[] = []
    try {
      this.stage(diff, this.dataplane, undo, cleanup)
    } catch (err) {
      this.undo(undo, this.dataplane)
      throw err
    }
    return { flowsRemoved: runCleanup(cleanup) }
  }

  /**
   * Programs many Services' changes with one dataplane call (their backends, then their
   * services), all or nothing: when anything is refused, nothing changed (the dataplane and
   * this bookkeeping alike) and the result is undefined, for the caller to retry one by one.
   * Removals follow the batch, as apply() runs them after its upserts.
   */
  applyAll(diffs: readonly ServiceDiff[]): ApplyOutcome[] | undefined {
    const sink = new BatchSink(this.dataplane.beginBatch())
    const undo: unknown[] = []
    // Every diff's cleanups in one list, diff i's from starts[i] (most diffs of a full sync have none).
    const cleanup: (() => number)[] = []
    const starts = new Array<number>(diffs.length)
    try {
      for (let i = 0; i < diffs.length; i++) {
        starts[i] = cleanup.length
        this.stage(diffs[i], sink, undo, cleanup)
      }
      this.dataplane.sendBatch()
    } catch {
      this.undo(undo, sink)
      return undefined
    }
    const outcomes = new Array<ApplyOutcome>(diffs.length)
    for (let i = 0; i < diffs.length; i++) {
      const end = i + 1 < diffs.length ? starts[i + 1] : cleanup.length
      if (end === starts[i]) {
        outcomes[i] = NOTHING_REMOVED
        continue
      }
      try {
        let flowsRemoved = 0
        for (let k = starts[i]; k < end; k++) flowsRemoved += cleanup[k]()
        outcomes[i] = { flowsRemoved }
      } catch (error) {
        outcomes[i] = { error: error as Error }
      }
    }
    return outcomes
  }

  private stage(diff: ServiceDiff, sink: UpdateSink, undo: unknown[], cleanup: (() => number)[]): void {
    for (const { before, after } of diff.changed) this.program(before, after, sink, undo, cleanup)
    for (const after of diff.added) this.program(undefined, after, sink, undo, cleanup)
    for (const before of diff.removed) this.program(before, undefined, sink, undo, cleanup)
  }

  /** Takes back what program() logged, newest first, through `sink` (best effort: the original error is what the caller needs). */
  private undo(log: unknown[], sink: UpdateSink): void {
    for (let i = log.length - UNDO_SLOTS; i >= 0; i -= UNDO_SLOTS) {
      try {
        this.undoOne(log[i] as Undo, log[i + 1], log[i + 2], log[i + 3], sink)
      } catch {
        // Keep undoing the rest.
      }
    }
  }

  /** Takes back every backend of a service program() created, newest first as one record each would. */
  private undoNewBackends(backends: Map<string, number>, sink: UpdateSink): void {
    const ids = [...backends.values()]
    backends.clear()
    for (let i = ids.length - 1; i >= 0; i--) {
      const bid = ids[i]
      this.backendSpecOf.delete(bid)
      try {
        sink.deleteBackend(bid)
      } catch {
        // Keep undoing the rest.
      } finally {
        this.backendIds.give(bid)
      }
    }
  }

  private undoOne(kind: Undo, a: unknown, b: unknown, c: unknown, sink: UpdateSink): void {
    switch (kind) {
      case Undo.NewService: {
        const id = c as number
        // A new service's backends are all new: logged with it, not one record each.
        const backends = this.backendsOf.get(id)
        if (backends !== undefined) this.undoNewBackends(backends, sink)
        this.serviceIdOf.delete(a as string, b as EndpointSetName)
        this.refOf.delete(id)
        this.backendsOf.delete(id)
        this.serviceIds.give(id)
        return
      }
      case Undo.NewBackend: {
        const bid = c as number
        ;(a as Map<string, number>).delete(b as string)
        this.backendSpecOf.delete(bid)
        try {
          sink.deleteBackend(bid)
        } finally {
          this.backendIds.give(bid)
        }
        return
      }
      case Undo.Backend: {
        const old = a as BackendSpec
        sink.upsertBackend(old)
        this.backendSpecOf.set(old.id, old)
        return
      }
      case Undo.Service: {
        const id = a as number
        const old = b as ServiceSpec | undefined
        if (old === undefined) {
          sink.deleteService(id)
          this.specOf.delete(id)
        } else {
          sink.upsertService(old)
          this.specOf.set(id, old)
        }
      }
    }
  }

  private program(
    before: ServicePortState | undefined,
    after: ServicePortState | undefined,
    sink: UpdateSink,
    undo: unknown[],
    cleanup: (() => number)[],
  ): void {
    const dp = this.dataplane
    const key = (before ?? after)!.info.key
    const desired = after === undefined ? [] : desiredDataplaneServices(after)
    // A ServicePort with no dataplane service yet (every one, on a full sync) has no frontend
    // to move and nothing to remove: only its new services and backends to add.
    const known = this.serviceIdOf.has(key)
    if (known) this.releaseMovedFrontends(key, desired, sink, undo)
    for (const d of desired) {
      let id = known ? this.serviceIdOf.get(key, d.role) : undefined
      const created = id === undefined
      if (id === undefined) {
        id = this.serviceIds.take()
        this.serviceIdOf.set(key, d.role, id)
        this.refOf.set(id, { servicePort: after!.info.name, role: d.role })
        this.backendsOf.set(id, new Map())
        undo.push(Undo.NewService, key, d.role, id)
      } else {
        const ref = this.refOf.get(id)
        if (ref?.servicePort !== after!.info.name || ref.role !== d.role) this.refOf.set(id, { servicePort: after!.info.name, role: d.role })
      }
      const svcId = id
      const backends = this.backendsOf.get(svcId)!
      // Usually every endpoint is active: no set to build then.
      const active = d.active.length === after!.endpoints.length ? undefined : new Set(d.active.map((e) => e.endpoint))
      const ids = new Array<number>(after!.endpoints.length)
      let n = 0
      for (const ep of after!.endpoints) {
        let bid = backends.get(ep.endpoint)
        const spec: BackendSpec = {
          id: bid ?? 0,
          address: ep.ip,
          port: ep.port,
          state: active === undefined || active.has(ep.endpoint) ? 'active' : 'terminating',
          nodeLocal: ep.isLocal,
          zone: ep.zone ?? undefined,
        }
        if (bid === undefined) {
          bid = this.backendIds.take()
          spec.id = bid
          backends.set(ep.endpoint, bid)
          if (!created) undo.push(Undo.NewBackend, backends, ep.endpoint, bid)
        } else {
          undo.push(Undo.Backend, this.backendSpecOf.get(bid)!, undefined, undefined)
        }
        sink.upsertBackend(spec)
        this.backendSpecOf.set(bid, spec)
        ids[n++] = bid
      }
      const svcSpec: ServiceSpec = {
        id: svcId,
        frontends: d.frontends,
        backends: ids,
        scheduler: this.scheduler,
        affinityTimeout: after!.info.affinityTimeoutSeconds,
        sourceRanges: d.sourceRanges,
        emptyVerdict: d.emptyVerdict,
      }
      const oldSpec = this.specOf.get(svcId)
      sink.upsertService(svcSpec)
      this.specOf.set(svcId, svcSpec)
      undo.push(Undo.Service, svcId, created ? undefined : oldSpec, undefined)
    }

    // kube-proxy's conntrack reconciler: UDP flows whose endpoint stopped serving go now.
    if (after !== undefined && after.info.protocol === 'UDP') {
      const now = new Map(after.endpoints.map((e) => [e.endpoint, e]))
      for (const ep of before?.endpoints ?? []) {
        const next = now.get(ep.endpoint)
        if (next === undefined || next.serving) continue
        for (const { role } of desired) {
          const bid = this.backendsOf.get(this.serviceIdOf.get(key, role)!)!.get(ep.endpoint)
          if (bid !== undefined) cleanup.push(() => dp.deleteFlowsByBackend(bid))
        }
      }
    }

    // Removals cannot fail once nothing references them; they run after every upsert succeeded.
    if (!known) return
    for (const role of ROLES) {
      const id = this.serviceIdOf.get(key, role)
      if (id === undefined) continue
      const backends = this.backendsOf.get(id)!
      const kept = desired.some((d) => d.role === role)
      // Every backend this role has is one `after` lists (a full sync's case): nothing to remove.
      if (kept && backends.size === after!.endpoints.length) continue
      const listed = new Set(kept ? after!.endpoints.map((e) => e.endpoint) : [])
      cleanup.push(() => {
        if (!kept) {
          dp.deleteService(id)
          this.specOf.delete(id)
          this.serviceIdOf.delete(key, role)
          this.refOf.delete(id)
          this.backendsOf.delete(id)
          this.serviceIds.give(id)
        }
        for (const [endpoint, bid] of backends) {
          if (listed.has(endpoint)) continue
          dp.deleteBackend(bid)
          backends.delete(endpoint)
          this.backendSpecOf.delete(bid)
          this.backendIds.give(bid)
        }
        return 0
      })
    }
  }

  /**
   * A frontend can move between the two dataplane services of a ServicePort (e.g. the cluster
   * IP from the local set to the cluster set when internalTrafficPolicy Local has no usable
   * endpoint). The dataplane refuses a frontend another service still owns, so first take
   * moving frontends away from the service that has them.
   */
  private releaseMovedFrontends(key: string, desired: DesiredDataplaneService[], sink: UpdateSink, undo: unknown[]): void {
    const frontendKey = (f: ServiceSpec['frontends'][number]) => `${f.address}|${f.port}|${f.protocol}|${f.scope}`
    for (const role of ROLES) {
      const id = this.serviceIdOf.get(key, role)
      const spec = id === undefined ? undefined : this.specOf.get(id)
      if (id === undefined || spec === undefined) continue
      const claimed = new Set(desired.filter((d) => d.role !== role).flatMap((d) => d.frontends.map(frontendKey)))
      const kept = spec.frontends.filter((f) => !claimed.has(frontendKey(f)))
      if (kept.length === spec.frontends.length) continue
      const reduced: ServiceSpec = { ...spec, frontends: kept }
      sink.upsertService(reduced)
      this.specOf.set(id, reduced)
      undo.push(Undo.Service, id, spec, undefined)
    }
  }
}
