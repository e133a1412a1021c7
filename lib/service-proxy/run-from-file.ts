// `svcplane proxy --cluster FILE`: a ServiceProxy fed from a `kubectl get
// services,endpointslices -A -o json` dump, re-read when the file changes. A reload applies
// the difference: objects that disappeared from the file are deleted, the rest re-applied
// (unchanged ones cost nothing at sync). A file that does not parse (for example caught half
// written) changes nothing; the next change is tried again.
import * as fs from 'node:fs'
import { parseObjects } from '../k8s/load.js'
import { type SyncSummary } from '../proxy/proxier.js'
import { Proxier } from '../modes/index.js'
import type { ProxierOptions } from '../modes/index.js'
import { ServiceProxy, type ServiceProxyOptions, type ProxySyncResult } from './service-proxy.js'

export interface RunProxyOptions extends Omit<ProxierOptions, 'mode'>, Omit<ServiceProxyOptions, 'proxier'> {
  /** Default 'native'. */
  mode?: ProxierOptions['mode']
  /** Re-read the file when it changes (default true). */
  watch?: boolean
  /** How often the file's modification time is checked, ms (default 500). */
  watchIntervalMs?: number
  /** Called after every reload attempt, with the error when the file was refused. */
  onReload?: (result: ReloadResult) => void
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

export async function runProxyFromFile(file: string, options: RunProxyOptions): Promise<RunningProxy> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`runProxyFromFile: file must be a path, got ${JSON.stringify(file)}`)
  const { watch = true, watchIntervalMs = 500, onReload, mode = 'native', clock, connectTimeoutMs, udpIdleTimeoutMs, gcIntervalMs, listenOn, onError, ...rest } = options
  const proxier = new Proxier({ ...rest, mode, clock })
  const proxy = new ServiceProxy({ proxier, clock, connectTimeoutMs, udpIdleTimeoutMs, gcIntervalMs, listenOn, onError })
  let services = new Set<string>()
  let slices = new Set<string>()
  let started = false

  // The first read must succeed: a proxy started from a broken file would serve nothing.
  const read = async (): Promise<{ text: string; parsed: ReturnType<typeof parseObjects> }> => {
    const text = await fs.promises.readFile(file, 'utf8')
    return { text, parsed: parseObjects(text) }
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
    proxier.applyList(input.text)
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
    fs.watchFile(file, { interval: watchIntervalMs, persistent: true }, onChange)
    watching = true
  }

  return {
    proxy,
    proxier,
    reload,
    async close(closeOptions) {
      if (watching) {
        fs.unwatchFile(file, onChange)
        watching = false
      }
      await chain
      await proxy.close(closeOptions)
    },
  }
}

export type { SyncSummary }
