// Metrics in a prom-client registry: kube-proxy's own names (pkg/proxy/metrics) wherever the
// concept exists here, so dashboards and alerts written for kube-proxy keep working, and the
// dataplane's (maps, conntrack, verdicts and reasons, per-service decisions) under svcplane_.
// Dataplane values are read from Dataplane.maps() / counters() at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets, linearBuckets } from 'prom-client'
import type { SyncSummary } from '../proxy/proxier.js'
import type { Proxier } from '../modes/index.js'
import type { RouteResult } from '../proxy/packet.js'
import { externallyAccessible } from '../proxy/serviceport.js'
import type { ResourceStats, ResourceName } from '../watch/informers.js'
import type { SyncHooks, SyncInfo } from '../watch/sync-loop.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'

export interface ProxyMetricsOptions {
  /** process_* and nodejs_* metrics, like kube-proxy's process_* and go_* (default true). */
  defaultMetrics?: boolean
  /** Watch counters, when watching a cluster. */
  watchStats?: () => Record<ResourceName, ResourceStats>
}

/** kube-proxy's network programming latency buckets: 0.25 s .. 5 min. */
export const NETWORK_PROGRAMMING_BUCKETS = [...linearBuckets(0.25, 0.25, 2), ...linearBuckets(1, 1, 59), ...linearBuckets(60, 5, 12), ...linearBuckets(120, 30, 7)]

const MAP_OPERATIONS = ['hits', 'misses', 'inserts', 'updates', 'deletes', 'evictions', 'refusals', 'expirations'] as const

const PROXY_METRICS_KEYS = optionKeys<ProxyMetricsOptions>({ defaultMetrics: true, watchStats: true })

export class ProxyMetrics {
  readonly registry = new Registry()
  private readonly syncDuration: Histogram
  private readonly lastTimestamp: Gauge
  private readonly lastQueuedTimestamp: Gauge
  private readonly programming: Histogram
  private readonly serviceChanges: Counter
  private readonly endpointChanges: Counter
  private readonly healthzTotal: Counter<'code'>
  private readonly livezTotal: Counter<'code'>
  private readonly decisions: Counter<'service_port' | 'action' | 'reason'>
  private readonly syncErrors: Counter
  private readonly flowsReconciled: Counter
  private readonly iptablesRules: Gauge<'table'>

  constructor(
    private readonly proxier: Proxier,
    options: ProxyMetricsOptions = {},
  ) {
    checkOptions('ProxyMetrics options', options, PROXY_METRICS_KEYS)
    const registers = [this.registry]
    // prom-client calls collect() with the metric as `this`; the pending counts come from here.
    const pending = () => this.pending()
    const noLocalEndpoints = () => this.noLocalEndpoints()
    const servicePorts = () => this.proxier.state.servicePorts()
    this.syncDuration = new Histogram({ name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds', buckets: exponentialBuckets(0.001, 2, 15), registers })
    this.lastTimestamp = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'The last time proxy rules were successfully synced', registers })
    this.lastQueuedTimestamp = new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: 'The last time a sync of proxy rules was queued', registers })
    this.programming = new Histogram({ name: 'kubeproxy_network_programming_duration_seconds', help: 'In Cluster Network Programming Latency in seconds', buckets: NETWORK_PROGRAMMING_BUCKETS, registers })
    new Gauge({
      name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
      help: 'Pending proxy rules Endpoint changes',
      registers,
      collect() {
        this.set(pending().endpointSlices)
      },
    })
    this.endpointChanges = new Counter({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: 'Cumulative proxy rules Endpoint changes', registers })
    new Gauge({
      name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
      help: 'Pending proxy rules Service changes',
      registers,
      collect() {
        this.set(pending().services)
      },
    })
    this.serviceChanges = new Counter({ name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: 'Cumulative proxy rules Service changes', registers })
    this.healthzTotal = new Counter({ name: 'kubeproxy_proxy_healthz_total', help: 'Cumulative proxy healthz HTTP status', labelNames: ['code'], registers })
    this.livezTotal = new Counter({ name: 'kubeproxy_proxy_livez_total', help: 'Cumulative proxy livez HTTP status', labelNames: ['code'], registers })
    new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: 'Number of services with a Local traffic policy and no endpoints',
      labelNames: ['traffic_policy'],
      registers,
      collect() {
        const n = noLocalEndpoints()
        this.set({ traffic_policy: 'internal' }, n.internal)
        this.set({ traffic_policy: 'external' }, n.external)
      },
    })
    this.iptablesRules = new Gauge({ name: 'kubeproxy_sync_proxy_rules_iptables_total', help: 'Total number of iptables rules owned by kube-proxy', labelNames: ['table'], registers: proxier.options.mode === 'iptables' ? registers : [] })

    // svcplane's own.
    this.syncErrors = new Counter({ name: 'svcplane_sync_service_errors_total', help: 'Services whose programming failed at a sync (retried at the next one)', registers })
    this.flowsReconciled = new Counter({ name: 'svcplane_conntrack_reconciled_flows_total', help: 'Conntrack entries removed at sync because their UDP backend stopped serving', registers })
    this.decisions = new Counter({ name: 'svcplane_decisions_total', help: 'Routing decisions by service port, action and reason', labelNames: ['service_port', 'action', 'reason'], registers })
    new Gauge({
      name: 'svcplane_service_ports',
      help: 'ServicePorts programmed',
      registers,
      collect() {
        this.set(servicePorts().length)
      },
    })
    if (proxier.dataplane !== undefined) this.registerDataplane(registers)
    if (options.watchStats) this.registerWatch(registers, options.watchStats)
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry })
  }

  private pendingFn: () => { services: number; endpointSlices: number } = () => ({ services: 0, endpointSlices: this.proxier.pendingChanges })

  /** Where pending change counts come from (the sync loop tracks them per kind). */
  setPendingSource(fn: () => { services: number; endpointSlices: number }): void {
    this.pendingFn = fn
  }

  private pending() {
    return this.pendingFn()
  }

  private noLocalEndpoints(): { internal: number; external: number } {
    let internal = 0
    let external = 0
    for (const s of this.proxier.state.servicePorts()) {
      if (!s.plan.hasEndpoints) continue
      if (s.info.internalPolicyLocal && !s.plan.hasInternalEndpoints) internal++
      if (s.info.externalPolicyLocal && externallyAccessible(s.info) && !s.plan.hasExternalEndpoints) external++
    }
    return { internal, external }
  }

  private registerDataplane(registers: Registry[]): void {
    const dp = () => this.proxier.dataplane!
    const perMap = (name: string, help: string, pick: (m: ReturnType<ReturnType<typeof dp>['maps']>[number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['map'],
        registers,
        collect() {
          for (const m of dp().maps()) this.set({ map: m.name }, pick(m))
        },
      })
    perMap('svcplane_dataplane_map_entries', 'Entries in each dataplane map', (m) => m.size)
    perMap('svcplane_dataplane_map_capacity', 'Capacity of each dataplane map (fixed at start)', (m) => m.capacity)
    perMap('svcplane_dataplane_map_bytes', 'Memory held by each dataplane map', (m) => m.bytes)
    new Counter({
      name: 'svcplane_dataplane_map_operations_total',
      help: 'Operations on each dataplane map (hits, misses, inserts, updates, deletes, evictions, refusals, expirations)',
      labelNames: ['map', 'operation'],
      registers,
      collect() {
        this.reset()
        for (const m of dp().maps()) for (const op of MAP_OPERATIONS) this.inc({ map: m.name, operation: op }, m.stats[op])
      },
    })
    const conntrack = () => dp().map('conntrack')
    new Gauge({ name: 'svcplane_conntrack_entries', help: 'Tracked flows', registers, collect() { this.set(conntrack().size) } })
    new Gauge({ name: 'svcplane_conntrack_capacity', help: 'Conntrack table capacity', registers, collect() { this.set(conntrack().capacity) } })
    new Counter({ name: 'svcplane_conntrack_evictions_total', help: 'Flows evicted from a full conntrack table', registers, collect() { this.reset(); this.inc(conntrack().stats.evictions) } })
    new Counter({ name: 'svcplane_conntrack_refusals_total', help: 'New flows refused by a full conntrack table', registers, collect() { this.reset(); this.inc(conntrack().stats.refusals) } })
    new Counter({ name: 'svcplane_dataplane_packets_total', help: 'Packets decided by the dataplane', registers, collect() { this.reset(); this.inc(dp().counters().packets) } })
    new Counter({
      name: 'svcplane_dataplane_verdicts_total',
      help: 'Dataplane verdicts (forward, reply, pass, reject, drop)',
      labelNames: ['verdict'],
      registers,
      collect() {
        this.reset()
        for (const [verdict, n] of Object.entries(dp().counters().verdicts)) this.inc({ verdict }, n)
      },
    })
    new Counter({
      name: 'svcplane_dataplane_drops_total',
      help: 'Packets rejected or dropped by the dataplane, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset()
        for (const [reason, n] of Object.entries(dp().counters().reasons)) {
          if (reason !== 'none' && reason !== 'no-frontend') this.inc({ reason }, n)
        }
      },
    })
  }

  private registerWatch(registers: Registry[], stats: () => Record<ResourceName, ResourceStats>): void {
    new Counter({
      name: 'svcplane_watch_total',
      help: 'Watch activity per resource: lists, watches, events, bookmarks, expired (410 Gone), errors',
      labelNames: ['resource', 'kind'],
      registers,
      collect() {
        this.reset()
        for (const [resource, s] of Object.entries(stats())) {
          for (const kind of ['lists', 'watches', 'events', 'bookmarks', 'expired', 'errors'] as const) this.inc({ resource, kind }, s[kind])
        }
      },
    })
  }

  // ------------------------------------------------------------------ recording

  serviceChanged(): void {
    this.serviceChanges.inc()
  }

  endpointSliceChanged(): void {
    this.endpointChanges.inc()
  }

  queued(wallSeconds: number): void {
    this.lastQueuedTimestamp.set(wallSeconds)
  }

  synced(summary: SyncSummary, info: Pick<SyncInfo, 'programmingLatencies'>, wallSeconds = Date.now() / 1000): void {
    this.syncDuration.observe(summary.durationMs / 1000)
    if (summary.errors.length) this.syncErrors.inc(summary.errors.length)
    else this.lastTimestamp.set(wallSeconds)
    if (summary.flowsRemoved) this.flowsReconciled.inc(summary.flowsRemoved)
    for (const l of info.programmingLatencies) this.programming.observe(l)
    if (this.proxier.options.mode === 'iptables') this.countIptablesRules()
  }

  private countIptablesRules(): void {
    let text: string
    try {
      text = this.proxier.iptablesRestore()
    } catch {
      return
    }
    const counts = new Map<string, number>()
    let table = ''
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) counts.set((table = line.slice(1).trim()), counts.get(table) ?? 0)
      else if (line.startsWith('-A ')) counts.set(table, (counts.get(table) ?? 0) + 1)
    }
    for (const [t, n] of counts) this.iptablesRules.set({ table: t }, n)
  }

  healthz(code: number): void {
    this.healthzTotal.inc({ code: String(code) })
  }

  livez(code: number): void {
    this.livezTotal.inc({ code: String(code) })
  }

  /** Counts a route() / explain() result (callers that decide packets report them here). */
  recordDecision(result: RouteResult): void {
    if (result.action === 'accept') return
    this.decisions.inc({ service_port: result.servicePort, action: result.action, reason: result.action === 'dnat' ? '' : result.reason })
  }

  /** Hooks for ProxierSyncLoop that keep these metrics. */
  syncHooks(): SyncHooks {
    return {
      onQueued: (t) => this.queued(t),
      onServiceChange: () => this.serviceChanged(),
      onEndpointSliceChange: () => this.endpointSliceChanged(),
      onSynced: (summary, info) => this.synced(summary, info),
    }
  }

  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
