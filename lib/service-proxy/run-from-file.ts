// `svcplane proxy --cluster FILE`: a ServiceProxy fed from a `kubectl get
// services,endpointslices -A -o json` dump (or several files merged), re-read when a file
// changes. A reload applies the difference: objects that disappeared from the files are
// deleted, the rest re-applied (unchanged ones cost nothing at sync). Input that does not parse
// (for example caught half written) changes nothing; the next change is tried again. The
// default reader takes JSON with a size limit; `load` replaces it (the CLI's reads YAML too).
import * as fs from 'node:fs'
import { parseObjects } from '../k8s/load.js'
import { rejectUnknownKeys } from '../util/known-keys.js'
import { COMMON_OPTION_KEYS } from '../proxy/options.js'
import { SECTION_KEYS } from '../modes/table.js'
import { readLimited } from '../util/read-limited.js'
import { show } from '../util/show.js'
import { type SyncSummary } from '../proxy/proxier.js'
import { Proxier } from '../modes/index.js'
import type { ProxierOptions } from '../modes/index.js'
import { ServiceProxy, type ServiceProxyOptions, type ProxySyncResult } from './service-proxy.js'
import { SvcplaneTypeError } from '../errors.js'

export interface RunProxyOptions extends Omit<ProxierOptions, 'mode'>, Omit<ServiceProxyOptions, 'proxier'> {
  /** Default 'native'. */
  mode?: ProxierOptions['mode']
  /** Re-read the file when it changes (default true). */
  watch?: boolean
  /** How often the file's modification time is checked, ms (default 500). */
  watchIntervalMs?: number
  /** Called after every reload attempt, with the error when the file was refused. */
  onReload?: (result: ReloadResult) => void
  /** Reads the files into Kubernetes objects (anything applyList takes). Default: each file's JSON, merged. */
  load?: (files: readonly string[]) => Promise<unknown>
  /** The default reader refuses a file larger than this (bytes, default 256 MiB). */
  maxInputBytes?: number
}

const OWN_KEYS = ['watch', 'watchIntervalMs', 'onReload', 'load', 'maxInputBytes', 'mode', 'clock', 'connectTimeoutMs', 'udpIdleTimeoutMs', 'gcIntervalMs', 'listenOn', 'onError']

/** A List's items (typed lists' items get their kind back), an array's, or the object itself. */
function flatten(value: unknown): unknown[] {
  if (Array.isArray(value)) return value
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { items?: unknown }).items)) return [value]
  const list = value as { kind?: unknown; items: unknown[] }
  const kind = typeof list.kind === 'string' && list.kind !== 'List' && list.kind.endsWith('List') ? list.kind.slice(0, -4) : undefined
  return list.items.map((i) => (kind !== undefined && typeof i === 'object' && i !== null && !('kind' in i) ? { kind, ...i } : i))
}

async function readJsonFiles(files: readonly string[], maxBytes: number): Promise<unknown[]> {
  const items: unknown[] = []
  for (const file of files) {
    const text = (await readLimited(file, { maxBytes, what: file })).toString('utf8')
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      throw new SvcplaneTypeError(`${file} is not valid JSON: ${(err as Error).message.split('\n')[0]}`)
    }
    items.push(...flatten(value))
  }
  return items
}

export interface ReloadResult {
  ok: boolean
  error?: Error
  services: number
  endpointSlices: number
  deleted: number
  sync?: ProxySyncResult
}

export interface RunningProxy {
  readonly proxy: ServiceProxy
  readonly proxier: Proxier
  /** Re-reads the file now (what the watcher does on a change). */
  reload(): Promise<ReloadResult>
  /** Stops watching and closes the proxy (see ServiceProxy.close). */
  close(options?: { drainMs?: number }): Promise<void>
}

export async function runProxyFromFile(file: string | readonly string[], options: RunProxyOptions): Promise<RunningProxy> {
  const files = typeof file === 'string' ? [file] : Array.isArray(file) ? [...(file as string[])] : []
  if (files.length === 0 || files.some((f) => typeof f !== 'string' || f === '')) throw new SvcplaneTypeError(`runProxyFromFile: file must be a path or a non-empty array of paths, got ${show(file)}`)
  if (options === null || typeof options !== 'object') throw new SvcplaneTypeError(`runProxyFromFile: options must be an object, got ${show(options)}`)
  const { watch = true, watchIntervalMs = 500, onReload, load, maxInputBytes = 256 * 1024 * 1024, mode = 'native', clock, connectTimeoutMs, udpIdleTimeoutMs, gcIntervalMs, listenOn, onError, ...rest } = options
  // Checked whole, so a misspelt key of ours is not reported as an unknown Proxier option.
  rejectUnknownKeys('runProxyFromFile options', options, [...OWN_KEYS, ...COMMON_OPTION_KEYS, ...Object.keys(SECTION_KEYS)])
  const readFiles = load ?? ((fs: readonly string[]) => readJsonFiles(fs, maxInputBytes))
  const proxier = new Proxier({ ...rest, mode, clock })
  const proxy = new ServiceProxy({ proxier, clock, connectTimeoutMs, udpIdleTimeoutMs, gcIntervalMs, listenOn, onError })
  let services = new Set<string>()
  let slices = new Set<string>()
  let started = false

  // The first read must succeed: a proxy started from a broken file would serve nothing.
  const read = async (): Promise<{ objects: unknown; parsed: ReturnType<typeof parseObjects> }> => {
    const objects = await readFiles(files)
    return { objects, parsed: parseObjects(objects) }
  }

  let chain: Promise<unknown> = Promise.resolve()
  const reloadNow = async (): Promise<ReloadResult> => {
    let input
    try {
      input = await read()
    } catch (error) {
      const r: ReloadResult = { ok: false, error: error as Error, services: services.size, endpointSlices: slices.size, deleted: 0 }
      onReload?.(r)
      return r
    }
    const nextServices = new Set(input.parsed.services.map((s) => s.key))
    const nextSlices = new Set(input.parsed.endpointSlices.map((s) => s.key))
    let deleted = 0
    for (const key of slices) if (!nextSlices.has(key)) { proxier.deleteEndpointSlice(key); deleted++ }
    for (const key of services) if (!nextServices.has(key)) { proxier.deleteService(key); deleted++ }
    proxier.applyList(input.objects)
    services = nextServices
    slices = nextSlices
    const sync = started ? await proxy.sync() : await proxy.start()
    started = true
    const r: ReloadResult = { ok: true, services: services.size, endpointSlices: slices.size, deleted, sync }
    onReload?.(r)
    return r
  }
  const reload = (): Promise<ReloadResult> => {
    const run = chain.then(reloadNow)
    chain = run.catch(() => {})
    return run
  }

  const first = await reload()
  if (!first.ok) {
    await proxy.close({ drainMs: 0 })
    throw first.error
  }

  let watching = false
  const onChange = (curr: fs.Stats, prev: fs.Stats) => {
    if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) void reload()
  }
  if (watch) {
    // Polling the file's stat survives editors and `kubectl ... > file` replacing it.
    for (const f of files) fs.watchFile(f, { interval: watchIntervalMs, persistent: true }, onChange)
    watching = true
  }

  return {
    proxy,
    proxier,
    reload,
    async close(closeOptions) {
      if (watching) {
        for (const f of files) fs.unwatchFile(f, onChange)
        watching = false
      }
      await chain
      await proxy.close(closeOptions)
    },
  }
}

export type { SyncSummary }
