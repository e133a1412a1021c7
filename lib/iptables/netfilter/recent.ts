// State of `-m recent` lists (xt_recent), kept across packets on virtual time.
//
// Mirrors the kernel module: each named list holds at most `capacity`
// addresses in LRU order (the oldest is evicted when full) and each address
// keeps its last `stampsPerEntry` hit times in a ring; `--seconds` accepts a
// stamp no older than the window; `--reap` drops the least recently used
// entry when it has expired.
import { SvcplaneRangeError } from '../../errors.js'

export interface RecentEntry {
  stamps: number[]
  /** next ring slot to write */
  index: number
  ttl: number
}

export interface RecentCheck {
  command: 'set' | 'rcheck' | 'update' | 'remove'
  negated: boolean
  seconds: number
  hitcount: number
  reap: boolean
  rttl: boolean
}

export class RecentLists {
  private readonly lists = new Map<string, Map<string, RecentEntry>>()

  constructor(
    readonly capacity = 200,
    readonly stampsPerEntry = 20,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new SvcplaneRangeError(`recent capacity must be a positive integer, got ${capacity}`)
    if (!Number.isInteger(stampsPerEntry) || stampsPerEntry < 1) throw new SvcplaneRangeError(`recent stampsPerEntry must be a positive integer, got ${stampsPerEntry}`)
  }

  private list(name: string): Map<string, RecentEntry> {
    let l = this.lists.get(name)
    if (!l) { l = new Map(); this.lists.set(name, l) }
    return l
  }

  private touch(l: Map<string, RecentEntry>, key: string, e: RecentEntry, now: number): void {
    e.index %= this.stampsPerEntry
    e.stamps[e.index++] = now
    // Map iteration order is insertion order: re-insert to make it most recent.
    l.delete(key)
    l.set(key, e)
  }

  /** Evaluates one `-m recent` match for the (already masked) address key. */
  check(name: string, key: string, c: RecentCheck, now: number, ttl: number): boolean {
    const l = this.list(name)
    let ret = c.negated
    let e = l.get(key)
    if (e && c.rttl && e.ttl !== 0 && ttl !== 0 && e.ttl !== ttl) e = undefined
    if (!e) {
      if (c.command !== 'set') return ret
      if (l.size >= this.capacity) {
        const oldest = l.keys().next().value as string
        l.delete(oldest)
      }
      l.set(key, { stamps: [now], index: 1, ttl })
      return !ret
    }
    if (c.command === 'set') {
      ret = !ret
    } else if (c.command === 'remove') {
      l.delete(key)
      return !ret
    } else if (c.seconds > 0 || c.hitcount > 0) {
      const oldestAllowed = now - c.seconds
      let hits = 0
      for (const stamp of e.stamps) {
        if (c.seconds > 0 && stamp < oldestAllowed) continue
        if (c.hitcount === 0 || ++hits >= c.hitcount) { ret = !ret; break }
      }
      if (c.reap) this.reapOldest(l, e, oldestAllowed)
    } else {
      ret = !ret
    }
    if (c.command === 'set' || (c.command === 'update' && ret)) {
      this.touch(l, key, e, now)
      e.ttl = ttl
    }
    return ret
  }

  private reapOldest(l: Map<string, RecentEntry>, working: RecentEntry, oldestAllowed: number): void {
    const first = l.entries().next()
    if (first.done) return
    const [key, e] = first.value
    if (e === working) return
    const last = e.stamps[(e.index - 1 + e.stamps.length) % e.stamps.length]!
    if (last < oldestAllowed) l.delete(key)
  }

  /** Addresses currently in a list (for inspection, like /proc/net/xt_recent/NAME). */
  entries(name: string): Array<{ key: string; lastSeen: number; hits: number }> {
    const l = this.lists.get(name)
    if (!l) return []
    return [...l].map(([key, e]) => ({
      key,
      lastSeen: e.stamps[(e.index - 1 + e.stamps.length) % e.stamps.length]!,
      hits: e.stamps.length,
    }))
  }

  clear(): void {
    this.lists.clear()
  }
}
