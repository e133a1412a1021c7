// Backend and service upserts encoded for one native call (Dataplane.upsertBatch), and the
// same encoding for the single upserts: a struct of typed arrays built once per Dataplane and
// grown on demand (as PacketCall is for processPackets), so programming 10,000 services makes
// no per-object garbage and crosses Node-API once. Layouts: native/addon/wire.h.
import { show } from '../util/show.js'
import { parseAddressInto, parseCidr } from '../util/address.js'
import { BACKEND_STATES, PROTOCOL_NUMBER, SCHEDULERS } from './codes.js'
import { MASQUERADE_POLICIES } from './packets.js'
import { checkPort } from './wire.js'
import { SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import type { BackendSpec, ServiceSpec } from './types.js'

const MAX_ID = 0xffffffff

/** Bytes per backend record, and u32 slots per service record (wire.h; test/native/tables.test.ts). */
export const BATCH_BACKEND_STRIDE = 32
/** Byte offsets in a backend record after its 16 address bytes (wire.h), little-endian. */
export const BATCH_BACKEND_FIELD = Object.freeze({ id: 16, port: 20, state: 22, nodeLocal: 23, weight: 24, zone: 28, pad: 30 } as const)
export const BATCH_SERVICE_SLOT = Object.freeze({ id: 0, scheduler: 1, emptyVerdict: 2, frontends: 3, backends: 4, ranges: 5 } as const)
export const BATCH_SERVICE_SLOTS = Object.keys(BATCH_SERVICE_SLOT).length

/** A port 1..65535 (checkPort says what is wrong otherwise). */
function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535
}

export function checkId(id: unknown, field: string): asserts id is number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_ID)
    throw new SvcplaneRangeError(`${field} must be an integer 1..4294967295, got ${show(id)}`)
}

/** Room for `n` more elements of `T` after `used`, doubling the array (contents kept). */
function grown<T extends Uint8Array | Uint32Array | Float64Array>(a: T, used: number, n: number, make: (len: number) => T): T {
  if (used + n <= a.length) return a
  const b = make(Math.max(used + n, a.length * 2))
  b.set(a.subarray(0, used) as never)
  return b
}

export class UpdateBatch {
  /** BATCH_BACKEND_STRIDE bytes per backend. */
  backends = new Uint8Array(64 * BATCH_BACKEND_STRIDE)
  private backendsView = new DataView(this.backends.buffer)
  /** BATCH_SERVICE_SLOTS u32 per service. */
  services = new Uint32Array(64 * BATCH_SERVICE_SLOTS)
  /** Each service's affinity timeout in seconds. */
  affinity = new Float64Array(64)
  /** Every service's frontends, in service order (frontendStride bytes each). */
  frontends = new Uint8Array(1024)
  private frontendsView = new DataView(this.frontends.buffer)
  /** Every service's backend ids, in service order. */
  backendIds = new Uint32Array(256)
  /** Every service's source ranges, in service order (cidrStride bytes each). */
  ranges = new Uint8Array(256)
  backendCount = 0
  serviceCount = 0
  private frontendCount = 0
  private idCount = 0
  private rangeCount = 0

  constructor(
    private readonly frontendStride: number,
    private readonly cidrStride: number,
    /** The zone's number for the core (interned by the Dataplane); backendId names the backend in its error. */
    private readonly zoneId: (zone: string, backendId: number) => number,
  ) {}

  clear(): void {
    this.backendCount = this.serviceCount = this.frontendCount = this.idCount = this.rangeCount = 0
  }

  /** Checks one backend as upsertBackend documents and appends it; a bad one throws, appending nothing. */
  addBackend(spec: BackendSpec): void {
    if (spec === null || typeof spec !== 'object') throw new SvcplaneTypeError(`backend must be an object, got ${show(spec)}`)
    checkId(spec.id, 'backend.id')
    // Error texts are built only on the error path: a full sync adds tens of thousands of records.
    const off = this.backendCount * BATCH_BACKEND_STRIDE
    if (off + BATCH_BACKEND_STRIDE > this.backends.length) {
      this.backends = grown(this.backends, off, BATCH_BACKEND_STRIDE, (n) => new Uint8Array(n))
      this.backendsView = new DataView(this.backends.buffer, this.backends.byteOffset, this.backends.byteLength)
    }
    const b = this.backends
    if (!parseAddressInto(spec.address, b, off)) throw new SvcplaneTypeError(`backend ${spec.id}: address is not an IP address: ${show(spec.address)}`)
    if (!isPort(spec.port)) checkPort(spec.port, `backend ${spec.id}: port`)
    const state = spec.state === undefined || spec.state === 'active' ? 0 : BACKEND_STATES.indexOf(spec.state)
    if (state < 0) throw new SvcplaneTypeError(`backend ${spec.id}: state must be one of ${BACKEND_STATES.join(', ')}, got ${show(spec.state)}`)
    const weight = spec.weight ?? 1
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535) throw new SvcplaneRangeError(`backend ${spec.id}: weight must be 1..65535, got ${show(weight)}`)
    if (spec.nodeLocal !== undefined && typeof spec.nodeLocal !== 'boolean') throw new SvcplaneTypeError(`backend ${spec.id}: nodeLocal must be a boolean, got ${show(spec.nodeLocal)}`)
    if (spec.zone !== undefined && typeof spec.zone !== 'string') throw new SvcplaneTypeError(`backend ${spec.id}: zone must be a string, got ${show(spec.zone)}`)
    const zone = spec.zone ? this.zoneId(spec.zone, spec.id) : 0
    const v = this.backendsView
    const F = BATCH_BACKEND_FIELD
    v.setUint32(off + F.id, spec.id, true)
    v.setUint16(off + F.port, spec.port, true)
    v.setUint8(off + F.state, state)
    v.setUint8(off + F.nodeLocal, spec.nodeLocal ? 1 : 0)
    v.setUint32(off + F.weight, weight, true)
    v.setUint16(off + F.zone, zone, true)
    v.setUint16(off + F.pad, 0, true)
    this.backendCount++
  }

  /** Checks one service as upsertService documents and appends it; a bad one throws, appending nothing. */
  addService(spec: ServiceSpec): void {
    if (spec === null || typeof spec !== 'object') throw new SvcplaneTypeError(`service must be an object, got ${show(spec)}`)
    checkId(spec.id, 'service.id')
    if (!Array.isArray(spec.frontends)) throw new SvcplaneTypeError(`service ${spec.id}: frontends must be an array, got ${show(spec.frontends)}`)
    if (!Array.isArray(spec.backends)) throw new SvcplaneTypeError(`service ${spec.id}: backends must be an array of backend ids, got ${show(spec.backends)}`)
    const scheduler = SCHEDULERS.indexOf(spec.scheduler ?? 'random')
    if (scheduler < 0) throw new SvcplaneTypeError(`service ${spec.id}: scheduler must be one of ${SCHEDULERS.join(', ')}, got ${show(spec.scheduler)}`)
    const affinity = spec.affinityTimeout ?? 0
    if (typeof affinity !== 'number' || !Number.isFinite(affinity) || affinity < 0 || affinity > 86400 * 365)
      throw new SvcplaneRangeError(`service ${spec.id}: affinityTimeout must be seconds 0..31536000, got ${show(affinity)}`)
    const empty = spec.emptyVerdict ?? 'reject'
    if (empty !== 'reject' && empty !== 'drop') throw new SvcplaneTypeError(`service ${spec.id}: emptyVerdict must be 'reject' or 'drop', got ${show(empty)}`)

    const fs = this.frontendStride
    if ((this.frontendCount + spec.frontends.length) * fs > this.frontends.length) {
      this.frontends = grown(this.frontends, this.frontendCount * fs, spec.frontends.length * fs, (n) => new Uint8Array(n))
      this.frontendsView = new DataView(this.frontends.buffer, this.frontends.byteOffset, this.frontends.byteLength)
    }
    const fe = this.frontends
    const feView = this.frontendsView
    for (let i = 0; i < spec.frontends.length; i++) {
      const f = spec.frontends[i]
      if (f === null || typeof f !== 'object') throw new SvcplaneTypeError(`service ${spec.id}: frontends[${i}] must be an object, got ${show(f)}`)
      const off = (this.frontendCount + i) * fs
      if (!parseAddressInto(f.address, fe, off)) throw new SvcplaneTypeError(`service ${spec.id}: frontends[${i}].address is not an IP address: ${show(f.address)}`)
      if (!isPort(f.port)) checkPort(f.port, `service ${spec.id}: frontends[${i}].port`)
      const proto = PROTOCOL_NUMBER[f.protocol]
      if (proto === undefined) throw new SvcplaneTypeError(`service ${spec.id}: frontends[${i}].protocol must be TCP, UDP or SCTP, got ${show(f.protocol)}`)
      if (f.scope !== 'internal' && f.scope !== 'external')
        throw new SvcplaneTypeError(`service ${spec.id}: frontends[${i}].scope must be 'internal' or 'external', got ${show(f.scope)}`)
      const masq = f.masquerade === undefined ? MASQUERADE_POLICIES.indexOf('never') : MASQUERADE_POLICIES.indexOf(f.masquerade)
      if (masq < 0) throw new SvcplaneTypeError(`service ${spec.id}: frontends[${i}].masquerade must be one of ${MASQUERADE_POLICIES.join(', ')}, got ${show(f.masquerade)}`)
      feView.setUint16(off + 16, f.port, true)
      fe[off + 18] = proto
      fe[off + 19] = f.scope === 'external' ? 1 : 0
      fe[off + 20] = f.checkSourceRanges ? 1 : 0
      fe[off + 21] = masq
    }
    this.backendIds = grown(this.backendIds, this.idCount, spec.backends.length, (n) => new Uint32Array(n))
    for (let i = 0; i < spec.backends.length; i++) {
      const id = spec.backends[i]
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_ID) checkId(id, `service ${spec.id}: backends[${i}]`)
      this.backendIds[this.idCount + i] = id
    }
    const ranges = spec.sourceRanges ?? []
    if (!Array.isArray(ranges)) throw new SvcplaneTypeError(`service ${spec.id}: sourceRanges must be an array of CIDRs, got ${show(ranges)}`)
    const cs = this.cidrStride
    if (ranges.length > 0) this.ranges = grown(this.ranges, this.rangeCount * cs, ranges.length * cs, (n) => new Uint8Array(n))
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]
      const c = parseCidr(typeof r === 'string' ? r.trim() : r)
      if (!c) throw new SvcplaneTypeError(`service ${spec.id}: sourceRanges[${i}] is not a CIDR: ${show(r)}`)
      this.ranges.set(c.bytes, (this.rangeCount + i) * cs)
      this.ranges[(this.rangeCount + i) * cs + 16] = c.bits
    }
    this.services = grown(this.services, this.serviceCount * BATCH_SERVICE_SLOTS, BATCH_SERVICE_SLOTS, (n) => new Uint32Array(n))
    this.affinity = grown(this.affinity, this.serviceCount, 1, (n) => new Float64Array(n))
    const s = this.serviceCount * BATCH_SERVICE_SLOTS
    this.services[s + BATCH_SERVICE_SLOT.id] = spec.id
    this.services[s + BATCH_SERVICE_SLOT.scheduler] = scheduler
    this.services[s + BATCH_SERVICE_SLOT.emptyVerdict] = empty === 'drop' ? 4 : 3
    this.services[s + BATCH_SERVICE_SLOT.frontends] = spec.frontends.length
    this.services[s + BATCH_SERVICE_SLOT.backends] = spec.backends.length
    this.services[s + BATCH_SERVICE_SLOT.ranges] = ranges.length
    this.affinity[this.serviceCount] = affinity
    this.frontendCount += spec.frontends.length
    this.idCount += spec.backends.length
    this.rangeCount += ranges.length
    this.serviceCount++
  }

  /** Backend i's address bytes (16, IPv4-mapped for IPv4). */
  backendAddress(i: number): Uint8Array {
    return this.backends.subarray(i * BATCH_BACKEND_STRIDE, i * BATCH_BACKEND_STRIDE + 16)
  }

  /** Backend i's record past its address (BATCH_BACKEND_FIELD offsets). */
  backendFields(i: number): DataView {
    return new DataView(this.backends.buffer, this.backends.byteOffset + i * BATCH_BACKEND_STRIDE, BATCH_BACKEND_STRIDE)
  }

  /** The id of backend i / service i. */
  backendId(i: number): number {
    // Read by hand, not through a DataView: upsertBatch reads every backend's id once per sync.
    const b = this.backends
    const o = i * BATCH_BACKEND_STRIDE + BATCH_BACKEND_FIELD.id
    return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
  }

  serviceId(i: number): number {
    return this.services[i * BATCH_SERVICE_SLOTS + BATCH_SERVICE_SLOT.id]
  }
}
