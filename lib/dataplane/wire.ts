// Caller-owned batch buffers in the layouts of native/addon/wire.h. A proxy encodes its flows
// into a FlowBatch once (or rewrites fields in place), and reads decisions from a
// DecisionBatch, without one JS object per flow.
import { show } from '../util/show.js'
import { SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import { formatAddress, parseAddressInto } from '../util/address.js'
import { PROTOCOL_NUMBER, REASONS, VERDICTS } from './codes.js'
import type { Flow, Reason, Verdict } from './types.js'

export const FLOW_STRIDE = 48
export const DECISION_STRIDE = 32

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const

/** Writes one flow at byte offset off; throws a TypeError/RangeError naming the bad field. */
export function encodeFlow(flow: Flow, buf: Uint8Array, view: DataView, off: number, field = 'flow'): void {
  if (flow === null || typeof flow !== 'object') throw new SvcplaneTypeError(`${field} must be an object, got ${show(flow)}`)
  if (!parseAddressInto(flow.src, buf, off)) throw new SvcplaneTypeError(`${field}.src is not an IP address: ${show(flow.src)}`)
  if (!parseAddressInto(flow.dst, buf, off + 16))
    throw new SvcplaneTypeError(`${field}.dst is not an IP address: ${show(flow.dst)}`)
  checkPort(flow.sport, `${field}.sport`, true)
  checkPort(flow.dport, `${field}.dport`, true)
  const proto = PROTOCOL_NUMBER[flow.protocol]
  if (proto === undefined) throw new SvcplaneTypeError(`${field}.protocol must be TCP, UDP or SCTP, got ${show(flow.protocol)}`)
  const scope = flow.scope ?? 'external'
  if (scope !== 'internal' && scope !== 'external')
    throw new SvcplaneTypeError(`${field}.scope must be 'internal' or 'external', got ${show(flow.scope)}`)
  const flags = flow.tcpFlags ?? 0
  if (!Number.isInteger(flags) || flags < 0 || flags > 255) throw new SvcplaneRangeError(`${field}.tcpFlags must be 0..255, got ${show(flags)}`)
  const bytes = flow.bytes ?? 0
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > 0xffffffff)
    throw new SvcplaneRangeError(`${field}.bytes must be an integer 0..2^32-1, got ${show(bytes)}`)
  view.setUint16(off + 32, flow.sport, true)
  view.setUint16(off + 34, flow.dport, true)
  buf[off + 36] = proto
  buf[off + 37] = scope === 'external' ? 1 : 0
  buf[off + 38] = flags
  buf[off + 39] = 0
  view.setUint32(off + 40, bytes, true)
  view.setUint32(off + 44, 0, true)
}

export function checkPort(port: unknown, field: string, allowZero = false): asserts port is number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535)
    throw new SvcplaneRangeError(`${field} must be an integer ${allowZero ? 0 : 1}..65535, got ${show(port)}`)
}

/** N flow tuples in one buffer. */
export class FlowBatch {
  readonly capacity: number
  readonly buffer: Uint8Array
  private readonly view: DataView
  /** How many flows are filled in (what decideBatch processes). */
  length = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 24)
      throw new SvcplaneRangeError(`capacity must be an integer 1..16777216, got ${show(capacity)}`)
    this.capacity = capacity
    this.buffer = new Uint8Array(capacity * FLOW_STRIDE)
    this.view = new DataView(this.buffer.buffer)
  }

  static from(flows: Flow[]): FlowBatch {
    const b = new FlowBatch(Math.max(1, flows.length))
    for (const f of flows) b.push(f)
    return b
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.capacity) throw new SvcplaneRangeError(`index must be 0..${this.capacity - 1}, got ${show(i)}`)
  }

  /** Writes flow i (0 <= i < capacity). */
  set(i: number, flow: Flow): void {
    this.checkIndex(i)
    encodeFlow(flow, this.buffer, this.view, i * FLOW_STRIDE, `flows[${i}]`)
    if (i >= this.length) this.length = i + 1
  }

  push(flow: Flow): void {
    this.set(this.length, flow)
  }

  /** Rewrites only the TCP flags of flow i (e.g. SYN, then ACK), in place. */
  setTcpFlags(i: number, flags: number): void {
    this.checkIndex(i)
    if (!Number.isInteger(flags) || flags < 0 || flags > 255) throw new SvcplaneRangeError(`flows[${i}].tcpFlags must be 0..255, got ${show(flags)}`)
    this.buffer[i * FLOW_STRIDE + 38] = flags
  }

  /** Rewrites only the source port of flow i, in place (cheap new flows for benchmarks). */
  setSourcePort(i: number, port: number): void {
    this.checkIndex(i)
    checkPort(port, `flows[${i}].sport`, true)
    this.view.setUint16(i * FLOW_STRIDE + 32, port, true)
  }
}

/** N decisions, read through accessors. */
export class DecisionBatch {
  readonly capacity: number
  readonly buffer: Uint8Array
  private readonly view: DataView

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 24)
      throw new SvcplaneRangeError(`capacity must be an integer 1..16777216, got ${show(capacity)}`)
    this.capacity = capacity
    this.buffer = new Uint8Array(capacity * DECISION_STRIDE)
    this.view = new DataView(this.buffer.buffer)
  }

  verdictCode(i: number): number {
    return this.buffer[i * DECISION_STRIDE]
  }
  verdict(i: number): Verdict {
    return VERDICTS[this.buffer[i * DECISION_STRIDE]]
  }
  reason(i: number): Reason {
    return REASONS[this.buffer[i * DECISION_STRIDE + 1]]
  }
  established(i: number): boolean {
    return (this.buffer[i * DECISION_STRIDE + 2] & 1) !== 0
  }
  affinityHit(i: number): boolean {
    return (this.buffer[i * DECISION_STRIDE + 2] & 2) !== 0
  }
  port(i: number): number {
    return this.view.getUint16(i * DECISION_STRIDE + 4, true)
  }
  serviceId(i: number): number {
    return this.view.getUint32(i * DECISION_STRIDE + 8, true)
  }
  backendId(i: number): number {
    return this.view.getUint32(i * DECISION_STRIDE + 12, true)
  }
  /** The backend (forward) or service (reply) address; '' for pass, reject and drop, as decide() gives. */
  address(i: number): string {
    const v = this.buffer[i * DECISION_STRIDE]
    if (v !== 1 && v !== 2) return ''
    return formatAddress(this.buffer, i * DECISION_STRIDE + 16)
  }
}
