// The native mode's own options (`native: { ... }` in the Proxier options), checked.
import { show } from '../../util/show.js'
import type { DataplaneCapacity, SchedulerName } from '../../dataplane/types.js'
import { rejectUnknownKeys } from '../../util/known-keys.js'

export interface NativeModeOptions {
  /** Backend selection for new flows. Default 'random', what iptables does. */
  scheduler?: SchedulerName
  /** Dataplane sizing. */
  capacity?: DataplaneCapacity
}

export interface NativeSettings {
  scheduler: SchedulerName
  capacity: DataplaneCapacity
}

const SCHEDULERS: readonly SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']

export const NATIVE_OPTION_KEYS: readonly string[] = ['scheduler', 'capacity']

export function nativeSettings(section: NativeModeOptions | undefined): NativeSettings {
  const o = section ?? {}
  if (typeof o !== 'object' || o === null) throw new TypeError(`Proxier options: native must be an object, got ${show(o)}`)
  rejectUnknownKeys('Proxier options: native', o, NATIVE_OPTION_KEYS)
  const scheduler = o.scheduler ?? 'random'
  if (!SCHEDULERS.includes(scheduler)) {
    throw new TypeError(`Proxier options: native.scheduler must be one of ${SCHEDULERS.join(', ')}, got ${show(o.scheduler)}`)
  }
  if (o.capacity !== undefined && (typeof o.capacity !== 'object' || o.capacity === null)) {
    throw new TypeError(`Proxier options: native.capacity must be an object, got ${show(o.capacity)}`)
  }
  return { scheduler, capacity: o.capacity ?? {} }
}
