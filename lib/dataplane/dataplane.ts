// The Dataplane: a typed, validating wrapper over the native core. Everything is checked here
// before the core sees it, and the core applies an update entirely or not at all.
import { show } from '../util/show.js'
import { canonicalAddress, formatAddress } from '../util/address.js'
import { NativeStatus, REASONS, SCHEDULERS, TIMEOUT_ORDER, VERDICTS } from './codes.js'
import { nativeBinding, type NativeError, type NativeHandle, type NativeModule } from './native.js'
import { DEFAULT_CAPACITY, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_TIMEOUTS, GROWING_MAPS, MAX_CAPACITY } from './defaults.js'
import { SvcplaneError, SvcplaneRangeError, SvcplaneTypeError, type ErrorCode } from '../errors.js'
import { rejectUnknownKeys } from '../util/known-keys.js'
import type {
  BackendSpec,
  ConntrackTimeouts,
  DataplaneOptions,
  Decision,
  Flow,
  MapInfo,
  Reason,
  ServiceSpec,
  Verdict,
} from './types.js'
import { DECISION_STRIDE, DecisionBatch, encodeFlow, FLOW_STRIDE, FlowBatch } from './wire.js'
import {
  checkProcessOptions,
  encodePacketConfig,
  PACKET_COUNT_NAMES,
  PACKET_REASONS,
  type PacketConfig,
  type PacketCountName,
  type PacketCounters,
  type PacketReason,
  type ProcessOptions,
  type ResolvedPacketConfig,
} from './packets.js'
import { PACKET_PARAM, PacketCall } from './packet-call.js'
import { DECISION_V4_SLOTS, decideV4Error, TUPLE_V4_SLOTS } from './decide-v4.js'
import { exportFlows, importFlows, type FlowImport } from './flow-handoff.js'
import { BATCH_BACKEND_FIELD, BATCH_SERVICE_SLOT, checkId, UpdateBatch } from './update-batch.js'
import { checkThreads, ShardedHandle } from './threads.js'

export { DEFAULT_CAPACITY, DEFAULT_TIMEOUTS, INITIAL_CAPACITY, MAX_CAPACITY } from './defaults.js'

export interface FlowEntry {
  src: string
  sport: number
  dst: string
  dport: number
  protocol: string
  backendAddress: string
  backendPort: number
  serviceId: number
  backendId: number
  revNatId: number
  state: string
  created: number
  lastSeen: number
  expires: number
  packets: number
  bytes: number
  replyPackets: number
  replyBytes: number
  direction?: 'original' | 'reply'
}

export interface DataplaneCounters {
  packets: number
  verdicts: Record<Verdict, number>
  reasons: Record<Reason, number>
}

/** A bad value as an error message shows it: strings quoted, the rest as String() does. */

function checkNow(now: unknown): asserts now is number {
  if (typeof now !== 'number' || !Number.isFinite(now) || now < 0)
    throw new SvcplaneRangeError(`now must be a finite number of seconds >= 0, got ${show(now)}`)
}

function checkSeed(v: unknown, field: string): bigint | undefined {
  if (v === undefined) return undefined
  if (typeof v === 'bigint' && v >= 0n && v < 1n << 64n) return v
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v)
  throw new SvcplaneRangeError(`${field} must be a non-negative integer below 2^64, got ${show(v)}`)
}

function randomSeed(): bigint {
  const b = new BigUint64Array(1)
  require('node:crypto').getRandomValues(b)
  return b[0] === 0n ? 1n : b[0]
}

function isPrime(n: number): boolean {
  if (n < 2) return false
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false
  return true
}

/** The keys a Dataplane's options may have. */
export const DATAPLANE_OPTION_KEYS: readonly string[] = [
  'capacity', 'conntrackFullPolicy', 'affinityFullPolicy', 'timeouts', 'seed', 'maglevTableSize', 'maglevSeed', 'rngSeed', 'threads',
]

const STATUS_CODE: Record<number, ErrorCode> = {
  [NativeStatus.NotFound]: 'NOT_FOUND',
  [NativeStatus.InUse]: 'IN_USE',
  [NativeStatus.Conflict]: 'CONFLICT',
  [NativeStatus.Full]: 'FULL',
  [NativeStatus.Invalid]: 'INVALID',
}

/**
 * A refused control-path call as the error the API documents: a bad value or an unknown id is
 * a RangeError (code INVALID / NOT_FOUND), a map at its capacity a RangeError with code FULL
 * (which says how to raise it), a backend in use or a frontend owned by another service a
 * SvcplaneError (IN_USE / CONFLICT).
 */
function raise(err: NativeError, context: string): never {
  const [status, message] = err
  const code = STATUS_CODE[status] ?? 'INVALID'
  const map = code === 'FULL' ? /^(\w+) map/.exec(message)?.[1] : undefined
  const hint = map !== undefined && (GROWING_MAPS as readonly string[]).includes(map) ? `; raise capacity.${map}` : ''
  const text = `${context}: ${message}${hint}`
  if (code === 'IN_USE' || code === 'CONFLICT') throw new SvcplaneError(code, text)
  throw new SvcplaneRangeError(text, code)
}

export class Dataplane {
  readonly capacity: Readonly<Required<NonNullable<DataplaneOptions['capacity']>>>
  /** Packet threads (options.threads): 1, or the shards processPackets fans out over. */
  readonly threads: number
  private readonly h: NativeHandle
  private readonly native: NativeModule
  private readonly scratchIn = new Uint8Array(FLOW_STRIDE)
  private readonly scratchInView = new DataView(this.scratchIn.buffer)
  private readonly scratchOut = new Uint8Array(DECISION_STRIDE)
  private readonly scratchOutView = new DataView(this.scratchOut.buffer)
  /** The control path's encodings: one upsert at a time (single), or many (upsertBatch). */
  private readonly single: UpdateBatch
  private readonly batch: UpdateBatch
  /** decideV4's tuple (TUPLE_V4_SLOTS u32), registered with the addon once. */
  private readonly tupleV4 = new Uint32Array(TUPLE_V4_SLOTS)
  /** The last decideV4's decision, slots DECISION_V4 (overwritten by the next call). */
  readonly decisionV4 = new Uint32Array(DECISION_V4_SLOTS)
  /** processPackets' arguments, registered with the addon (it holds the last arrays given until the next call or destroy()). */
  private readonly packetCall: PacketCall
  /** Backend id -> "address" text, filled by the first decision to a backend, so later ones need not format bytes (upserts only drop an entry). */
  private readonly backendAddress = new Map<number, string>()
  private readonly zones = new Map<string, number>()
  private readonly zoneNames: string[] = ['']
  private timeouts: ConntrackTimeouts
  private packetConf: ResolvedPacketConfig = {
    nodeAddresses: [],
    podCIDRs: [],
    masqueradeAddresses: [],
    masqueradeAll: false,
    natPortRange: [1024, 65535],
    fragmentTimeout: 30,
  }

  constructor(options: DataplaneOptions = {}) {
    if (options === null || typeof options !== 'object') throw new SvcplaneTypeError(`options must be an object, got ${show(options)}`)
    rejectUnknownKeys('Dataplane options', options, DATAPLANE_OPTION_KEYS)
    this.threads = checkThreads(options.threads)
    if (options.capacity !== undefined && (options.capacity === null || typeof options.capacity !== 'object'))
      throw new SvcplaneTypeError(`capacity must be an object, got ${show(options.capacity)}`)
    rejectUnknownKeys('Dataplane options: capacity', options.capacity ?? {}, Object.keys(DEFAULT_CAPACITY))
    const cap = { ...DEFAULT_CAPACITY, ...(options.capacity ?? {}) }
    for (const [k, v] of Object.entries(cap)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CAPACITY)
        throw new SvcplaneRangeError(`capacity.${k} must be an integer 1..${MAX_CAPACITY}, got ${show(v)}`)
    }
    this.capacity = Object.freeze(cap)
    const policy = (v: unknown, field: string): number => {
      if (v === undefined || v === 'evict-oldest') return 0
      if (v === 'refuse') return 1
      throw new SvcplaneTypeError(`${field} must be 'evict-oldest' or 'refuse', got ${show(v)}`)
    }
    this.timeouts = this.mergeTimeouts(options.timeouts ?? {})
    const maglevTableSize = options.maglevTableSize ?? DEFAULT_MAGLEV_TABLE_SIZE
    if (!Number.isInteger(maglevTableSize) || maglevTableSize < 7 || maglevTableSize > 1_000_003 || !isPrime(maglevTableSize))
      throw new SvcplaneRangeError(`maglevTableSize must be a prime 7..1000003, got ${show(maglevTableSize)}`)
    const seed = checkSeed(options.seed, 'seed') ?? randomSeed()
    const config: Record<string, unknown> = {
      ...cap,
      conntrackPolicy: policy(options.conntrackFullPolicy, 'conntrackFullPolicy'),
      affinityPolicy: policy(options.affinityFullPolicy, 'affinityFullPolicy'),
      seed,
      rngSeed: checkSeed(options.rngSeed, 'rngSeed') ?? 0n,
      maglevTableSize,
      timeouts: this.timeoutArray(this.timeouts),
    }
    const maglevSeed = checkSeed(options.maglevSeed, 'maglevSeed')
    if (maglevSeed !== undefined) config.maglevSeed = maglevSeed
    this.native = nativeBinding()
    this.h = this.threads === 1
      ? this.native.create(config)
      : new ShardedHandle(this.native, config, this.threads, this.native.flowStride, this.native.decisionStride)
    this.h.setScratch(this.scratchIn, this.scratchOut)
    this.packetCall = new PacketCall(this.h)
    this.h.setScratchV4(this.tupleV4, this.decisionV4)
    const zoneId = (zone: string, backendId: number) => this.zoneId(zone, backendId)
    this.single = new UpdateBatch(this.native.frontendStride, this.native.cidrStride, zoneId)
    this.batch = new UpdateBatch(this.native.frontendStride, this.native.cidrStride, zoneId)
  }

  private mergeTimeouts(t: Partial<ConntrackTimeouts>): ConntrackTimeouts {
    if (t === null || typeof t !== 'object') throw new SvcplaneTypeError(`timeouts must be an object, got ${show(t)}`)
    rejectUnknownKeys('timeouts', t, TIMEOUT_ORDER)
    const out = { ...(this.timeouts ?? DEFAULT_TIMEOUTS) }
    for (const [k, v] of Object.entries(t)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1e9)
        throw new SvcplaneRangeError(`timeouts.${k} must be seconds in (0, 1e9], got ${show(v)}`)
      out[k as keyof ConntrackTimeouts] = v
    }
    return out
  }

  private timeoutArray(t: ConntrackTimeouts): Float64Array {
    const a = new Float64Array(TIMEOUT_ORDER.length + 1)
    TIMEOUT_ORDER.forEach((k, i) => (a[i + 1] = t[k]))
    return a
  }

  /** Current conntrack timeouts (seconds). */
  getTimeouts(): ConntrackTimeouts {
    return { ...this.timeouts }
  }

  /** Changes conntrack timeouts; flows pick the new value on their next packet. */
  setTimeouts(t: Partial<ConntrackTimeouts>): void {
    const merged = this.mergeTimeouts(t)
    this.h.setTimeouts(this.timeoutArray(merged))
    this.timeouts = merged
  }

  // ---------------------------------------------------------------- control path

  upsertBackend(spec: BackendSpec): void {
    const one = this.single
    one.clear()
    one.addBackend(spec)
    const v = one.backendFields(0)
    const F = BATCH_BACKEND_FIELD
    const err = this.h.upsertBackend(spec.id, one.backendAddress(0), spec.port, v.getUint8(F.state), v.getUint32(F.weight, true), v.getUint8(F.nodeLocal) === 1, v.getUint16(F.zone, true))
    if (err) raise(err, `backend ${spec.id}`)
    this.backendAddress.delete(spec.id)
  }

  /** The zone's number for the core, interned on first use. */
  private zoneId(zone: string, backendId: number): number {
    let id = this.zones.get(zone) ?? 0
    if (!id) {
      if (this.zoneNames.length > 65535) throw new SvcplaneRangeError(`backend ${backendId}: too many distinct zones`)
      id = this.zoneNames.push(zone) - 1
      this.zones.set(zone, id)
    }
    return id
  }

  deleteBackend(id: number): void {
    checkId(id, 'backend id')
    const err = this.h.deleteBackend(id)
    if (err) raise(err, `backend ${id}`)
    this.backendAddress.delete(id)
  }

  upsertService(spec: ServiceSpec): void {
    const one = this.single
    one.clear()
    one.addService(spec)
    const slots = one.services
    const err = this.h.upsertService(
      spec.id,
      slots[BATCH_SERVICE_SLOT.scheduler],
      one.affinity[0],
      slots[BATCH_SERVICE_SLOT.emptyVerdict],
      one.frontends.subarray(0, slots[BATCH_SERVICE_SLOT.frontends] * this.native.frontendStride),
      one.backendIds.subarray(0, slots[BATCH_SERVICE_SLOT.backends]),
      one.ranges.subarray(0, slots[BATCH_SERVICE_SLOT.ranges] * this.native.cidrStride),
    )
    if (err) raise(err, `service ${spec.id}`)
  }

  /**
   * Upserts many backends, then many services, with one native call: what upsertBackend and
   * upsertService do one by one, in this order (a service may list backends of the same
   * update; a frontend one service gives up is free for the services after it). All or
   * nothing: a bad spec or a refusal (FULL, CONFLICT, NOT_FOUND, as the single upsert would
   * say it) throws and changes nothing.
   */
  upsertBatch(update: { backends?: readonly BackendSpec[]; services?: readonly ServiceSpec[] }): void {
    if (update === null || typeof update !== 'object') throw new SvcplaneTypeError(`update must be an object, got ${show(update)}`)
    rejectUnknownKeys('upsertBatch', update, ['backends', 'services'])
    const backends = update.backends ?? []
    const services = update.services ?? []
    if (!Array.isArray(backends)) throw new SvcplaneTypeError(`upsertBatch: backends must be an array, got ${show(backends)}`)
    if (!Array.isArray(services)) throw new SvcplaneTypeError(`upsertBatch: services must be an array, got ${show(services)}`)
    const batch = this.beginBatch()
    for (const b of backends) batch.addBackend(b)
    for (const sv of services) batch.addService(sv)
    this.sendBatch()
  }

  /**
   * upsertBatch in two steps, for a caller that encodes its upserts as it makes them (the
   * native mode's sync) instead of collecting spec arrays first: beginBatch() gives the
   * cleared encoder (addBackend / addService check each spec as upsertBatch does), sendBatch()
   * applies what it holds, all or nothing, with upsertBatch's errors.
   */
  beginBatch(): Pick<UpdateBatch, 'addBackend' | 'addService'> {
    this.batch.clear()
    return this.batch
  }

  sendBatch(): void {
    const batch = this.batch
    const err = this.h.upsertBatch(batch, batch.backendCount, batch.serviceCount)
    if (err) raise([err[0], err[1]], err[2] === 1 ? `service ${batch.serviceId(err[3])}` : `backend ${batch.backendId(err[3])}`)
    if (this.backendAddress.size > 0) for (let i = 0; i < batch.backendCount; i++) this.backendAddress.delete(batch.backendId(i))
  }

  deleteService(id: number): void {
    checkId(id, 'service id')
    const err = this.h.deleteService(id)
    if (err) raise(err, `service ${id}`)
  }

  /**
   * Sizes the growing maps (services, frontends, backends) for at least this many entries at
   * once, instead of doubling as upserts arrive; never shrinks them. A count above the map's
   * `capacity` ceiling is a RangeError with code FULL and changes nothing. Flow state is not
   * touched.
   */
  reserve(counts: { services?: number; frontends?: number; backends?: number }): void {
    if (counts === null || typeof counts !== 'object') throw new SvcplaneTypeError(`reserve: counts must be an object, got ${show(counts)}`)
    rejectUnknownKeys('reserve', counts, GROWING_MAPS)
    const n = (k: (typeof GROWING_MAPS)[number]): number => {
      const v = counts[k] ?? 0
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new SvcplaneRangeError(`reserve: ${k} must be an integer >= 0, got ${show(v)}`)
      return Math.min(v, 0xffffffff)
    }
    const services = n('services'), frontends = n('frontends'), backends = n('backends')
    const err = this.h.reserve(services, frontends, backends)
    if (err) raise(err, 'reserve')
  }

  // ---------------------------------------------------------------- packet path

  private rememberAddress(backendId: number, address: string): string {
    this.backendAddress.set(backendId, address)
    return address
  }

  /** Decides one flow (one packet of it). `now` is the caller's monotonic clock in seconds. */
  decide(flow: Flow, now: number): Decision {
    checkNow(now)
    encodeFlow(flow, this.scratchIn, this.scratchInView, 0)
    this.h.decideScratch(now)
    const o = this.scratchOut
    const verdict = VERDICTS[o[0]]
    const backendId = this.scratchOutView.getUint32(12, true)
    return {
      verdict,
      reason: REASONS[o[1]],
      serviceId: this.scratchOutView.getUint32(8, true),
      backendId,
      address:
        verdict === 'forward'
          ? (this.backendAddress.get(backendId) ?? this.rememberAddress(backendId, formatAddress(o, 16)))
          : verdict === 'reply'
            ? formatAddress(o, 16)
            : '',
      port: this.scratchOutView.getUint16(4, true),
      established: (o[2] & 1) !== 0,
      affinityHit: (o[2] & 2) !== 0,
    }
  }

  /**
   * Decides one IPv4 flow given as numbers: addresses as uint32 in host order (10.0.0.1 is
   * 0x0a000001, see ipv4ToUint32), ports, protocol number (6, 17, 132), the caller's clock in
   * seconds, and optionally TCP flags and the scope (default external, as decide()). Returns
   * the verdict code (VERDICTS index) and fills `decisionV4` (slots DECISION_V4: reason,
   * flags, serviceId, backendId, port, address as uint32). The same decision as decide(); no
   * string is parsed and nothing is allocated.
   */
  decideV4(src: number, sport: number, dst: number, dport: number, protocol: number, now: number, tcpFlags = 0, internal = false): number {
    // One cheap test of everything (x >>> 0 === x holds only for integers 0..2^32-1, x & m === x
    // only for integers 0..m); the error names the argument.
    if (src >>> 0 !== src || dst >>> 0 !== dst || (sport & 0xffff) !== sport || (dport & 0xffff) !== dport ||
        (protocol !== 6 && protocol !== 17 && protocol !== 132) || typeof now !== 'number' || !(now >= 0 && now <= Number.MAX_VALUE) ||
        (tcpFlags & 0xff) !== tcpFlags || (internal !== true && internal !== false))
      throw decideV4Error(src, sport, dst, dport, protocol, now, tcpFlags, internal)
    const t = this.tupleV4
    t[0] = src
    t[1] = dst
    t[2] = sport | (dport << 16)
    t[3] = protocol | (internal ? 0 : 0x100) | (tcpFlags << 16)
    this.h.decideV4(now)
    return this.decisionV4[0]
  }

  /** Decides flows[0 .. flows.length) into out; returns the count. No object per flow. */
  decideBatch(flows: FlowBatch, now: number, out: DecisionBatch): number {
    if (!(flows instanceof FlowBatch)) throw new SvcplaneTypeError(`flows must be a FlowBatch, got ${show(flows)}`)
    if (!(out instanceof DecisionBatch)) throw new SvcplaneTypeError(`out must be a DecisionBatch, got ${show(out)}`)
    checkNow(now)
    if (out.capacity < flows.length) throw new SvcplaneRangeError(`out holds ${out.capacity} decisions, flows has ${flows.length}`)
    return this.h.decideBatch(flows.buffer, flows.length, now, out.buffer)
  }

  // ---------------------------------------------------------------- packets

  /**
   * Node-level facts the packet path needs (what is a pod, what is this node, what masquerade
   * rewrites sources to). Replaces the previous configuration as a whole.
   */
  configurePackets(config: PacketConfig): void {
    const c = encodePacketConfig(config, this.native.cidrStride)
    const [lo, hi] = c.resolved.natPortRange
    const err = this.h.setPacketConfig(c.nodes, c.cidrs, c.masq4, c.masq6, c.resolved.masqueradeAll, lo, hi, c.resolved.fragmentTimeout)
    if (err) raise(err, 'packet config')
    this.packetConf = c.resolved
  }

  /** The packet configuration in force (canonical addresses). */
  packetConfig(): ResolvedPacketConfig {
    return structuredClone(this.packetConf)
  }

  /**
   * Parses, decides and rewrites `count` packets of `buffer` in place: packet i is
   * buffer[offsets[i] .. offsets[i] + lengths[i]). verdicts[i] gets a PACKET_VERDICT code and
   * reasons[i] a PACKET_REASONS index. No object is created per packet. Returns `count`.
   */
  processPackets(
    buffer: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    count: number,
    options: ProcessOptions,
    verdicts: Uint8Array,
    reasons: Uint8Array,
  ): number {
    if (!(buffer instanceof Uint8Array)) throw new SvcplaneTypeError('buffer must be a Uint8Array (or Buffer)')
    if (!(offsets instanceof Uint32Array)) throw new SvcplaneTypeError('offsets must be a Uint32Array')
    if (!(lengths instanceof Uint32Array)) throw new SvcplaneTypeError('lengths must be a Uint32Array')
    if (!(verdicts instanceof Uint8Array)) throw new SvcplaneTypeError('verdicts must be a Uint8Array')
    if (!(reasons instanceof Uint8Array)) throw new SvcplaneTypeError('reasons must be a Uint8Array')
    if (!Number.isInteger(count) || count < 0) throw new SvcplaneRangeError(`count must be an integer >= 0, got ${show(count)}`)
    for (const [name, a] of [['offsets', offsets], ['lengths', lengths], ['verdicts', verdicts], ['reasons', reasons]] as const)
      if (a.length < count) throw new SvcplaneRangeError(`${name} holds ${a.length} entries, count is ${count}`)
    const o = checkProcessOptions(options)
    const r = o.replies
    if (r !== undefined && r.offsets.length < count) throw new SvcplaneRangeError(`options.replies holds ${r.offsets.length} packets, count is ${count}`)
    const call = this.packetCall
    call.use({
      buffer, offsets, lengths, verdicts, reasons,
      replies: r ? r.buffer : null, replyOffsets: r ? r.offsets : null, replyLengths: r ? r.lengths : null,
    })
    const p = call.params
    p[PACKET_PARAM.count] = count
    p[PACKET_PARAM.direction] = o.direction
    p[PACKET_PARAM.now] = o.now
    p[PACKET_PARAM.link] = o.link
    p[PACKET_PARAM.fromNode] = o.fromNode ? 1 : 0
    p[PACKET_PARAM.reject] = o.reject
    const used = this.h.processPackets()
    if (r) r.used = used
    return count
  }

  /** Counters of the packet path: verdicts, reasons (all packet reasons) and per-kind counts. */
  packetCounters(): PacketCounters {
    const c = this.h.packetCounters()
    return {
      packets: c.packets,
      verdicts: Object.fromEntries(VERDICTS.map((v, i) => [v, c.verdicts[i]])) as Record<Verdict, number>,
      reasons: Object.fromEntries(PACKET_REASONS.map((r, i) => [r, c.reasons[i]])) as Record<PacketReason, number>,
      counts: Object.fromEntries(PACKET_COUNT_NAMES.map((n, i) => [n, c.counts[i]])) as Record<PacketCountName, number>,
    }
  }

  /** The packet path's maps: `nat` (masquerade ports) and `fragments`. */
  packetMaps(): MapInfo[] {
    return this.h.packetMapInfos() as unknown as MapInfo[]
  }

  /** The NAT port map: which node address and port each masqueraded flow took towards which backend. */
  natPorts(): Array<{ address: string; port: number; peerAddress: string; peerPort: number; protocol: string; client?: string; clientPort?: number }> {
    return this.h.dumpNatPorts() as never
  }

  // ---------------------------------------------------------------- conntrack

  /** The flow a tuple belongs to (either direction), without touching it. */
  lookupFlow(flow: Flow): FlowEntry | null {
    encodeFlow(flow, this.scratchIn, this.scratchInView, 0)
    return this.h.peekFlowScratch() as FlowEntry | null
  }

  /** Iterates the conntrack table (like `conntrack -L`), in pages so huge tables stay cheap. */
  *flows(pageSize = 4096): IterableIterator<FlowEntry> {
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_CAPACITY) throw new SvcplaneRangeError(`pageSize must be an integer 1..${MAX_CAPACITY}, got ${show(pageSize)}`)
    let next = 0
    while (next >= 0) {
      const page = this.h.dumpConntrack(next, pageSize)
      yield* page.entries as unknown as FlowEntry[]
      next = page.next
    }
  }

  deleteFlowsByBackend(id: number): number {
    checkId(id, 'backend id')
    return this.h.deleteFlowsByBackend(id)
  }

  deleteFlowsByService(id: number): number {
    checkId(id, 'service id')
    return this.h.deleteFlowsByService(id)
  }

  flushConntrack(): number {
    return this.h.flushConntrack()
  }

  /**
   * The tracked flows (tuples both ways, state, remaining timeout, counters, NAT port) and
   * session-affinity entries live at `now`, as a versioned blob for importFlows.
   */
  exportFlows(now: number): Uint8Array {
    this.singleThreaded('exportFlows')
    return exportFlows(this.native, this.h, now)
  }

  /**
   * Takes over the flows of an exportFlows blob (another process's, ids need not match): call
   * after programming the services and backends. Each flow's service and backend are found
   * again from its tuples; one whose service or backend is gone is dropped and counted. A bad
   * blob throws a RangeError and changes nothing.
   */
  importFlows(blob: Uint8Array, now: number): FlowImport {
    this.singleThreaded('importFlows')
    return importFlows(this.native, this.h, blob, now)
  }

  /** The flow handoff covers one shard: a threaded dataplane's flows live in several. */
  private singleThreaded(call: string): void {
    if (this.threads !== 1)
      throw new SvcplaneError('WRONG_STATE', `${call}: the flow handoff serves a dataplane of one thread, this one has ${this.threads}`)
  }

  /** Incremental garbage collection: examines up to `budget` slots of conntrack and of affinity. */
  gc(now: number, budget = 4096): { flows: number; affinity: number } {
    checkNow(now)
    if (!Number.isInteger(budget) || budget < 1 || budget > MAX_CAPACITY) throw new SvcplaneRangeError(`budget must be 1..${MAX_CAPACITY}, got ${show(budget)}`)
    return this.h.gc(now, budget)
  }

  // ---------------------------------------------------------------- inspection

  maps(): MapInfo[] {
    return this.h.mapInfos() as unknown as MapInfo[]
  }

  map(name: string): MapInfo {
    const m = this.maps().find((x) => x.name === name)
    if (!m) throw new SvcplaneTypeError(`no map named ${show(name)} (maps: ${this.maps().map((x) => x.name).join(', ')})`)
    return m
  }

  services(): Array<{
    id: number
    scheduler: string
    affinityTimeout: number
    emptyVerdict: 'reject' | 'drop'
    backends: number[]
    activeBackends: number[]
    frontends: Array<{ address: string; port: number; protocol: string; scope: string }>
    sourceRanges: string[]
  }> {
    return this.h.dumpServices().map((s) => ({ ...s, scheduler: SCHEDULERS[s.scheduler as number] })) as never
  }

  backends(): Array<{
    id: number
    address: string
    port: number
    state: string
    weight: number
    nodeLocal: boolean
    zone: string
    activeConnections: number
    services: number[]
  }> {
    return this.h.dumpBackends().map((b) => ({ ...b, zone: this.zoneNames[b.zone as number] ?? '' })) as never
  }

  frontends(): Array<{
    address: string
    port: number
    protocol: string
    scope: string
    serviceId: number
    revNatId: number
    checkSourceRanges: boolean
  }> {
    return this.h.dumpFrontends() as never
  }

  revnat(): Array<{ id: number; address: string; port: number }> {
    return this.h.dumpRevnat() as never
  }

  affinity(): Array<{ client: string; serviceId: number; backendId: number; lastUsed: number }> {
    return this.h.dumpAffinity() as never
  }

  /**
   * The service's lookup table as backend ids, one per slot: Maglev's M slots, or the 256
   * buckets of sh and dh (IPVS's IP_VS_SH_TAB_SIZE). Null for services whose scheduler has no
   * table (random, rr, wrr, lc, wlc) and for unknown services.
   */
  maglevTable(serviceId: number): Uint32Array | null {
    checkId(serviceId, 'service id')
    const t = this.h.maglevTable(serviceId)
    return t && t.length ? t : null
  }

  counters(): DataplaneCounters {
    const c = this.h.counters()
    const verdicts = Object.fromEntries(VERDICTS.map((v, i) => [v, c.verdicts[i]])) as Record<Verdict, number>
    const reasons = Object.fromEntries(REASONS.map((r, i) => [r, c.reasons[i]])) as Record<Reason, number>
    return { packets: c.packets, verdicts, reasons }
  }

  /** Frees the native maps now rather than at garbage collection. Later calls throw. */
  destroy(): void {
    this.h.destroy()
  }
}

export { canonicalAddress }
