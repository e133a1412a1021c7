// The native mode's own options (`native: { ... }` in the Proxier options), checked.
import { show } from '../../util/show.js'
import type { DataplaneCapacity, SchedulerName } from '../../dataplane/types.js'
import { rejectUnknownKeys } from '../../util/known-keys.js'
import { DEFAULT_CAPACITY, MAX_CAPACITY } from '../../dataplane/defaults.js'
import { SCHEDULERS } from '../../dataplane/codes.js'
import { SvcplaneTypeError } from '../../errors.js'

export interface NativeModeOptions {
  /** Backend selection for new flows. Default 'random', what iptables does. */
  scheduler?: SchedulerName
  /**
   * Dataplane sizing. The services, frontends and backends maps grow with the cluster; a
   * number here is their ceiling. The flow maps (conntrack, affinity, ...) have this size.
   */
  capacity?: DataplaneCapacity
  /**
   * Packet threads of the dataplane (Dataplane `threads`, 1..64): its processPackets batches
   * fan out over that many shards. Default 1.
   */
  threads?: number
}

export interface NativeSettings {
  scheduler: SchedulerName
  capacity: DataplaneCapacity
  threads: number | undefined
}


export const NATIVE_OPTION_KEYS: readonly string[] = ['scheduler', 'capacity', 'threads']

export function nativeSettings(section: NativeModeOptions | undefined): NativeSettings {
  const o = section ?? {}
  if (typeof o !== 'object' || o === null) throw new SvcplaneTypeError(`Proxier options: native must be an object, got ${show(o)}`)
  rejectUnknownKeys('Proxier options: native', o, NATIVE_OPTION_KEYS)
  const scheduler = o.scheduler ?? 'random'
  if (!SCHEDULERS.includes(scheduler)) {
    throw new SvcplaneTypeError(`Proxier options: native.scheduler must be one of ${SCHEDULERS.join(', ')}, got ${show(o.scheduler)}`)
  }
  if (o.capacity !== undefined && (typeof o.capacity !== 'object' || o.capacity === null)) {
    throw new SvcplaneTypeError(`Proxier options: native.capacity must be an object, got ${show(o.capacity)}`)
  }
  if (o.capacity !== undefined) rejectUnknownKeys('Proxier options: native.capacity', o.capacity, CAPACITY_MAPS)
  return { scheduler, capacity: o.capacity ?? {}, threads: o.threads }
}

const CAPACITY_MAPS = Object.keys(DEFAULT_CAPACITY)

/**
 * The CLI's --capacity value: `N` (the services ceiling) or per map, `services=N,backends=M`.
 * Throws a TypeError in the flag's own words.
 */
export function parseCapacityFlag(text: string): DataplaneCapacity {
  const out: Record<string, number> = {}
  const count = (v: string, what: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_CAPACITY)
      throw new SvcplaneTypeError(`${what} must be an integer 1..${MAX_CAPACITY}, got ${show(v)}`)
    return Number(v)
  }
  const t = text.trim()
  if (/^\d+$/.test(t)) return { services: count(t, 'the services capacity') }
  for (const part of t.split(',')) {
    const [map, value, extra] = part.trim().split('=')
    if (map === undefined || value === undefined || extra !== undefined)
      throw new SvcplaneTypeError(`expected N or MAP=N,... (maps: ${CAPACITY_MAPS.join(', ')}), got ${show(part.trim())}`)
    rejectUnknownKeys('map', { [map]: 0 }, CAPACITY_MAPS)
    out[map] = count(value, map)
  }
  return out
}
