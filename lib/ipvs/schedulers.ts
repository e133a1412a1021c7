// The IPVS schedulers (net/netfilter/ipvs/ip_vs_*.c) as they choose a destination for a new
// connection. Destinations of weight 0 never get new connections (that is how kube-proxy drains
// a removed endpoint); sh, dh and mh keep their hash slot for it and refuse the client, as the
// kernel does without the *-fallback flags.
import type { IpvsScheduler } from './types.js'
import { addressBucket } from './shared-hash.js'
import { parseAddressInto } from '../util/address.js'

export interface Destination {
  address: string
  port: number
  weight: number
  /** Connections in TCP ESTABLISHED. */
  activeConns: number
  /** Every other connection (SYN_RECV, FIN_WAIT, TIME_WAIT, UDP ...). */
  inactiveConns: number
}

export interface ScheduleInput {
  src: string
  sport: number
  dst: string
}

export interface Scheduler {
  /** The destination for a new connection, or undefined (no destination: the packet is refused). */
  pick(dests: readonly Destination[], p: ScheduleInput): Destination | undefined
  /** The destination set or a weight changed. */
  reset(): void
}

/** FNV-1a over the text, for the hash schedulers' slot of an address. */
function hash(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0
  return h
}

const usable = (d: Destination) => d.weight > 0
/** ip_vs_dest_conn_overhead: active connections weigh 256 times an inactive one. */
const overhead = (d: Destination) => d.activeConns * 256 + d.inactiveConns

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b)
}

/** The usable destination minimising cost/weight (cross-multiplied, as the kernel compares). */
function leastBy(dests: readonly Destination[], cost: (d: Destination) => number, weighted: boolean): Destination | undefined {
  let best: Destination | undefined
  for (const d of dests) {
    if (!usable(d)) continue
    if (best === undefined) best = d
    else if (weighted ? cost(d) * best.weight < cost(best) * d.weight : cost(d) < cost(best)) best = d
  }
  return best
}

/**
 * ip_vs_rr: the next usable destination after the last one picked, in list order. The place is
 * kept by identity: when the last one picked is deleted, the walk starts from its nearest
 * surviving predecessor (ip_vs_rr_del_dest), as the native core's rr does by backend id.
 */
class RoundRobin implements Scheduler {
  private last: Destination | undefined
  /** The list the last pick was made from, to find a deleted destination's predecessor. */
  private lastList: readonly Destination[] = []
  pick(dests: readonly Destination[]): Destination | undefined {
    const start = this.position(dests)
    for (let i = 1; i <= dests.length; i++) {
      const d = dests[(start + i) % dests.length]!
      if (usable(d)) {
        this.last = d
        this.lastList = [...dests]
        return d
      }
    }
    return undefined
  }
  /** Index of the last destination picked (or of its nearest surviving predecessor) in `dests`; -1 for the list head. */
  private position(dests: readonly Destination[]): number {
    if (this.last === undefined) return -1
    for (let old = this.lastList.indexOf(this.last); old >= 0; old--) {
      const at = dests.indexOf(this.lastList[old]!)
      if (at >= 0) return at
    }
    return -1
  }
  reset(): void {}
}

/** ip_vs_wrr: current weight cw steps down by the weights' gcd from the maximum weight. */
class WeightedRoundRobin implements Scheduler {
  private index = -1
  private cw = 0
  pick(dests: readonly Destination[]): Destination | undefined {
    const weights = dests.map((d) => Math.max(0, d.weight))
    const max = Math.max(0, ...weights)
    if (max === 0) return undefined
    const step = weights.reduce((g, w) => (w > 0 ? gcd(g, w) : g), 0)
    for (let tries = 0; tries <= dests.length * (max / step + 1); tries++) {
      this.index = (this.index + 1) % dests.length
      if (this.index === 0) {
        this.cw -= step
        if (this.cw <= 0) this.cw = max
      }
      if (weights[this.index]! >= this.cw) return dests[this.index]
    }
    return undefined
  }
  reset(): void {
    this.index = -1
    this.cw = 0
  }
}

class LeastConnection implements Scheduler {
  constructor(private readonly weighted: boolean) {}
  pick(dests: readonly Destination[]): Destination | undefined {
    return leastBy(dests, overhead, this.weighted)
  }
  reset(): void {}
}

/** sed: shortest expected delay, (active + 1) / weight; nq takes an idle server first. */
class ShortestExpectedDelay implements Scheduler {
  constructor(private readonly neverQueue: boolean) {}
  pick(dests: readonly Destination[]): Destination | undefined {
    if (this.neverQueue) {
      const idle = dests.find((d) => usable(d) && d.activeConns === 0)
      if (idle !== undefined) return idle
    }
    return leastBy(dests, (d) => d.activeConns + 1, true)
  }
  reset(): void {}
}

/** A destination counts as overloaded for lblc when it has more active connections than its weight while another is at half load. */
function overloaded(d: Destination, dests: readonly Destination[]): boolean {
  return d.activeConns > d.weight && dests.some((o) => usable(o) && o.activeConns * 2 < o.weight)
}

/** lblc / lblcr: a destination (set) per destination address, falling back to weighted least-connection. */
class LocalityBased implements Scheduler {
  private readonly table = new Map<string, Destination[]>()
  constructor(private readonly replicate: boolean) {}
  pick(dests: readonly Destination[], p: ScheduleInput): Destination | undefined {
    const known = (this.table.get(p.dst) ?? []).filter((d) => dests.includes(d) && usable(d))
    const inSet = leastBy(known, overhead, true)
    if (inSet !== undefined && !overloaded(inSet, dests)) return inSet
    const chosen = leastBy(dests, overhead, true)
    if (chosen !== undefined) this.table.set(p.dst, this.replicate ? [...known.filter((d) => d !== chosen), chosen] : [chosen])
    return chosen
  }
  reset(): void {
    this.table.clear()
  }
}

/**
 * sh / dh: 256 hash buckets handed out round-robin to the destinations in address order (sh:
 * `weight` consecutive buckets each per turn; dh: one), picked by the source (sh) or
 * destination (dh) address's bucket with the native core's hash, so both put a client on the
 * same server. A bucket whose destination is unusable refuses (the kernel without
 * sh-fallback); the native core leaves such a server out of its table instead.
 */
class HashBuckets implements Scheduler {
  private buckets: Destination[] | undefined
  constructor(private readonly key: (p: ScheduleInput) => string, private readonly weighted: boolean) {}
  pick(dests: readonly Destination[], p: ScheduleInput): Destination | undefined {
    if (dests.length === 0) return undefined
    if (this.buckets === undefined) {
      const order = [...dests].sort(byAddressThenPort)
      this.buckets = []
      let i = 0
      let taken = 0
      for (let b = 0; b < 256; b++) {
        const d = order[i]!
        this.buckets.push(d)
        if (++taken >= (this.weighted ? d.weight : 1)) {
          i = (i + 1) % order.length
          taken = 0
        }
      }
    }
    const d = this.buckets[addressBucket(this.key(p))]!
    return usable(d) ? d : undefined
  }
  reset(): void {
    this.buckets = undefined
  }
}

/** The native core's canonical order (native/core scheduler.cc canonicalOrder): address bytes, then port. */
function byAddressThenPort(a: Destination, b: Destination): number {
  const x = new Uint8Array(16)
  const y = new Uint8Array(16)
  parseAddressInto(a.address, x, 0)
  parseAddressInto(b.address, y, 0)
  for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return a.port - b.port
}

/** mh: Maglev hashing over a 251-slot lookup table of the destinations with weight > 0. */
class Maglev implements Scheduler {
  private table: Destination[] | undefined
  constructor(private readonly withPort: boolean) {}
  pick(dests: readonly Destination[], p: ScheduleInput): Destination | undefined {
    const live = dests.filter(usable).sort((a, b) => byAddressThenPort(a, b))
    if (live.length === 0) return undefined
    if (this.table === undefined) this.table = populate(live, 251)
    return this.table[hash(this.withPort ? `${p.src}|${p.sport}` : p.src) % 251]
  }
  reset(): void {
    this.table = undefined
  }
}

function populate(dests: readonly Destination[], size: number): Destination[] {
  const table: (Destination | undefined)[] = new Array(size).fill(undefined)
  const perm = dests.map((d) => {
    const name = `${d.address}:${d.port}`
    return { offset: hash(name) % size, skip: (hash(`${name}#`) % (size - 1)) + 1, next: 0 }
  })
  const g = dests.reduce((a, d) => gcd(a, d.weight), 0)
  let filled = 0
  while (filled < size) {
    for (let i = 0; i < dests.length && filled < size; i++) {
      // A destination of weight w claims w / gcd slots per turn.
      for (let turn = 0; turn < dests[i]!.weight / g && filled < size; turn++) {
        const pi = perm[i]!
        let slot = (pi.offset + pi.skip * pi.next) % size
        while (table[slot] !== undefined) slot = (pi.offset + pi.skip * ++pi.next) % size
        table[slot] = dests[i]
        pi.next++
        filled++
      }
    }
  }
  return table as Destination[]
}

export function createScheduler(name: IpvsScheduler, flags: number): Scheduler {
  switch (name) {
    case 'rr': return new RoundRobin()
    case 'wrr': return new WeightedRoundRobin()
    case 'lc': return new LeastConnection(false)
    case 'wlc': return new LeastConnection(true)
    case 'sed': return new ShortestExpectedDelay(false)
    case 'nq': return new ShortestExpectedDelay(true)
    case 'lblc': return new LocalityBased(false)
    case 'lblcr': return new LocalityBased(true)
    case 'sh': return new HashBuckets((p) => p.src, true)
    case 'dh': return new HashBuckets((p) => p.dst, false)
    case 'mh': return new Maglev((flags & 0x10) !== 0)
  }
}
