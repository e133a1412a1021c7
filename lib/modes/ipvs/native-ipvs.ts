// The IPVS virtual servers of an IpvsTable programmed into the native hash core, which then
// decides the packets: each virtual server is one native service with one frontend (its
// address, port and protocol), the IPVS scheduler, its real servers as backends (weight 0 is
// the core's `terminating`: no new connections, established ones kept; IPVS never weighs
// kube-proxy's real servers otherwise) and persistence as ClientIP affinity with IPVS's
// timeout. The core's conntrack runs with IPVS's timeouts (ipvsadm --set). What the core
// does not know (the ipsets and iptables rules: masquerade marks, source ranges,
// KUBE-IPVS-FILTER) stays with the ipvs mode in TypeScript.
import { Dataplane } from '../../dataplane/dataplane.js'
import type { ConntrackTimeouts, Decision, Flow, SchedulerName } from '../../dataplane/types.js'
import { KERNEL_TIMEOUTS, type Dest, type IpvsTimeouts, type VsEntry } from '../../ipvs/ipvs-table.js'
import { SHARED_HASH_SEED } from '../../ipvs/shared-hash.js'
import { FLAG_PERSISTENT, type IpvsScheduler } from '../../ipvs/types.js'
import { SvcplaneTypeError } from '../../errors.js'

/** The IPVS schedulers the native core implements (native/core/sched_*.cc); the others are decided by the TypeScript model. */
export const NATIVE_IPVS_SCHEDULERS: Readonly<Partial<Record<IpvsScheduler, SchedulerName>>> = Object.freeze({
  rr: 'rr', wrr: 'wrr', lc: 'lc', wlc: 'wlc', sh: 'sh', dh: 'dh',
})

const RST = 0x04

/** IPVS's connection timeouts as the core's conntrack timeouts (ip_vs_proto_tcp.c's table for the states IPVS does not set). */
export function nativeTimeouts(t: Readonly<IpvsTimeouts>): ConntrackTimeouts {
  const tcp = t.tcp || KERNEL_TIMEOUTS.tcp
  const fin = t.tcpFin || KERNEL_TIMEOUTS.tcpFin
  const udp = t.udp || KERNEL_TIMEOUTS.udp
  return {
    tcpSynSent: 60, tcpSynRecv: 60, tcpEstablished: tcp, tcpFinWait: fin, tcpCloseWait: fin, tcpLastAck: fin,
    tcpTimeWait: 120, tcpClose: 10, udp, udpStream: udp, sctp: tcp,
  }
}

/** What the core decided, with the IPVS objects its ids stand for. */
export interface NativeIpvsDecision {
  decision: Decision
  vs: VsEntry | undefined
  dest: Dest | undefined
}

interface Programmed {
  serviceId: number
  vs: VsEntry
  /** The destinations programmed, each with its backend id. */
  backends: Map<Dest, number>
  /** What was programmed last (scheduler, flags, timeout, destinations and weights), to skip unchanged ones. */
  signature: string
}

function signatureOf(vs: VsEntry): string {
  const s = vs.server
  return `${s.scheduler}|${s.flags}|${s.timeout}|${vs.dests.map((d) => `${d.key}=${d.weight}`).join(',')}`
}

export class NativeIpvs {
  readonly dataplane: Dataplane
  private readonly byKey = new Map<string, Programmed>()
  private readonly byService = new Map<number, Programmed>()
  private readonly destOf = new Map<number, Dest>()
  /**
   * Ids are never reused: a real server added again gets a new backend after the ones it is
   * listed with, so the core's list order (by id) is the table's order of addition, as IPVS's.
   */
  private nextId = 1

  constructor(timeouts: Readonly<IpvsTimeouts>, seed?: number | bigint) {
    this.dataplane = new Dataplane({ timeouts: nativeTimeouts(timeouts), seed, maglevSeed: SHARED_HASH_SEED })
  }

  static supports(scheduler: IpvsScheduler): boolean {
    return NATIVE_IPVS_SCHEDULERS[scheduler] !== undefined
  }

  /** Programs one virtual server as the table now has it, or (`vs` undefined) removes it with its flows. */
  program(key: string, vs: VsEntry | undefined): void {
    let p = this.byKey.get(key)
    if (vs === undefined) {
      if (p === undefined) return
      this.dataplane.deleteService(p.serviceId)
      for (const id of p.backends.values()) this.deleteBackend(id)
      this.byKey.delete(key)
      this.byService.delete(p.serviceId)
      return
    }
    const signature = signatureOf(vs)
    if (p !== undefined && p.signature === signature && p.vs === vs) return
    const scheduler = NATIVE_IPVS_SCHEDULERS[vs.server.scheduler]
    if (scheduler === undefined) throw new SvcplaneTypeError(`ipvs scheduler ${vs.server.scheduler} has no native counterpart`)
    if (p === undefined) {
      p = { serviceId: this.nextId++, vs, backends: new Map(), signature: '' }
      this.byKey.set(key, p)
      this.byService.set(p.serviceId, p)
    }
    p.vs = vs
    const ids: number[] = []
    for (const d of vs.dests) {
      let id = p.backends.get(d)
      if (id === undefined) {
        p.backends.set(d, (id = this.nextId++))
        this.destOf.set(id, d)
      }
      this.dataplane.upsertBackend({ id, address: d.address, port: d.port, state: d.weight > 0 ? 'active' : 'terminating', weight: Math.max(1, d.weight) })
      ids.push(id)
    }
    const s = vs.server
    this.dataplane.upsertService({
      id: p.serviceId,
      frontends: [{ address: s.address, port: s.port, protocol: s.protocol, scope: 'external' }],
      backends: ids,
      scheduler,
      affinityTimeout: (s.flags & FLAG_PERSISTENT) !== 0 ? s.timeout : 0,
    })
    // Real servers deleted from the virtual server: their connections go with them (expire_nodest_conn).
    const listed = new Set(vs.dests)
    for (const [d, id] of p.backends) {
      if (listed.has(d)) continue
      p.backends.delete(d)
      this.deleteBackend(id)
    }
    p.signature = signature
  }

  private deleteBackend(id: number): void {
    this.dataplane.deleteBackend(id)
    this.destOf.delete(id)
  }

  /** The core's decision for one packet, and the virtual server and real server it names. */
  decide(flow: Flow, now: number): NativeIpvsDecision {
    const decision = this.dataplane.decide({ ...flow, scope: 'external' }, now)
    const vs = decision.serviceId !== 0 ? this.byService.get(decision.serviceId)?.vs : undefined
    const dest = decision.backendId !== 0 ? this.destOf.get(decision.backendId) : undefined
    return { decision, vs, dest }
  }

  /** Whether the core tracks this tuple as a connection's original direction. */
  tracks(flow: Flow): boolean {
    const f = this.dataplane.lookupFlow({ ...flow, scope: 'external' })
    return f !== null && f.direction !== 'reply'
  }

  /**
   * Ends the core's connection of this tuple, as IPVS expires a connection whose client
   * reuses the source port (conn_reuse_mode): a RST through the core's TCP state machine
   * closes it, and the SYN that follows opens a new one, scheduled afresh.
   */
  close(flow: Flow, now: number): void {
    if (flow.protocol === 'TCP' && this.tracks(flow)) this.dataplane.decide({ ...flow, scope: 'external', tcpFlags: RST }, now)
  }

  /** The backend id a real server is programmed as (for dumps and tests). */
  backendId(vs: VsEntry, dest: Dest): number | undefined {
    return this.byKey.get(vs.key)?.backends.get(dest)
  }

  /** The native service id of a virtual server. */
  serviceId(vs: VsEntry): number | undefined {
    return this.byKey.get(vs.key)?.serviceId
  }
}
