// The compiled addon, loaded on first use (better-sqlite3's lib/binding pattern): importing the
// library needs no .node file; only a Dataplane (mode 'native') does. The binding can be
// injected (a path to a .node file, or a module object) with setNativeBinding().
import * as fs from 'node:fs'
import * as path from 'node:path'
import { SvcplaneError, SvcplaneTypeError } from '../errors.js'
import { show } from '../util/show.js'
import type { PacketCall } from './packet-call.js'
import type { UpdateBatch } from './update-batch.js'

export interface NativeHandle {
  setScratch(input: Uint8Array, output: Uint8Array): void
  decideScratch(now: number): void
  /** Registers decideV4's tuple and decision arrays (lib/dataplane/decide-v4.ts slots). */
  setScratchV4(input: Uint32Array, output: Uint32Array): void
  /** Decides the IPv4 tuple in the registered input into the registered output. */
  decideV4(now: number): void
  decideBatch(input: Uint8Array, count: number, now: number, output: Uint8Array): number
  upsertBackend(
    id: number, address: Uint8Array, port: number, state: number, weight: number, nodeLocal: boolean, zone: number,
  ): NativeError | undefined
  deleteBackend(id: number): NativeError | undefined
  upsertService(
    id: number, scheduler: number, affinityTimeout: number, emptyVerdict: number,
    frontends: Uint8Array, backends: Uint32Array, sourceRanges: Uint8Array,
  ): NativeError | undefined
  deleteService(id: number): NativeError | undefined
  /** The first `backends` backends and `services` services of an UpdateBatch, all or nothing; a refusal says which (1: a service) and its index. */
  upsertBatch(batch: UpdateBatch, backends: number, services: number): [number, string, number, number] | undefined
  reserve(services: number, frontends: number, backends: number): NativeError | undefined
  deleteFlowsByBackend(id: number): number
  deleteFlowsByService(id: number): number
  flushConntrack(): number
  gc(now: number, budget: number): { flows: number; affinity: number }
  peekFlowScratch(): Record<string, unknown> | null
  dumpConntrack(start: number, max: number): { entries: Record<string, unknown>[]; next: number }
  dumpServices(): Record<string, unknown>[]
  dumpBackends(): Record<string, unknown>[]
  dumpFrontends(): Record<string, unknown>[]
  dumpRevnat(): Record<string, unknown>[]
  dumpAffinity(): Record<string, unknown>[]
  maglevTable(serviceId: number): Uint32Array | null
  mapInfos(): Record<string, unknown>[]
  counters(): { packets: number; verdicts: number[]; reasons: number[] }
  setTimeouts(seconds: Float64Array): void
  destroy(): void
  /** Registers processPackets' struct (lib/dataplane/packet-call.ts): its params and arrays. */
  setPacketCall(call: PacketCall): void
  /** Processes the registered PacketCall; returns the bytes of replies used. */
  processPackets(): number
  setPacketConfig(
    nodes: Uint8Array, podCidrs: Uint8Array, masq4: Uint8Array | null, masq6: Uint8Array | null, masqueradeAll: boolean,
    natPortLow: number, natPortHigh: number, fragmentTimeout: number,
  ): NativeError | undefined
  packetCounters(): { packets: number; verdicts: number[]; reasons: number[]; counts: number[] }
  packetMapInfos(): Record<string, unknown>[]
  dumpNatPorts(): Record<string, unknown>[]
}

/** [status, message] from a refused control-path call. */
export type NativeError = [number, string]

/** Capacities by map name, as the addon exports them. */
export type NativeCapacities = Record<'services' | 'frontends' | 'backends' | 'conntrack' | 'affinity' | 'natPorts' | 'fragments', number>

export interface NativeModule {
  create(config: Record<string, unknown>): NativeHandle
  flowStride: number
  decisionStride: number
  frontendStride: number
  cidrStride: number
  batchBackendStride: number
  batchServiceSlots: number
  maxCapacity: number
  defaultCapacity: NativeCapacities
  initialCapacity: Pick<NativeCapacities, 'services' | 'frontends' | 'backends'>
  defaultTimeouts: Record<string, number>
  defaultMaglevTableSize: number
  /** PacketCall.params slot names and its array names, in the addon's order. */
  packetParams: string[]
  packetArrays: string[]
  /** The core's name tables (native/bridge/names.h), indexed by the core's codes. */
  names: {
    verdicts: string[]
    reasons: string[]
    /** How many of `reasons` the tuple API gives (the rest are the packet path's). */
    tupleReasons: number
    schedulers: string[]
    backendStates: string[]
    masqueradePolicies: string[]
    rejectWith: string[]
    conntrackStates: string[]
    /** Timeout option names by conntrack state (slot 0, "none", is ""). */
    timeouts: string[]
    packetCounters: string[]
    statuses: string[]
  }
}

/** The package root: the nearest directory above this file holding binding.gyp (lib/, dist/ or dist-bench/). */
function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir
    if (path.dirname(dir) === dir) return path.join(__dirname, '..', '..')
  }
}

const BUILD_HINT =
  'build it with `npm rebuild svcplane` (in a checkout: `npm run build:native`; needs python3, make and a C++20 compiler), ' +
  "or use mode 'iptables', which needs no addon"

let loaded: NativeModule | undefined
let injected: string | NativeModule | undefined

/**
 * Which addon the next Dataplane uses: a path to a compiled svcplane .node file, or the module
 * itself; `undefined` restores the default (build/Release or a prebuild in the package).
 * Takes effect for Dataplanes created afterwards.
 */
export function setNativeBinding(binding: string | NativeModule | undefined): void {
  if (binding !== undefined && typeof binding !== 'string' && (typeof binding !== 'object' || binding === null || typeof (binding as NativeModule).create !== 'function'))
    throw new SvcplaneTypeError(`setNativeBinding: binding must be a path to the addon or its module, got ${show(binding)}`)
  injected = binding
  loaded = undefined
}

/** The addon, loaded now if it was not yet; SvcplaneError NATIVE_UNAVAILABLE saying how to build it. */
export function nativeBinding(): NativeModule {
  if (loaded !== undefined) return loaded
  const from = injected
  try {
    if (typeof from === 'object') loaded = from
    else if (typeof from === 'string') loaded = require(path.resolve(from)) as NativeModule
    else loaded = (require('node-gyp-build') as (dir: string) => NativeModule)(packageRoot())
  } catch (err) {
    const what = typeof from === 'string' ? `the addon ${show(from)}` : 'the svcplane native addon'
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new SvcplaneError('NATIVE_UNAVAILABLE', `${what} could not be loaded (${why}); ${BUILD_HINT}`, { cause: err })
  }
  return loaded
}
