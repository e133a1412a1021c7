// The ipvs section of the Proxier options (`ipvs: { ... }`), as KubeProxyIPVSConfiguration
// has it: scheduler, strictARP, the IPVS connection timeouts (ipvsadm --set) and excludeCIDRs.
import { parseCidr } from '../../util/address.js'
import { show } from '../../util/show.js'
import { rejectUnknownKeys } from '../../util/known-keys.js'
import { IPVS_SCHEDULERS, type IpvsScheduler } from '../../ipvs/types.js'
import type { IpvsTimeouts } from '../../ipvs/ipvs-table.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export interface IpvsModeOptions {
  /** --ipvs-scheduler; default "rr". */
  scheduler?: IpvsScheduler | ''
  /** arp_ignore=1 / arp_announce=2, so the node does not answer ARP for kube-ipvs0's addresses. */
  strictARP?: boolean
  /** Seconds, or a Go duration ("900s", "15m"); 0 keeps the kernel's value. */
  tcpTimeout?: number | string
  tcpFinTimeout?: number | string
  udpTimeout?: number | string
  /** Virtual servers in these CIDRs are never cleaned up by the proxier. */
  excludeCIDRs?: string[]
  /**
   * svcplane's own: what decides the packets. `native` (default): the native hash core, for
   * the schedulers it has (rr, wrr, lc, wlc, sh, dh; sed, nq, lblc, lblcr and mh are always
   * decided by the TypeScript model); `typescript`: the TypeScript IPVS model for every
   * scheduler (the reference the native decisions are tested against).
   */
  dataplane?: 'native' | 'typescript'
}

export interface IpvsSettings {
  scheduler: IpvsScheduler
  strictARP: boolean
  timeouts: IpvsTimeouts
  excludeCIDRs: string[]
  dataplane: 'native' | 'typescript'
}

export const IPVS_OPTION_KEYS: readonly string[] = ['scheduler', 'strictARP', 'tcpTimeout', 'tcpFinTimeout', 'udpTimeout', 'excludeCIDRs', 'dataplane']

const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 }

/** Seconds from a number or a Go duration string ("1h30m", "900s", "0"). */
export function durationSeconds(field: string, value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new SvcplaneRangeError(`Proxier options: ${field} must be a number of seconds >= 0, got ${show(value)}`)
    return value
  }
  if (typeof value === 'string') {
    if (value === '0') return 0
    const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/g)]
    if (parts.length > 0 && parts.map((p) => p[0]).join('') === value) {
      return parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_SECONDS[p[2]!]!, 0)
    }
  }
  throw new SvcplaneTypeError(`Proxier options: ${field} must be seconds or a duration like "900s", got ${show(value)}`)
}

export function ipvsSettings(section: IpvsModeOptions | undefined): IpvsSettings {
  const o = (section ?? {}) as Record<string, unknown>
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new SvcplaneTypeError(`Proxier options: ipvs must be an object, got ${show(o)}`)
  rejectUnknownKeys('Proxier options: ipvs', o, IPVS_OPTION_KEYS)
  // kube-proxy takes an empty scheduler as the default.
  const scheduler = o.scheduler === undefined || o.scheduler === '' ? 'rr' : o.scheduler
  if (!(IPVS_SCHEDULERS as readonly unknown[]).includes(scheduler)) {
    throw new SvcplaneTypeError(`Proxier options: ipvs.scheduler must be one of ${IPVS_SCHEDULERS.join(', ')}, got ${show(o.scheduler)}`)
  }
  if (o.strictARP !== undefined && typeof o.strictARP !== 'boolean') throw new SvcplaneTypeError(`Proxier options: ipvs.strictARP must be a boolean, got ${show(o.strictARP)}`)
  const excludeCIDRs = o.excludeCIDRs ?? []
  if (!Array.isArray(excludeCIDRs)) throw new SvcplaneTypeError(`Proxier options: ipvs.excludeCIDRs must be an array of CIDRs, got ${show(o.excludeCIDRs)}`)
  const cidrs = excludeCIDRs.map((c, i) => {
    const parsed = typeof c === 'string' && c.includes('/') ? parseCidr(c) : undefined
    if (parsed === undefined) throw new SvcplaneTypeError(`Proxier options: ipvs.excludeCIDRs[${i}] must be a CIDR, got ${show(c)}`)
    return parsed.text
  })
  const dataplane = o.dataplane ?? 'native'
  if (dataplane !== 'native' && dataplane !== 'typescript') throw new SvcplaneTypeError(`Proxier options: ipvs.dataplane must be 'native' or 'typescript', got ${show(o.dataplane)}`)
  const seconds = (k: string) => (o[k] === undefined ? 0 : durationSeconds(`ipvs.${k}`, o[k]))
  return {
    scheduler: scheduler as IpvsScheduler,
    strictARP: (o.strictARP as boolean | undefined) ?? false,
    timeouts: { tcp: seconds('tcpTimeout'), tcpFin: seconds('tcpFinTimeout'), udp: seconds('udpTimeout') },
    excludeCIDRs: cidrs,
    dataplane,
  }
}
