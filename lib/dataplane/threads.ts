// Dataplane({ threads: N }): one native ShardedDataplane (native/core/sharded_dataplane.h)
// behind the same NativeHandle interface the Dataplane class calls. Each shard is an ordinary
// native DataplaneHandle over one shard of it, so every method works per shard as it does on
// one Dataplane; this file spreads calls over them: control calls to every shard (shard 0
// first: the shards hold identical service maps, so only shard 0 can refuse, and then no
// shard changed), inspection summed or concatenated, decisions steered to the flow's shard.
// processPackets goes to shard 0's handle, whose addon fans the batch out over the shards on
// a persistent pool of native threads (native/addon/sharded.h).
//
// Threads: every call comes from the JS thread that made the Dataplane; the pool's threads
// run only inside processPackets, which returns when they are done.
import { SvcplaneRangeError } from '../errors.js'
import { show } from '../util/show.js'
import { NativeStatus } from './codes.js'
import type { NativeError, NativeHandle, NativeModule } from './native.js'
import type { PacketCall } from './packet-call.js'
import type { UpdateBatch } from './update-batch.js'

/** The most packet threads one Dataplane takes (ShardedDataplane::kMaxShards). */
export const MAX_THREADS = 64

/** The steering side of a threaded Dataplane (native/addon/sharded.cc ShardSet). */
interface NativeShardSet {
  token(shard: number): unknown
  shardOfFlows(flows: Uint8Array, count: number, out: Uint32Array): void
  shardOfV4(tuple: Uint32Array): number
  setSteering(masq4: Uint8Array | null, masq6: Uint8Array | null): void
  destroy(): void
}

interface ShardedNativeModule extends NativeModule {
  DataplaneHandle: new (config: Record<string, unknown>, token: unknown) => NativeHandle
  ShardSet: new (threads: number) => NativeShardSet
}

/** options.threads as a count of packet threads: undefined is 1. */
export function checkThreads(v: unknown): number {
  if (v === undefined) return 1
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_THREADS)
    throw new SvcplaneRangeError(`threads must be an integer 1..${MAX_THREADS}, got ${show(v)}`)
  return v
}

/** Conntrack dump cursors: shard * CURSOR_SPAN + the shard's own slot. */
const CURSOR_SPAN = 2 ** 32

type Counters = { packets: number; verdicts: number[]; reasons: number[] }
type MapRecord = Record<string, unknown> & { name: string; size: number; capacity: number; bytes: number; stats: Record<string, number> }
/** Maps each shard has its own of (the rest are the same in every shard, or shared). */
const PER_SHARD_MAPS = new Set(['conntrack', 'nat', 'fragments'])

function addInto(to: number[], from: number[]): void {
  for (let i = 0; i < from.length; i++) to[i] = (to[i] ?? 0) + from[i]
}

export class ShardedHandle implements NativeHandle {
  private readonly set: NativeShardSet
  private readonly shards: NativeHandle[] = []
  private scratchIn: Uint8Array = new Uint8Array(0)
  private tupleV4: Uint32Array = new Uint32Array(0)
  private steer = new Uint32Array(64)
  private flowsIn = new Uint8Array(0)
  private decisionsOut = new Uint8Array(0)

  constructor(native: NativeModule, config: Record<string, unknown>, threads: number, private readonly flowStride: number, private readonly decisionStride: number) {
    const m = native as ShardedNativeModule
    this.set = new m.ShardSet(threads)
    try {
      for (let i = 0; i < threads; i++) this.shards.push(new m.DataplaneHandle(config, this.set.token(i)))
    } catch (err) {
      this.destroy()
      throw err
    }
  }

  /** f on shard 0, then on the rest unless shard 0 refused. */
  private everyShard<E>(f: (h: NativeHandle) => E | undefined): E | undefined {
    const err = f(this.shards[0])
    if (err !== undefined) return err
    // The other shards hold what shard 0 holds and accept what it accepted.
    for (let i = 1; i < this.shards.length; i++) {
      const e = f(this.shards[i])
      if (e !== undefined) return e
    }
    return undefined
  }

  private sum(f: (h: NativeHandle) => number): number {
    let n = 0
    for (const h of this.shards) n += f(h)
    return n
  }

  private steerArray(count: number): Uint32Array {
    if (this.steer.length < count) this.steer = new Uint32Array(Math.max(count, this.steer.length * 2))
    return this.steer
  }

  // ------------------------------------------------------------ decisions

  setScratch(input: Uint8Array, output: Uint8Array): void {
    for (const h of this.shards) h.setScratch(input, output)
    this.scratchIn = input
  }

  decideScratch(now: number): void {
    this.set.shardOfFlows(this.scratchIn, 1, this.steer)
    this.shards[this.steer[0]].decideScratch(now)
  }

  setScratchV4(input: Uint32Array, output: Uint32Array): void {
    for (const h of this.shards) h.setScratchV4(input, output)
    this.tupleV4 = input
  }

  decideV4(now: number): void {
    this.shards[this.set.shardOfV4(this.tupleV4)].decideV4(now)
  }

  /** Each shard decides its flows of the batch, in batch order; decisions land in the caller's order. */
  decideBatch(input: Uint8Array, count: number, now: number, output: Uint8Array): number {
    if (count === 0) return 0
    const steer = this.steerArray(count)
    this.set.shardOfFlows(input, count, steer)
    let one = true
    for (let i = 1; i < count && one; i++) one = steer[i] === steer[0]
    if (one) return this.shards[steer[0]].decideBatch(input, count, now, output)
    const fs = this.flowStride, ds = this.decisionStride
    if (this.flowsIn.length < count * fs) {
      this.flowsIn = new Uint8Array(count * fs)
      this.decisionsOut = new Uint8Array(count * ds)
    }
    for (let s = 0; s < this.shards.length; s++) {
      let m = 0
      for (let i = 0; i < count; i++) if (steer[i] === s) this.flowsIn.set(input.subarray(i * fs, i * fs + fs), m++ * fs)
      if (m === 0) continue
      this.shards[s].decideBatch(this.flowsIn, m, now, this.decisionsOut)
      m = 0
      for (let i = 0; i < count; i++) if (steer[i] === s) output.set(this.decisionsOut.subarray(m * ds, ++m * ds), i * ds)
    }
    return count
  }

  peekFlowScratch(): Record<string, unknown> | null {
    this.set.shardOfFlows(this.scratchIn, 1, this.steer)
    return this.shards[this.steer[0]].peekFlowScratch()
  }

  // ------------------------------------------------------------ control path

  upsertBackend(id: number, address: Uint8Array, port: number, state: number, weight: number, nodeLocal: boolean, zone: number): NativeError | undefined {
    return this.everyShard((h) => h.upsertBackend(id, address, port, state, weight, nodeLocal, zone))
  }

  deleteBackend(id: number): NativeError | undefined {
    return this.everyShard((h) => h.deleteBackend(id))
  }

  upsertService(id: number, scheduler: number, affinityTimeout: number, emptyVerdict: number, frontends: Uint8Array, backends: Uint32Array, sourceRanges: Uint8Array): NativeError | undefined {
    return this.everyShard((h) => h.upsertService(id, scheduler, affinityTimeout, emptyVerdict, frontends, backends, sourceRanges))
  }

  deleteService(id: number): NativeError | undefined {
    return this.everyShard((h) => h.deleteService(id))
  }

  upsertBatch(batch: UpdateBatch, backends: number, services: number): [number, string, number, number] | undefined {
    return this.everyShard((h) => h.upsertBatch(batch, backends, services))
  }

  reserve(services: number, frontends: number, backends: number): NativeError | undefined {
    return this.everyShard((h) => h.reserve(services, frontends, backends))
  }

  setTimeouts(seconds: Float64Array): void {
    for (const h of this.shards) h.setTimeouts(seconds)
  }

  setPacketConfig(
    nodes: Uint8Array, podCidrs: Uint8Array, masq4: Uint8Array | null, masq6: Uint8Array | null, masqueradeAll: boolean,
    natPortLow: number, natPortHigh: number, fragmentTimeout: number,
  ): NativeError | undefined {
    // Each shard hands out the NAT ports of its own class (port % threads): it needs one.
    if (natPortHigh - natPortLow + 1 < this.shards.length)
      return [NativeStatus.Invalid, `natPortRange has fewer ports than the ${this.shards.length} threads (each thread needs at least one)`]
    const err = this.everyShard((h) => h.setPacketConfig(nodes, podCidrs, masq4, masq6, masqueradeAll, natPortLow, natPortHigh, fragmentTimeout))
    if (err === undefined) this.set.setSteering(masq4, masq6)
    return err
  }

  deleteFlowsByBackend(id: number): number {
    return this.sum((h) => h.deleteFlowsByBackend(id))
  }

  deleteFlowsByService(id: number): number {
    return this.sum((h) => h.deleteFlowsByService(id))
  }

  flushConntrack(): number {
    return this.sum((h) => h.flushConntrack())
  }

  gc(now: number, budget: number): { flows: number; affinity: number } {
    const out = { flows: 0, affinity: 0 }
    for (const h of this.shards) {
      const r = h.gc(now, budget)
      out.flows += r.flows
      out.affinity += r.affinity
    }
    return out
  }

  // ------------------------------------------------------------ packets

  setPacketCall(call: PacketCall): void {
    this.shards[0].setPacketCall(call)
  }

  processPackets(): number {
    return this.shards[0].processPackets()
  }

  // ------------------------------------------------------------ inspection

  dumpConntrack(start: number, max: number): { entries: Record<string, unknown>[]; next: number } {
    for (let s = Math.floor(start / CURSOR_SPAN), local = start % CURSOR_SPAN; s < this.shards.length; s++, local = 0) {
      const page = this.shards[s].dumpConntrack(local, max)
      if (page.next >= 0) return { entries: page.entries, next: s * CURSOR_SPAN + page.next }
      if (page.entries.length > 0) return { entries: page.entries, next: s + 1 < this.shards.length ? (s + 1) * CURSOR_SPAN : -1 }
    }
    return { entries: [], next: -1 }
  }

  dumpNatPorts(): Record<string, unknown>[] {
    return this.shards.flatMap((h) => h.dumpNatPorts())
  }

  // The service maps are the same in every shard and affinity is one map they share: shard 0's.
  dumpServices(): Record<string, unknown>[] {
    return this.shards[0].dumpServices()
  }

  dumpBackends(): Record<string, unknown>[] {
    // Active connections are counted per shard (each shard's lc/wlc state).
    const all = this.shards.map((h) => h.dumpBackends())
    return all[0].map((b, i) => ({ ...b, activeConnections: all.reduce((n, d) => n + (d[i].activeConnections as number), 0) }))
  }

  dumpFrontends(): Record<string, unknown>[] {
    return this.shards[0].dumpFrontends()
  }

  dumpRevnat(): Record<string, unknown>[] {
    return this.shards[0].dumpRevnat()
  }

  dumpAffinity(): Record<string, unknown>[] {
    return this.shards[0].dumpAffinity()
  }

  maglevTable(serviceId: number): Uint32Array | null {
    return this.shards[0].maglevTable(serviceId)
  }

  mapInfos(): Record<string, unknown>[] {
    return this.mergeMaps((h) => h.mapInfos())
  }

  packetMapInfos(): Record<string, unknown>[] {
    return this.mergeMaps((h) => h.packetMapInfos())
  }

  /** Per-shard maps summed; the others as shard 0 has them, their memory and lookups summed. */
  private mergeMaps(f: (h: NativeHandle) => Record<string, unknown>[]): Record<string, unknown>[] {
    const all = this.shards.map((h) => f(h) as MapRecord[])
    return all[0].map((first, i) => {
      const m: MapRecord = { ...first, stats: { ...first.stats } }
      for (let s = 1; s < all.length; s++) {
        const o = all[s][i]
        if (PER_SHARD_MAPS.has(m.name)) {
          m.size += o.size
          m.capacity += o.capacity
        }
        if (m.name === 'affinity') continue  // one map, shared: every shard shows all of it
        m.bytes += o.bytes
        for (const [k, v] of Object.entries(o.stats)) m.stats[k] += v
      }
      return m
    })
  }

  counters(): Counters {
    return this.sumCounters((h) => h.counters())
  }

  packetCounters(): Counters & { counts: number[] } {
    return this.sumCounters((h) => h.packetCounters())
  }

  private sumCounters<C extends Counters & { counts?: number[] }>(f: (h: NativeHandle) => C): C {
    const all = this.shards.map(f)
    const out = structuredClone(all[0])
    for (const c of all.slice(1)) {
      out.packets += c.packets
      addInto(out.verdicts, c.verdicts)
      addInto(out.reasons, c.reasons)
      if (out.counts && c.counts) addInto(out.counts, c.counts)
    }
    return out
  }

  destroy(): void {
    for (const h of this.shards) h.destroy()
    this.set.destroy()
  }
}
