// Feeds a Proxier from watch events and syncs it with kube-proxy's timing. Changes are recorded
// as they arrive (the Proxier keeps only each object's latest state) and applied together by
// the next sync; a periodic sync every syncPeriod retries failed Services and collects expired
// conntrack entries. Invalid objects are reported and skipped: the last good state stays.
import { objectKey } from '../k8s/object-key.js'
import type { SyncSummary } from '../proxy/proxier.js'
import type { Proxier } from '../modes/index.js'
import type { ObjectEvent } from './informers.js'
import { SyncRunner, type SyncTrigger } from './sync-runner.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'

/** The EndpointSlice controller's annotation: when the change that produced this slice happened. */
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time'

export interface SyncInfo {
  trigger: SyncTrigger | 'initial'
  /** Seconds from each slice change's trigger time (set by the EndpointSlice controller) to now. */
  programmingLatencies: number[]
  /** Conntrack entries collected by the periodic garbage collection. */
  gcFlows: number
}

export interface SyncHooks {
  /** A change arrived while none was pending (wall-clock seconds). */
  onQueued?(wallSeconds: number): void
  onServiceChange?(): void
  onEndpointSliceChange?(): void
  onSynced?(summary: SyncSummary, info: SyncInfo): void
  onInvalid?(kind: 'Service' | 'EndpointSlice', key: string, error: Error): void
  onSyncError?(error: Error): void
}

export interface SyncLoopOptions {
  /** Seconds (kube-proxy --min-sync-period, default 1). */
  minSyncPeriod?: number
  /** Seconds (kube-proxy --sync-period, default 30). */
  syncPeriod?: number
  hooks?: SyncHooks
  /** Wall clock in ms (for the programming latency). */
  wallClock?: () => number
}

function keyOf(kind: 'Service' | 'EndpointSlice', obj: unknown): string {
  try {
    return objectKey(kind, obj).key
  } catch {
    return '?'
  }
}

function triggerTime(obj: unknown): number | undefined {
  const v = (obj as { metadata?: { annotations?: Record<string, string> } })?.metadata?.annotations?.[TRIGGER_TIME_ANNOTATION]
  if (typeof v !== 'string') return undefined
  const t = Date.parse(v)
  return Number.isFinite(t) ? t : undefined
}

const SYNC_LOOP_KEYS = optionKeys<SyncLoopOptions>({ minSyncPeriod: true, syncPeriod: true, hooks: true, wallClock: true })

export class ProxierSyncLoop {
  readonly runner: SyncRunner
  private readonly hooks: SyncHooks
  private readonly wallClock: () => number
  private readonly pendingServices = new Set<string>()
  private readonly pendingSlices = new Set<string>()
  private readonly triggerTimes = new Map<string, number>()
  private syncCount = 0
  private last: SyncSummary | undefined

  constructor(
    readonly proxier: Proxier,
    options: SyncLoopOptions = {},
  ) {
    checkOptions('ProxierSyncLoop options', options, SYNC_LOOP_KEYS)
    this.hooks = options.hooks ?? {}
    this.wallClock = options.wallClock ?? Date.now
    this.runner = new SyncRunner((trigger) => this.sync(trigger), {
      minInterval: options.minSyncPeriod ?? 1,
      maxInterval: options.syncPeriod ?? 30,
    })
  }

  private queued(): void {
    if (this.pendingServices.size + this.pendingSlices.size === 1) this.hooks.onQueued?.(this.wallClock() / 1000)
    this.runner.request()
  }

  serviceEvent(event: ObjectEvent, obj: unknown): void {
    const key = keyOf('Service', obj)
    try {
      if (event === 'delete') this.proxier.deleteService(obj)
      else this.proxier.applyService(obj)
    } catch (err) {
      this.hooks.onInvalid?.('Service', key, err as Error)
      return
    }
    this.pendingServices.add(key)
    this.hooks.onServiceChange?.()
    this.queued()
  }

  endpointSliceEvent(event: ObjectEvent, obj: unknown): void {
    const key = keyOf('EndpointSlice', obj)
    try {
      if (event === 'delete') this.proxier.deleteEndpointSlice(obj)
      else this.proxier.applyEndpointSlice(obj)
    } catch (err) {
      this.hooks.onInvalid?.('EndpointSlice', key, err as Error)
      return
    }
    const t = event === 'delete' ? undefined : triggerTime(obj)
    if (t !== undefined) this.triggerTimes.set(key, Math.min(t, this.triggerTimes.get(key) ?? Infinity))
    this.pendingSlices.add(key)
    this.hooks.onEndpointSliceChange?.()
    this.queued()
  }

  get pending(): { services: number; endpointSlices: number } {
    return { services: this.pendingServices.size, endpointSlices: this.pendingSlices.size }
  }

  get syncs(): number {
    return this.syncCount
  }

  get lastSummary(): SyncSummary | undefined {
    return this.last
  }

  /** Syncs now (the initial sync, --once, tests). */
  sync(trigger: SyncTrigger | 'initial' = 'initial'): SyncSummary | undefined {
    this.pendingServices.clear()
    this.pendingSlices.clear()
    const triggers = [...this.triggerTimes.values()]
    this.triggerTimes.clear()
    let summary: SyncSummary
    try {
      summary = this.proxier.sync()
    } catch (err) {
      this.hooks.onSyncError?.(err as Error)
      return undefined
    }
    let gcFlows = 0
    const dp = this.proxier.dataplane
    if (trigger === 'periodic' && dp !== undefined) {
      try {
        gcFlows = dp.gc(this.proxier.options.clock()).flows
      } catch (err) {
        this.hooks.onSyncError?.(err as Error)
      }
    }
    if (trigger === 'initial') this.runner.ran()
    this.syncCount++
    this.last = summary
    const now = this.wallClock()
    const programmingLatencies = triggers.map((t) => Math.max(0, (now - t) / 1000))
    this.hooks.onSynced?.(summary, { trigger, programmingLatencies, gcFlows })
    return summary
  }

  start(): void {
    this.runner.start()
  }

  stop(): void {
    this.runner.stop()
  }
}
