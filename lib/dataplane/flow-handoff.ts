// Flow handoff (native/core/flow_handoff.h): a dataplane's tracked flows and session-affinity
// entries as a versioned binary blob, so a restarted process takes over the connections the
// previous one forwarded. Dataplane.exportFlows / importFlows call these.
import { show } from '../util/show.js'
import { SvcplaneError, SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import type { NativeHandle, NativeModule } from './native.js'

export interface FlowImport {
  /** Flows tracked again, with their state, remaining timeout, counters and NAT port. */
  imported: number
  /** Flows left out: service, backend or NAT port gone, expired, table full, or tracked already. */
  dropped: number
  affinityImported: number
  affinityDropped: number
}

interface HandoffBinding {
  exportFlows(handle: NativeHandle, now: number): Uint8Array
  importFlows(handle: NativeHandle, blob: Uint8Array, now: number): FlowImport | { error: string }
}

function binding(native: NativeModule): HandoffBinding {
  const b = native as unknown as Partial<HandoffBinding>
  if (typeof b.exportFlows !== 'function' || typeof b.importFlows !== 'function')
    throw new SvcplaneError('NATIVE_UNAVAILABLE', 'the loaded svcplane addon has no flow handoff (rebuild it: npm run build:native)')
  return b as HandoffBinding
}

function checkNow(now: unknown): asserts now is number {
  if (typeof now !== 'number' || !Number.isFinite(now) || now < 0)
    throw new SvcplaneRangeError(`now must be a finite number of seconds >= 0, got ${show(now)}`)
}

export function exportFlows(native: NativeModule, handle: NativeHandle, now: number): Uint8Array {
  checkNow(now)
  return binding(native).exportFlows(handle, now)
}

export function importFlows(native: NativeModule, handle: NativeHandle, blob: Uint8Array, now: number): FlowImport {
  if (!(blob instanceof Uint8Array)) throw new SvcplaneTypeError(`blob must be a Uint8Array, got ${show(blob)}`)
  checkNow(now)
  const r = binding(native).importFlows(handle, blob, now)
  if ('error' in r) throw new SvcplaneRangeError(r.error)
  return r
}
