// kube-proxy's sync timing (its BoundedFrequencyRunner): a change asks for a sync, which runs
// at once unless the last one was less than minInterval ago (then at lastRun + minInterval), so
// a burst of changes costs one sync; and a sync runs at least every maxInterval regardless.
import { SvcplaneRangeError } from '../errors.js'
export interface SyncRunnerOptions {
  /** Seconds (--min-sync-period). */
  minInterval: number
  /** Seconds (--sync-period). */
  maxInterval: number
  /** Milliseconds of a monotonic clock (injectable for tests, with `timers`). */
  now?: () => number
  timers?: Timers
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
}

export type SyncTrigger = 'change' | 'periodic'

export class SyncRunner {
  private timer: unknown
  private nextAt = Infinity
  private lastRun = -Infinity
  private changeRequested = false
  private running = false
  private stopped = true
  private readonly now: () => number
  private readonly timers: Timers

  constructor(
    private readonly fn: (trigger: SyncTrigger) => void,
    private readonly options: SyncRunnerOptions,
  ) {
    if (!(options.minInterval >= 0) || !(options.maxInterval > 0)) {
      throw new SvcplaneRangeError(`sync periods must be minInterval >= 0 and maxInterval > 0 seconds, got ${options.minInterval} and ${options.maxInterval}`)
    }
    this.now = options.now ?? (() => performance.now())
    this.timers = options.timers ?? realTimers
  }

  /** Starts the periodic syncs; the first one runs maxInterval after the last run (or now if none). */
  start(): void {
    this.stopped = false
    this.schedule(this.lastRun === -Infinity ? this.now() : this.lastRun + this.options.maxInterval * 1000)
    if (this.changeRequested) this.request()
  }

  stop(): void {
    this.stopped = true
    this.timers.clearTimeout(this.timer)
    this.timer = undefined
    this.nextAt = Infinity
  }

  /** Something changed: sync as soon as minInterval allows. */
  request(): void {
    this.changeRequested = true
    if (this.stopped || this.running) return
    this.schedule(Math.max(this.now(), this.lastRun + this.options.minInterval * 1000))
  }

  /** Records a sync made outside the runner (the initial one), so the intervals count from it. */
  ran(): void {
    this.lastRun = this.now()
    this.changeRequested = false
  }

  private schedule(at: number): void {
    if (this.stopped) return
    if (this.timer !== undefined && this.nextAt <= at) return
    this.timers.clearTimeout(this.timer)
    this.nextAt = at
    this.timer = this.timers.setTimeout(() => this.tick(), Math.max(0, at - this.now()))
  }

  private tick(): void {
    this.timer = undefined
    this.nextAt = Infinity
    const trigger: SyncTrigger = this.changeRequested ? 'change' : 'periodic'
    this.changeRequested = false
    this.running = true
    try {
      this.fn(trigger)
    } finally {
      this.running = false
      this.lastRun = this.now()
    }
    if (this.stopped) return
    this.schedule(this.lastRun + this.options.maxInterval * 1000)
    // Changes that arrived during the sync.
    if (this.changeRequested) this.schedule(this.lastRun + this.options.minInterval * 1000)
  }
}
