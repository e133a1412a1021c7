// The native mode's pump: whenever the TUN device is readable (a libuv poll on the JS thread),
// read a batch of IP packets, give the whole batch to Dataplane.processPackets in one call
// (DNAT of new flows, reverse NAT of replies, masquerade, ICMP errors, rejects), and write the
// results back into the TUN, where the kernel routes them on. Every packet is processed in the
// `to-service` direction: a tracked reply is found by conntrack either way, and only the policy
// routing decides what reaches the TUN (lib/node/native-node.ts).
import type { Dataplane } from '../dataplane/dataplane.js'
import { PacketReplies } from '../dataplane/packets.js'
import { SvcplaneError, SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import { show } from '../util/show.js'
import type { TunDevice } from './tun.js'

export interface TunPumpOptions {
  /** Packets per processPackets call (default 64). */
  batch?: number
  /** The largest packet read (the device's MTU; default 1500). */
  mtu?: number
  /** Batches per readable event before yielding to the event loop (default 16; the poll is level-triggered). */
  batchesPerEvent?: number
  /** Seconds of the monotonic clock the dataplane's other callers use (default performance.now()). */
  clock?: () => number
  /** A batch failed (the pump goes on with the next). */
  onError?(error: Error): void
}

export interface TunPumpStats {
  batches: number
  packets: number
  written: number
  /** Packets processPackets dropped or rejected without a reply. */
  notWritten: number
  errors: number
  /** Time spent in batches (read, processPackets, write), in milliseconds. */
  busyMs: number
  /** Of busyMs, the time in processPackets; the rest is the read and write system calls (a write runs the kernel's forwarding of the packet). */
  processMs: number
}

const MAX_FAILED_EVENTS = 1000
/** Conntrack slots examined per second of traffic: expired flows give their NAT ports back. */
const GC_BUDGET = 4096

/** Seconds on a monotonic clock, as processPackets wants `now`. */
const monotonicSeconds = () => performance.now() / 1000

export class TunPump {
  private readonly buffer: Uint8Array
  private readonly offsets: Uint32Array
  private readonly lengths: Uint32Array
  private readonly verdicts: Uint8Array
  private readonly reasons: Uint8Array
  private readonly replies: PacketReplies
  private readonly batch: number
  private readonly mtu: number
  private readonly batchesPerEvent: number
  private running = false
  /** Readable events in a row whose first read failed: a broken fd would wake the poll forever. */
  private failedEvents = 0
  private readonly clock: () => number
  private lastGc = 0
  readonly counts: TunPumpStats = { batches: 0, packets: 0, written: 0, notWritten: 0, errors: 0, busyMs: 0, processMs: 0 }

  constructor(
    private readonly dataplane: Dataplane,
    private readonly device: TunDevice,
    private readonly options: TunPumpOptions = {},
  ) {
    const int = (v: unknown, field: string, lo: number, hi: number, dflt: number) => {
      if (v === undefined) return dflt
      if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new SvcplaneRangeError(`TunPump options.${field} must be an integer ${lo}..${hi}, got ${show(v)}`)
      return v as number
    }
    this.batch = int(options.batch, 'batch', 1, 4096, 64)
    this.mtu = int(options.mtu, 'mtu', 576, 65535, 1500)
    this.batchesPerEvent = int(options.batchesPerEvent, 'batchesPerEvent', 1, 1024, 16)
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new SvcplaneTypeError(`TunPump options.clock must be a function, got ${show(options.clock)}`)
    this.clock = options.clock ?? monotonicSeconds
    this.buffer = new Uint8Array(this.batch * this.mtu)
    this.offsets = new Uint32Array(this.batch)
    this.lengths = new Uint32Array(this.batch)
    this.verdicts = new Uint8Array(this.batch)
    this.reasons = new Uint8Array(this.batch)
    // An ICMP reject reply is at most 576 + 18 bytes.
    this.replies = new PacketReplies(this.batch * 600, this.batch)
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.device.watch(() => this.drain())
  }

  stop(): void {
    if (!this.running) return
    this.running = false
    this.device.unwatch()
  }

  /** Runs batches until the device has no packet waiting or the per-event budget is spent. */
  drain(): number {
    let total = 0
    const start = performance.now()
    for (let b = 0; b < this.batchesPerEvent && this.running; b++) {
      let n = 0
      try {
        n = this.device.read(this.buffer, this.offsets, this.lengths, this.batch, this.mtu)
        if (n === 0) break
        const t0 = performance.now()
        this.dataplane.processPackets(this.buffer, this.offsets, this.lengths, n, { direction: 'to-service', now: this.clock(), linkType: 'raw', replies: this.replies }, this.verdicts, this.reasons)
        this.counts.processMs += performance.now() - t0
        const written = this.device.write(this.buffer, this.offsets, this.lengths, this.verdicts, n, this.replies)
        this.counts.batches++
        this.counts.packets += n
        this.counts.written += written
        this.counts.notWritten += n - written
        total += n
      } catch (err) {
        this.counts.errors++
        this.options.onError?.(err as Error)
        if (n === 0) {
          if (b === 0 && ++this.failedEvents >= MAX_FAILED_EVENTS) {
            this.stop()
            this.options.onError?.(new SvcplaneError('APPLY_FAILED', `TUN pump stopped: ${MAX_FAILED_EVENTS} reads in a row failed`))
          }
          break
        }
      }
      this.failedEvents = 0
      if (n < this.batch) break
    }
    this.counts.busyMs += performance.now() - start
    if (total > 0) this.collect()
    return total
  }

  /** At most once a second of traffic: an incremental conntrack GC, so idle flows free their NAT ports. */
  private collect(): void {
    const now = this.clock()
    if (now - this.lastGc < 1) return
    this.lastGc = now
    try {
      this.dataplane.gc(now, GC_BUDGET)
    } catch (err) {
      this.options.onError?.(err as Error)
    }
  }
}
