// List+watch of Services and EndpointSlices through @kubernetes/client-node informers
// (ListWatch). The library lists, then watches from the list's resourceVersion, re-watches from
// the last seen resourceVersion when a stream ends, and relists when the server answers
// 410 Gone. Around it this file adds what kube-proxy's reflector has and the library leaves to
// the caller: watch bookmarks (so a re-watch resumes from a recent resourceVersion), reconnects
// with exponential backoff after errors, a delay when streams keep closing at once, a "synced"
// signal, counters, and errors condensed to one readable line.
import { Backoff, type BackoffOptions } from './backoff.js'
import { SvcplaneError } from '../errors.js'
import { loadClientNode, type KubeConfig } from './client.js'

export type ObjectEvent = 'add' | 'update' | 'delete'
export type ResourceName = 'services' | 'endpointslices'

import { KUBE_PROXY_LABEL_SELECTOR } from '../k8s/not-proxied.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'
/** kube-proxy ignores Services handled by another proxy and headless Services (and their slices). */
export { KUBE_PROXY_LABEL_SELECTOR }

export interface WatchHandlers {
  onService(event: ObjectEvent, obj: unknown): void
  onEndpointSlice(event: ObjectEvent, obj: unknown): void
  /** Both resources listed at least once (called once). */
  onSynced?(): void
  /** A list or watch failed; the informer retries after `retryInMs`. */
  onError?(resource: ResourceName, error: Error, retryInMs: number): void
  /** A list is about to be made because there was no usable resourceVersion (start, 410 Gone). */
  onRelist?(resource: ResourceName): void
}

export interface WatcherOptions {
  labelSelector?: string
  backoff?: BackoffOptions
  /** A watch that ends sooner than this after it started counts as a failed attempt (backoff). */
  minWatchMs?: number
}

export interface ResourceStats {
  lists: number
  watches: number
  events: number
  bookmarks: number
  /** 410 Gone answers (HTTP status or ERROR event). */
  expired: number
  errors: number
  resourceVersion: string
}

/** One line out of whatever the client library threw. */
export function describeApiError(err: unknown): string {
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown; message?: string; cause?: { message?: string } }
  const status = typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined
  if (status !== undefined) {
    let detail = ''
    let body = e.body
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body)
      } catch {
        detail = (body as string).slice(0, 200)
      }
    }
    if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') detail = (body as { message: string }).message
    if (detail === '' && typeof e.message === 'string' && !e.message.startsWith('HTTP-Code')) detail = e.message
    return `API server answered HTTP ${status}${detail ? `: ${detail}` : ''}`
  }
  const msg = typeof e?.message === 'string' ? e.message.split('\n')[0] : String(err)
  const cause = typeof e?.cause?.message === 'string' && !msg.includes(e.cause.message) ? `: ${e.cause.message}` : ''
  return `${msg}${cause}`
}

type ListWatchLike = {
  on(verb: string, cb: (arg: unknown) => void): void
  start(): Promise<void>
  stop(): Promise<void>
  latestResourceVersion(): string
  list(namespace?: string): unknown[]
}

class ResourceInformer {
  readonly stats: ResourceStats = { lists: 0, watches: 0, events: 0, bookmarks: 0, expired: 0, errors: 0, resourceVersion: '' }
  synced = false
  private informer!: ListWatchLike
  private stopped = false
  private retryTimer: NodeJS.Timeout | undefined
  private readonly backoff: Backoff
  private watchStartedAt = 0
  private quickCloses = 0

  constructor(
    readonly resource: ResourceName,
    private readonly path: string,
    private readonly handlers: WatchHandlers,
    private readonly emit: (event: ObjectEvent, obj: unknown) => void,
    private readonly onFirstSync: () => void,
    private readonly options: WatcherOptions,
  ) {
    this.backoff = new Backoff(options.backoff)
  }

  async init(kc: KubeConfig, list: () => Promise<{ items: unknown[]; metadata?: { resourceVersion?: string } }>): Promise<void> {
    const k8s = await loadClientNode()
    const watch = new k8s.Watch(kc)
    // The watch the ListWatch uses: the real one, asking for bookmarks, observing the stream.
    const observed = {
      watch: async (path: string, query: Record<string, unknown>, cb: (phase: string, obj: unknown, raw: unknown) => void, done: (err: unknown) => void) => {
        if (!this.synced) {
          // The ListWatch calls watch right after delivering its list: from here on it has synced.
          this.synced = true
          this.onFirstSync()
        }
        const started = Date.now()
        if (this.watchStartedAt !== 0 && started - this.watchStartedAt < (this.options.minWatchMs ?? 1000)) this.quickCloses++
        else this.quickCloses = 0
        if (this.quickCloses > 0) {
          // The previous stream closed at once: do not hammer the server.
          await new Promise((r) => setTimeout(r, this.backoff.next()))
          if (this.stopped) return new AbortController()
        }
        this.watchStartedAt = Date.now()
        this.stats.watches++
        return watch.watch(
          path,
          { ...query, allowWatchBookmarks: true },
          (phase, obj, raw) => {
            if (phase === 'BOOKMARK') this.stats.bookmarks++
            else if (phase === 'ERROR') {
              if ((obj as { code?: number })?.code === 410) this.stats.expired++
            } else this.stats.events++
            cb(phase, obj, raw)
            this.stats.resourceVersion = this.informer.latestResourceVersion()
          },
          (err) => {
            if ((err as { statusCode?: number })?.statusCode === 410) this.stats.expired++
            done(err)
          },
        )
      },
    }
    const listFn = async () => {
      this.handlers.onRelist?.(this.resource)
      const result = await list()
      this.stats.lists++
      this.backoff.reset()
      this.stats.resourceVersion = result.metadata?.resourceVersion ?? ''
      return result
    }
    this.informer = new k8s.ListWatch(this.path, observed as never, listFn as never, false, this.options.labelSelector) as unknown as ListWatchLike
    this.informer.on('add', (o) => this.emit('add', o))
    this.informer.on('update', (o) => this.emit('update', o))
    this.informer.on('delete', (o) => this.emit('delete', o))
    this.informer.on('error', (err) => this.failed(err))
  }

  private failed(err: unknown): void {
    if (this.stopped) return // aborting the stream on stop() reports an AbortError
    this.stats.errors++
    const delay = this.backoff.next()
    this.handlers.onError?.(this.resource, new SvcplaneError('API_ERROR', describeApiError(err), { cause: err }), delay)
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) void this.informer.start()
    }, delay)
  }

  start(): Promise<void> {
    this.stopped = false
    return this.informer.start()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.retryTimer)
    await this.informer.stop()
  }

  /** The objects the informer's cache holds now. */
  list(): unknown[] {
    return this.informer.list()
  }
}

const WATCHER_KEYS = optionKeys<WatcherOptions>({ labelSelector: true, backoff: true, minWatchMs: true })
const BACKOFF_KEYS = optionKeys<BackoffOptions>({ initialMs: true, maxMs: true, factor: true, jitter: true, random: true })

/** Watches a cluster's Services and EndpointSlices and hands every change to the handlers. */
export class ClusterWatcher {
  private readonly services: ResourceInformer
  private readonly slices: ResourceInformer
  private syncedCalled = false
  private readonly syncWaiters: (() => void)[] = []

  constructor(
    private readonly kc: KubeConfig,
    private readonly handlers: WatchHandlers,
    private readonly options: WatcherOptions = {},
  ) {
    checkOptions('ClusterWatcher options', options, WATCHER_KEYS)
    if (options.backoff !== undefined) checkOptions('ClusterWatcher options: backoff', options.backoff, BACKOFF_KEYS)
    const labelSelector = options.labelSelector ?? KUBE_PROXY_LABEL_SELECTOR
    const opts = { ...options, labelSelector: labelSelector === '' ? undefined : labelSelector }
    const firstSync = () => this.checkSynced()
    this.services = new ResourceInformer('services', '/api/v1/services', handlers, (e, o) => handlers.onService(e, o), firstSync, opts)
    this.slices = new ResourceInformer('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', handlers, (e, o) => handlers.onEndpointSlice(e, o), firstSync, opts)
  }

  private checkSynced(): void {
    if (this.syncedCalled || !this.services.synced || !this.slices.synced) return
    this.syncedCalled = true
    this.handlers.onSynced?.()
    for (const w of this.syncWaiters.splice(0)) w()
  }

  get synced(): boolean {
    return this.syncedCalled
  }

  /** Resolves once both resources have been listed (or when `signal` aborts). */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.syncedCalled) return Promise.resolve(true)
    return new Promise((resolve) => {
      const onAbort = () => resolve(false)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve(true)
      })
    })
  }

  async start(): Promise<void> {
    const k8s = await loadClientNode()
    const core = this.kc.makeApiClient(k8s.CoreV1Api)
    const discovery = this.kc.makeApiClient(k8s.DiscoveryV1Api)
    const labelSelector = this.options.labelSelector ?? KUBE_PROXY_LABEL_SELECTOR
    const sel = labelSelector === '' ? {} : { labelSelector }
    await this.services.init(this.kc, () => core.listServiceForAllNamespaces(sel) as never)
    await this.slices.init(this.kc, () => discovery.listEndpointSliceForAllNamespaces(sel) as never)
    await Promise.all([this.services.start(), this.slices.start()])
  }

  async stop(): Promise<void> {
    await Promise.all([this.services.stop(), this.slices.stop()])
  }

  stats(): Record<ResourceName, ResourceStats> {
    return { services: { ...this.services.stats }, endpointslices: { ...this.slices.stats } }
  }

  /** The informers' caches (what the watcher believes the cluster holds). */
  cached(): { services: unknown[]; endpointSlices: unknown[] } {
    return { services: this.services.list(), endpointSlices: this.slices.list() }
  }
}
