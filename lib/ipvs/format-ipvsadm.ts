// `ipvsadm -Ln`, `ipvsadm -Ln --stats` and `ipvsadm -Ln --rate` as ipvsadm prints them
// (ipvsadm.c: list_all, print_title, print_service_entry). kube-proxy's real servers always
// forward by masquerading ("Masq").
import { joinHostPort } from '../util/host-port.js'
import { FLAG_PERSISTENT, FLAG_SOURCE_HASH } from './types.js'
import { listOrder, type Connection, type Counters, type IpvsTable, type VsEntry } from './ipvs-table.js'

export type IpvsadmView = 'list' | 'stats' | 'rate'

/** print_largenum: up to 5 digits exact, then K / M / G with 8 digits, always 9 wide. */
function largeNumber(n: number, exact: boolean): string {
  const v = Math.floor(n)
  if (exact || v < 100000) return String(v).padStart(9)
  if (v < 1e8) return `${String(Math.floor(v / 1000)).padStart(8)}K`
  if (v < 1e11) return `${String(Math.floor(v / 1e6)).padStart(8)}M`
  return `${String(Math.floor(v / 1e9)).padStart(8)}G`
}

function schedulerFlags(scheduler: string, flags: number): string {
  if (scheduler !== 'mh' && scheduler !== 'sh') return ''
  return (flags & FLAG_SOURCE_HASH) !== 0 ? ` ${scheduler}-port` : ''
}

function serviceName(vs: VsEntry): string {
  return `${vs.server.protocol}  ${joinHostPort(vs.server.address, vs.server.port)}`
}

/** Per-second averages since the virtual server's first connection (the kernel uses a 2 s estimator). */
function rates(c: Counters, seconds: number): Counters {
  const per = (n: number) => (seconds > 0 ? n / seconds : 0)
  return { conns: per(c.conns), inPackets: per(c.inPackets), outPackets: per(c.outPackets), inBytes: per(c.inBytes), outBytes: per(c.outBytes) }
}

function columns(c: Counters, exact: boolean): string {
  return [c.conns, c.inPackets, c.outPackets, c.inBytes, c.outBytes].map((n) => largeNumber(n, exact)).join('')
}

export interface IpvsadmOptions {
  view?: IpvsadmView
  /** --exact: no K/M/G abbreviations. */
  exact?: boolean
  /** The current (virtual) time, for --rate. */
  now?: number
}

/** The listing for `entries`, which must already be in ipvsadm's order. */
export function formatIpvsadm(entries: readonly VsEntry[], options: IpvsadmOptions = {}): string {
  const view = options.view ?? 'list'
  const exact = options.exact ?? false
  const lines = ['IP Virtual Server version 1.2.1 (size=4096)']
  if (view === 'list') {
    lines.push('Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn')
  } else {
    const heads = view === 'stats' ? ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'] : ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS']
    lines.push(`${'Prot LocalAddress:Port'.padEnd(33)}${heads.map((h) => ` ${h.padStart(8)}`).join('')}`, '  -> RemoteAddress:Port')
  }
  for (const vs of entries) {
    const s = vs.server
    const seconds = (options.now ?? 0) - (vs.since ?? options.now ?? 0)
    if (view === 'list') {
      let line = `${serviceName(vs)} ${s.scheduler}`
      if ((s.flags & FLAG_PERSISTENT) !== 0) line += ` persistent ${s.timeout}`
      lines.push(line + schedulerFlags(s.scheduler, s.flags))
      for (const d of listOrder(vs.dests)) {
        lines.push(`  -> ${joinHostPort(d.address, d.port).padEnd(28)} ${'Masq'.padEnd(7)} ${String(d.weight).padEnd(6)} ${String(d.activeConns).padEnd(10)} ${String(d.inactiveConns).padEnd(10)}`)
      }
    } else {
      const counters = (c: Counters) => columns(view === 'stats' ? c : rates(c, seconds), exact)
      lines.push(`${serviceName(vs).padEnd(33)}${counters(vs.stats)}`)
      for (const d of listOrder(vs.dests)) lines.push(`  -> ${joinHostPort(d.address, d.port).padEnd(28)}${counters(d.stats)}`)
    }
  }
  return lines.join('\n') + '\n'
}

/** mm:ss left, as ipvsadm -c prints a connection's expiry. */
function expiry(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}

function client(c: Connection): string {
  const [, src, sport] = c.orig.split('|')
  return joinHostPort(src!, Number(sport))
}

/**
 * `ipvsadm -Lnc`: every connection (protocol, time left, state, client, virtual server, real
 * server), then the persistence templates (state NONE, client port 0).
 */
export function formatIpvsConnections(table: IpvsTable, now: number): string {
  const lines = ['IPVS connection entries', 'pro expire state       source             virtual            destination']
  const row = (proto: string, left: number, state: string, src: string, vip: string, dst: string) =>
    `${proto.padEnd(3)} ${expiry(left)}  ${state.padEnd(11)} ${src.padEnd(18)} ${vip.padEnd(18)} ${dst}`
  for (const c of table.connections()) {
    if (c.dest === undefined || c.dest.deleted) continue
    const s = c.vs.server
    lines.push(row(s.protocol, c.expires - now, c.state, client(c), joinHostPort(s.address, s.port), c.dest.key))
  }
  for (const { vs, client: ip, template } of table.persistenceTemplates()) {
    const s = vs.server
    lines.push(row(s.protocol, template.expires - now, 'NONE', joinHostPort(ip, 0), joinHostPort(s.address, s.port), template.dest.key))
  }
  return lines.join('\n') + '\n'
}
