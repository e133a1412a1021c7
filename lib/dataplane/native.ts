// Loads the compiled addon (build/Release, or a prebuild) from the package root: the nearest
// directory above this file holding binding.gyp (this file runs from lib/, dist/ or dist-bench/).
import * as fs from 'node:fs'
import * as path from 'node:path'

export interface NativeHandle {
  setScratch(input: Uint8Array, output: Uint8Array): void
  decideScratch(now: number): void
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
  processPackets(
    buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, direction: number, now: number,
    link: number, fromNode: boolean, reject: number, verdicts: Uint8Array, reasons: Uint8Array,
    replies: Uint8Array | null, replyOffsets: Uint32Array | null, replyLengths: Uint32Array | null,
  ): number
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

export interface NativeModule {
  create(config: Record<string, unknown>): NativeHandle
  flowStride: number
  decisionStride: number
  frontendStride: number
  cidrStride: number
}

const load = require('node-gyp-build') as (dir: string) => unknown

function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir
    if (path.dirname(dir) === dir) return path.join(__dirname, '..', '..')
  }
}

export const native = load(packageRoot()) as NativeModule
