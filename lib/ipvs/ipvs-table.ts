// The kernel side of IPVS as kube-proxy drives it: virtual servers in a hash map, their
// destinations, the connection table with its own TCP/UDP timeouts (ipvsadm --set), persistence
// templates, and kube-proxy's graceful termination (a removed TCP real server stays with weight
// 0 until its connections are gone; UDP and SCTP ones go at once). Time is the caller's.
import { createScheduler, type Destination, type Scheduler } from './schedulers.js'
import { joinHostPort } from '../util/host-port.js'
import { virtualServerKey, FLAG_PERSISTENT, type RealServer, type VirtualServer, type VirtualServerOrigin } from './types.js'
import type { DesiredVirtualServer } from './virtual-servers.js'

/** ipvsadm --set: 0 keeps the kernel default (tcp 900 s, tcpfin 120 s, udp 300 s). */
export interface IpvsTimeouts {
  tcp: number
  tcpFin: number
  udp: number
}

export const KERNEL_TIMEOUTS: Readonly<IpvsTimeouts> = Object.freeze({ tcp: 900, tcpFin: 120, udp: 300 })

export type ConnState = 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT' | 'TIME_WAIT' | 'CLOSE' | 'UDP' | 'SCTP'

export interface Counters {
  conns: number
  inPackets: number
  outPackets: number
  inBytes: number
  outBytes: number
}

export interface Dest extends Destination {
  readonly key: string
  stats: Counters
  /** Deleted from its virtual server: its connections have no destination any more. */
  deleted: boolean
}

export interface VsEntry {
  readonly key: string
  server: Omit<VirtualServer, 'realServers'>
  origin: VirtualServerOrigin
  dests: Dest[]
  scheduler: Scheduler
  stats: Counters
  /** Virtual time of the first connection, for the --rate averages. */
  since: number | undefined
}

export interface Connection {
  readonly orig: string
  readonly reply: string
  readonly vs: VsEntry
  dest: Dest | undefined
  readonly client: string
  state: ConnState
  expires: number
  masquerade: boolean
  template: Template | undefined
}

export interface Template {
  dest: Dest
  expires: number
  conns: number
}

const FIN = 0x01
const SYN = 0x02
const RST = 0x04
const ACK = 0x10

/** Told when a virtual server's programming changed (its destinations, weights or scheduler), or (`vs` undefined) it was deleted. */
export type VsListener = (key: string, vs: VsEntry | undefined) => void

/** Destinations as the listings show them (by "address:port"); the table keeps them in the order they were added, as the kernel's list. */
export function listOrder<D extends { key: string }>(dests: readonly D[]): D[] {
  return [...dests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

const zero = (): Counters => ({ conns: 0, inPackets: 0, outPackets: 0, inBytes: 0, outBytes: 0 })

export function connKey(protocol: string, src: string, sport: number, dst: string, dport: number): string {
  return `${protocol}|${src}|${sport}|${dst}|${dport}`
}

/** A new TCP connection's first packet: SYN without ACK (or no flags given). */
export function isNewConn(protocol: string, flags: number | undefined): boolean {
  return protocol !== 'TCP' || flags === undefined || (flags & (SYN | ACK | RST)) === SYN
}

export class IpvsTable {
  private readonly services = new Map<string, VsEntry>()
  private readonly byOrig = new Map<string, Connection>()
  private readonly byReply = new Map<string, Connection>()
  private readonly templates = new Map<string, Template>()
  private nextSweep = 0
  /** The latest time a packet was seen at; graceful termination is checked against it. */
  now = 0
  /** Set by the mode that programs the native core from this table. */
  listener: VsListener | undefined

  constructor(readonly timeouts: Readonly<IpvsTimeouts>) {}

  virtualServer(address: string, port: number, protocol: string): VsEntry | undefined {
    return this.services.get(virtualServerKey(address, port, protocol))
  }

  entries(): VsEntry[] {
    return [...this.services.values()]
  }

  connections(): Connection[] {
    return [...this.byOrig.values()]
  }

  /** Persistence templates: the virtual server, the client and the real server it is kept on. */
  persistenceTemplates(): { vs: VsEntry; client: string; template: Template }[] {
    const out: { vs: VsEntry; client: string; template: Template }[] = []
    for (const [key, template] of this.templates) {
      const cut = key.lastIndexOf('|')
      const vs = this.services.get(key.slice(0, cut))
      if (vs !== undefined && !template.dest.deleted) out.push({ vs, client: key.slice(cut + 1), template })
    }
    return out
  }

  /**
   * What kube-proxy syncs for one virtual server: adds or updates it with its real servers, or
   * (`want` undefined) deletes it, unless `keep` says so (cleanLegacyService skips excludeCIDRs).
   */
  applyOne(key: string, want: DesiredVirtualServer | undefined, keep: (address: string) => boolean = () => false): void {
    let vs = this.services.get(key)
    if (want === undefined) {
      if (vs === undefined || keep(vs.server.address)) return
      this.services.delete(key)
      for (const d of vs.dests) this.detach(d)
      this.listener?.(key, undefined)
      return
    }
    const { realServers, ...server } = want.server
    if (vs === undefined) {
      vs = { key, server, origin: want.origin, dests: [], scheduler: createScheduler(server.scheduler, server.flags), stats: zero(), since: undefined }
      this.services.set(key, vs)
    } else if (vs.server.scheduler !== server.scheduler || vs.server.flags !== server.flags || vs.server.timeout !== server.timeout) {
      vs.server = server
      vs.scheduler = createScheduler(server.scheduler, server.flags)
    }
    vs.origin = want.origin
    this.syncDestinations(vs, realServers)
    this.listener?.(key, vs)
  }

  /** Sets the destinations: kept ones stay where they are, new ones are appended (by "address:port" among themselves). */
  private syncDestinations(vs: VsEntry, wanted: RealServer[]): void {
    const want = new Set(wanted.map((r) => joinHostPort(r.address, r.port)))
    const kept: Dest[] = []
    let changed = false
    for (const d of vs.dests) {
      const weight = want.has(d.key) ? 1 : 0
      if (weight === 1 || (vs.server.protocol === 'TCP' && d.activeConns + d.inactiveConns > 0)) {
        // weight 0: graceful termination, no new connections while the existing ones finish.
        if (d.weight !== weight) changed = true
        d.weight = weight
        kept.push(d)
      } else {
        this.detach(d)
      }
    }
    const have = new Set(kept.map((d) => d.key))
    for (const r of listOrder(wanted.map((w) => ({ ...w, key: joinHostPort(w.address, w.port) })))) {
      const key = r.key
      if (!have.has(key)) kept.push({ key, address: r.address, port: r.port, weight: r.weight, activeConns: 0, inactiveConns: 0, stats: zero(), deleted: false })
    }
    if (changed || kept.length !== vs.dests.length || kept.some((d, i) => d !== vs.dests[i])) vs.scheduler.reset()
    vs.dests = kept
  }

  /** A deleted destination: its connections and templates notice it when next used (expire_nodest_conn drops them). */
  private detach(d: Dest): void {
    d.deleted = true
  }

  /** Removes expired connections and templates; with `graceful`, drained weight-0 TCP destinations too. */
  sweep(now: number, graceful = false): void {
    if (!graceful && now < this.nextSweep) return
    this.expire(now)
    if (!graceful) return
    for (const vs of this.services.values()) {
      const before = vs.dests.length
      vs.dests = vs.dests.filter((d) => {
        const drained = d.weight === 0 && d.activeConns + d.inactiveConns === 0
        if (drained) this.detach(d)
        return !drained
      })
      if (vs.dests.length !== before) {
        vs.scheduler.reset()
        this.listener?.(vs.key, vs)
      }
    }
  }

  /** Removes the connections and persistence templates that timed out by `now`. */
  expire(now: number): void {
    this.nextSweep = now + 1
    for (const c of [...this.byOrig.values()]) if (c.expires <= now) this.remove(c)
    for (const [k, t] of this.templates) if ((t.expires <= now && t.conns === 0) || t.dest.deleted) this.templates.delete(k)
  }

  lookup(key: string, now: number): { conn: Connection; reply: boolean } | undefined {
    this.now = Math.max(this.now, now)
    this.sweep(now)
    let conn = this.byOrig.get(key)
    let reply = false
    if (conn === undefined) {
      conn = this.byReply.get(key)
      reply = true
    }
    if (conn === undefined) return undefined
    if (conn.expires <= now) {
      this.remove(conn)
      return undefined
    }
    if (conn.dest?.deleted) conn.dest = undefined
    return { conn, reply }
  }

  /**
   * The destination for a new connection to `vs`: the client's persistence template when it
   * holds a destination still of weight > 0 (expire_quiescent_template), else the scheduler.
   */
  schedule(vs: VsEntry, src: string, sport: number, dst: string, now: number): { dest: Dest | undefined; persistent: boolean } {
    if ((vs.server.flags & FLAG_PERSISTENT) !== 0) {
      const t = this.templates.get(`${vs.key}|${src}`)
      if (t !== undefined && (t.expires > now || t.conns > 0) && t.dest.weight > 0 && !t.dest.deleted) return { dest: t.dest, persistent: true }
    }
    return { dest: vs.scheduler.pick(vs.dests, { src, sport, dst }) as Dest | undefined, persistent: false }
  }

  /** Records a new connection (and its persistence template) through `vs` to `dest`. */
  connect(init: { orig: string; reply: string; vs: VsEntry; dest: Dest; client: string; protocol: string; flags: number | undefined; masquerade: boolean }, now: number): Connection {
    const old = this.byOrig.get(init.orig)
    if (old !== undefined) this.remove(old)
    const state: ConnState = init.protocol === 'UDP' ? 'UDP' : init.protocol === 'SCTP' ? 'SCTP' : 'SYN_RECV'
    let template: Template | undefined
    const { vs, dest } = init
    if ((vs.server.flags & FLAG_PERSISTENT) !== 0) {
      const tkey = `${vs.key}|${init.client}`
      template = this.templates.get(tkey)
      if (template === undefined || template.dest !== dest) this.templates.set(tkey, (template = { dest, expires: 0, conns: 0 }))
      template.expires = now + vs.server.timeout
      template.conns++
    }
    const conn: Connection = { orig: init.orig, reply: init.reply, vs, dest, client: init.client, state, expires: now + this.timeoutOf(state), masquerade: init.masquerade, template }
    this.count(conn, +1)
    this.byOrig.set(conn.orig, conn)
    this.byReply.set(conn.reply, conn)
    vs.stats.conns++
    dest.stats.conns++
    vs.since ??= now
    this.packet(conn, false, init.flags, now)
    return conn
  }

  /** A packet of a tracked connection: the TCP state machine, timeouts and counters. */
  packet(conn: Connection, reply: boolean, flags: number | undefined, now: number): void {
    const next = this.nextState(conn, flags)
    if (next !== conn.state) {
      this.count(conn, -1)
      conn.state = next
      this.count(conn, +1)
    }
    conn.expires = now + this.timeoutOf(conn.state)
    if (conn.template !== undefined) conn.template.expires = Math.max(conn.template.expires, now + conn.vs.server.timeout)
    const field = reply ? 'outPackets' : 'inPackets'
    conn.vs.stats[field]++
    if (conn.dest !== undefined) conn.dest.stats[field]++
  }

  remove(conn: Connection): void {
    if (this.byOrig.get(conn.orig) === conn) this.byOrig.delete(conn.orig)
    if (this.byReply.get(conn.reply) === conn) this.byReply.delete(conn.reply)
    this.count(conn, -1)
    if (conn.template !== undefined) conn.template.conns--
    conn.template = undefined
  }

  /** Removes the connections `pred` selects; returns how many. */
  removeWhere(pred: (c: Connection) => boolean): number {
    let n = 0
    for (const c of [...this.byOrig.values()]) {
      if (!pred(c)) continue
      this.remove(c)
      n++
    }
    return n
  }

  /** ActiveConn / InActConn of the connection's destination, as ipvsadm shows them. */
  private count(conn: Connection, delta: number): void {
    const d = conn.dest
    if (d === undefined) return
    if (conn.state === 'ESTABLISHED') d.activeConns = Math.max(0, d.activeConns + delta)
    else d.inactiveConns = Math.max(0, d.inactiveConns + delta)
  }

  private nextState(conn: Connection, flags: number | undefined): ConnState {
    const s = conn.state
    if (s === 'UDP' || s === 'SCTP') return s
    if (flags === undefined) return s === 'SYN_RECV' ? 'ESTABLISHED' : s
    if (flags & RST) return 'CLOSE'
    if (flags & FIN) return s === 'FIN_WAIT' ? 'TIME_WAIT' : s === 'TIME_WAIT' || s === 'CLOSE' ? s : 'FIN_WAIT'
    if (flags & ACK && s === 'SYN_RECV') return 'ESTABLISHED'
    return s
  }

  private timeoutOf(state: ConnState): number {
    const t = { tcp: this.timeouts.tcp || KERNEL_TIMEOUTS.tcp, tcpFin: this.timeouts.tcpFin || KERNEL_TIMEOUTS.tcpFin, udp: this.timeouts.udp || KERNEL_TIMEOUTS.udp }
    switch (state) {
      case 'ESTABLISHED': case 'SCTP': return t.tcp
      case 'FIN_WAIT': return t.tcpFin
      case 'UDP': return t.udp
      case 'SYN_RECV': return 60
      case 'TIME_WAIT': return 120
      case 'CLOSE': return 10
    }
  }
}
