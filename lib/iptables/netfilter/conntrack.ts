// Connection tracking in front of the iptables evaluator, as the kernel has it: the nat table
// sees only the first packet of a connection; later packets (either direction) reuse the
// binding the first one made. The TCP state machine and the timeouts are the native core's
// (native/core/tcp_state.h, DEFAULT_TIMEOUTS), so both modes age flows alike.
import type { ConntrackTimeouts } from '../../dataplane/types.js'

export type CtState =
  | 'SYN_SENT' | 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT' | 'CLOSE_WAIT' | 'LAST_ACK' | 'TIME_WAIT' | 'CLOSE'
  | 'UDP' | 'UDP_STREAM' | 'SCTP'

const TIMEOUT_OF: Record<CtState, keyof ConntrackTimeouts> = {
  SYN_SENT: 'tcpSynSent', SYN_RECV: 'tcpSynRecv', ESTABLISHED: 'tcpEstablished', FIN_WAIT: 'tcpFinWait',
  CLOSE_WAIT: 'tcpCloseWait', LAST_ACK: 'tcpLastAck', TIME_WAIT: 'tcpTimeWait', CLOSE: 'tcpClose',
  UDP: 'udp', UDP_STREAM: 'udpStream', SCTP: 'sctp',
}

const FIN = 0x01
const SYN = 0x02
const RST = 0x04
const ACK = 0x10

export interface CtFlow {
  /** "PROTO|src|sport|dst|dport" of the original direction */
  readonly orig: string
  /** the same for the reply (endpoint -> client) */
  readonly reply: string
  readonly protocol: string
  /** the ServicePort's model key ("ns/name:port/PROTO/family") */
  readonly servicePortKey: string
  readonly servicePort: string
  /** the address the client connected to, "ip:port" ("[ip]:port" for IPv6) */
  readonly frontend: string
  /** the DNAT destination, "ip:port", and its parts */
  readonly endpoint: string
  readonly endpointAddress: string
  readonly endpointPort: number
  readonly masquerade: boolean
  state: CtState
  /** which side sent FIN first: bit 0 original, bit 1 reply */
  finDir: number
  expires: number
  packets: number
}

export function flowKey(protocol: string, src: string, sport: number, dst: string, dport: number): string {
  return `${protocol}|${src}|${sport}|${dst}|${dport}`
}

function initialState(protocol: string, flags: number): CtState {
  if (protocol === 'UDP') return 'UDP'
  if (protocol === 'SCTP') return 'SCTP'
  if (flags & RST) return 'CLOSE'
  if (flags === 0 || (flags & (SYN | ACK)) === SYN) return 'SYN_SENT'
  return 'ESTABLISHED' // picked up mid-stream (nf_conntrack_tcp_loose)
}

function nextState(f: CtFlow, reply: boolean, flags: number): CtState {
  const s = f.state
  if (s === 'UDP') return reply ? 'UDP_STREAM' : s
  if (s === 'UDP_STREAM' || s === 'SCTP' || flags === 0) return s
  const self = reply ? 2 : 1
  if (flags & RST) return 'CLOSE'
  const syn = (flags & SYN) !== 0
  const ack = (flags & ACK) !== 0
  const fin = (flags & FIN) !== 0
  switch (s) {
    case 'SYN_SENT':
      if (reply && syn && ack) return 'SYN_RECV'
      if (!reply && ack && !syn) return 'ESTABLISHED'
      return s
    case 'SYN_RECV':
      if (!reply && ack && !syn) {
        if (!fin) return 'ESTABLISHED'
        f.finDir = self
        return 'FIN_WAIT'
      }
      return s
    case 'ESTABLISHED':
      if (fin) {
        f.finDir = self
        return 'FIN_WAIT'
      }
      return s
    case 'FIN_WAIT':
      if (fin && !(f.finDir & self)) {
        f.finDir |= self
        return 'LAST_ACK'
      }
      if (ack && !(f.finDir & self)) return 'CLOSE_WAIT'
      return s
    case 'CLOSE_WAIT':
      if (fin && !(f.finDir & self)) {
        f.finDir |= self
        return 'LAST_ACK'
      }
      return s
    case 'LAST_ACK':
      return ack ? 'TIME_WAIT' : s
    case 'TIME_WAIT':
    case 'CLOSE':
      if (!reply && syn && !ack) {
        f.finDir = 0
        return 'SYN_SENT'
      }
      return s
    default:
      return s
  }
}

export class Conntrack {
  private readonly byOrig = new Map<string, CtFlow>()
  private readonly byReply = new Map<string, CtFlow>()
  private readonly byServicePort = new Map<string, Set<CtFlow>>()
  private creates = 0

  constructor(readonly timeouts: Readonly<ConntrackTimeouts>) {}

  get size(): number {
    return this.byOrig.size
  }

  /** The flow a packet belongs to, and its direction; expired flows are removed, not returned. */
  lookup(key: string, now: number): { flow: CtFlow; reply: boolean } | undefined {
    let flow = this.byOrig.get(key)
    let reply = false
    if (flow === undefined) {
      flow = this.byReply.get(key)
      reply = true
    }
    if (flow === undefined) return undefined
    if (flow.expires <= now) {
      this.remove(flow)
      return undefined
    }
    return { flow, reply }
  }

  /** Advances the state machine and refreshes the timeout. */
  update(flow: CtFlow, reply: boolean, flags: number, now: number): void {
    flow.state = nextState(flow, reply, flags)
    flow.expires = now + this.timeouts[TIMEOUT_OF[flow.state]]
    flow.packets++
  }

  create(init: Omit<CtFlow, 'state' | 'finDir' | 'expires' | 'packets'>, flags: number, now: number): CtFlow {
    const state = initialState(init.protocol, flags)
    const flow: CtFlow = { ...init, state, finDir: 0, expires: now + this.timeouts[TIMEOUT_OF[state]], packets: 1 }
    const old = this.byOrig.get(flow.orig) ?? this.byReply.get(flow.reply)
    if (old !== undefined) this.remove(old)
    this.byOrig.set(flow.orig, flow)
    this.byReply.set(flow.reply, flow)
    let set = this.byServicePort.get(flow.servicePortKey)
    if (set === undefined) this.byServicePort.set(flow.servicePortKey, (set = new Set()))
    set.add(flow)
    // Expired flows are otherwise only found by their own packets: sweep now and then.
    if (++this.creates % 4096 === 0) this.expire(now)
    return flow
  }

  remove(flow: CtFlow): void {
    if (this.byOrig.get(flow.orig) === flow) this.byOrig.delete(flow.orig)
    if (this.byReply.get(flow.reply) === flow) this.byReply.delete(flow.reply)
    const set = this.byServicePort.get(flow.servicePortKey)
    if (set?.delete(flow) && set.size === 0) this.byServicePort.delete(flow.servicePortKey)
  }

  /** Removes the flows of one ServicePort that `pred` selects; returns how many. */
  removeForServicePort(servicePortKey: string, pred: (f: CtFlow) => boolean): number {
    let n = 0
    for (const f of [...(this.byServicePort.get(servicePortKey) ?? [])]) {
      if (pred(f)) {
        this.remove(f)
        n++
      }
    }
    return n
  }

  /** Removes the flows `pred` selects; returns how many. */
  removeWhere(pred: (f: CtFlow) => boolean): number {
    let n = 0
    for (const f of [...this.byOrig.values()]) {
      if (pred(f)) {
        this.remove(f)
        n++
      }
    }
    return n
  }

  expire(now: number): number {
    return this.removeWhere((f) => f.expires <= now)
  }

  flows(): CtFlow[] {
    return [...this.byOrig.values()]
  }

  clear(): void {
    this.byOrig.clear()
    this.byReply.clear()
    this.byServicePort.clear()
  }
}
