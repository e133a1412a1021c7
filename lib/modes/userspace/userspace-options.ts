// The userspace section of the Proxier options (`userspace: { ... }`): what kube-proxy's old
// userspace mode took as flags (--bind-address, --proxy-port-range, --udp-timeout), and whether
// this Proxier opens the proxy sockets itself (a model-only Proxier, as `explain` and `dump`
// use, does not).
import { canonicalAddress } from '../../util/address.js'
import { show } from '../../util/show.js'
import { rejectUnknownKeys } from '../../util/known-keys.js'
import { durationSeconds } from '../ipvs/ipvs-options.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export interface UserspaceModeOptions {
  /**
   * --bind-address: the address the proxy sockets listen on. "0.0.0.0" (the default) or "::"
   * makes the portal rules REDIRECT; any other address makes them DNAT to it.
   */
  bindAddress?: string
  /**
   * --proxy-port-range: "first-last" or "first+count". Proxy ports are then allocated from it
   * in order at sync. Unset (kube-proxy's default): the kernel picks each listener's port when
   * it binds; a Proxier that does not listen numbers them from 32768, the start of Linux's
   * ephemeral range, in the order the ServicePorts are synced.
   */
  portRange?: string
  /** --udp-timeout: an idle UDP client flow is closed after this (seconds or "250ms"; default 250 ms). */
  udpIdleTimeout?: number | string
  /** Open a listener per ServicePort at every sync (default false: the model and rules only). */
  listen?: boolean
  /** Connect timeout towards an endpoint, ms (default 2000). */
  connectTimeoutMs?: number
  /** Socket errors of the listeners (they are also counted); default ignored. */
  onError?: (error: Error, context: string) => void
}

export interface PortRange {
  first: number
  last: number
}

export interface UserspaceSettings {
  bindAddress: string
  /** The range proxy ports come from; undefined: the kernel picks when listening. */
  portRange: PortRange | undefined
  udpIdleTimeoutMs: number
  listen: boolean
  connectTimeoutMs: number
  onError: (error: Error, context: string) => void
}

export const USERSPACE_OPTION_KEYS: readonly string[] = ['bindAddress', 'portRange', 'udpIdleTimeout', 'listen', 'connectTimeoutMs', 'onError']

function portNumber(field: string, text: string, value: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new SvcplaneRangeError(`Proxier options: ${field} must be "first-last" or "first+count" with ports 1..65535, got ${show(value)}`)
  return n
}

/** kube-proxy's --proxy-port-range forms: "first-last", "first+count", or "" (none). */
export function parsePortRange(field: string, value: unknown): PortRange | undefined {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string') throw new SvcplaneTypeError(`Proxier options: ${field} must be a string like "36000-36999", got ${show(value)}`)
  const m = /^(\d+)([-+])(\d+)$/.exec(value.trim())
  if (m === null) throw new SvcplaneTypeError(`Proxier options: ${field} must be "first-last" or "first+count", got ${show(value)}`)
  const first = portNumber(field, m[1]!, value)
  const last = m[2] === '-' ? portNumber(field, m[3]!, value) : first + Number(m[3]) - 1
  if (last < first || last > 65535) throw new SvcplaneRangeError(`Proxier options: ${field} must name ports first..last within 1..65535, got ${show(value)}`)
  return { first, last }
}

export function userspaceSettings(section: UserspaceModeOptions | undefined): UserspaceSettings {
  const o = (section ?? {}) as Record<string, unknown>
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new SvcplaneTypeError(`Proxier options: userspace must be an object, got ${show(o)}`)
  rejectUnknownKeys('Proxier options: userspace', o, USERSPACE_OPTION_KEYS)
  const bind = o.bindAddress === undefined ? '0.0.0.0' : typeof o.bindAddress === 'string' ? canonicalAddress(o.bindAddress) : undefined
  if (bind === undefined) throw new SvcplaneTypeError(`Proxier options: userspace.bindAddress must be an IP address, got ${show(o.bindAddress)}`)
  if (o.listen !== undefined && typeof o.listen !== 'boolean') throw new SvcplaneTypeError(`Proxier options: userspace.listen must be a boolean, got ${show(o.listen)}`)
  if (o.onError !== undefined && typeof o.onError !== 'function') throw new SvcplaneTypeError(`Proxier options: userspace.onError must be a function, got ${show(o.onError)}`)
  const connect = o.connectTimeoutMs ?? 2000
  if (typeof connect !== 'number' || !Number.isFinite(connect) || connect <= 0) {
    throw new SvcplaneRangeError(`Proxier options: userspace.connectTimeoutMs must be a positive number, got ${show(o.connectTimeoutMs)}`)
  }
  const udp = o.udpIdleTimeout === undefined ? 0.25 : durationSeconds('userspace.udpIdleTimeout', o.udpIdleTimeout)
  if (udp <= 0) throw new SvcplaneRangeError(`Proxier options: userspace.udpIdleTimeout must be more than 0, got ${show(o.udpIdleTimeout)}`)
  return {
    bindAddress: bind,
    portRange: parsePortRange('userspace.portRange', o.portRange),
    udpIdleTimeoutMs: udp * 1000,
    listen: (o.listen as boolean | undefined) ?? false,
    connectTimeoutMs: connect,
    onError: (o.onError as UserspaceSettings['onError'] | undefined) ?? (() => {}),
  }
}
