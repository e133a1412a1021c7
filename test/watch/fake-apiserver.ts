// A Kubernetes API server double on 127.0.0.1 that speaks the list and watch protocol for
// Services and EndpointSlices: lists with a resourceVersion, chunked watch streams of
// newline-delimited events from a given resourceVersion, BOOKMARK events, dropped connections,
// held (paused) watch requests, and 410 Gone for compacted resourceVersions (as an HTTP status
// or as an ERROR event in the stream, both of which real servers send).
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export type Resource = 'services' | 'endpointslices'
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

interface Watcher {
  resource: Resource
  res: http.ServerResponse
}

const PATHS: Record<string, Resource> = {
  '/api/v1/services': 'services',
  '/apis/discovery.k8s.io/v1/endpointslices': 'endpointslices',
}

export class FakeApiServer {
  rv = 100
  private readonly objects: Record<Resource, Map<string, Record<string, unknown>>> = { services: new Map(), endpointslices: new Map() }
  private history: { rv: number; resource: Resource; type: EventType; object: unknown }[] = []
  private compactedBelow = 0
  private readonly watchers = new Set<Watcher>()
  private held: (() => void)[] = []
  private paused = false
  /** How an expired resourceVersion is answered. */
  goneMode: 'status' | 'event' = 'status'
  /** The next N list requests fail with HTTP 500. */
  failLists = 0
  readonly requests: { resource: Resource; watch: boolean; query: Record<string, string> }[] = []
  private server = http.createServer((req, res) => this.handle(req, res))
  port = 0

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** A kubeconfig file for this server, in a fresh temporary directory. */
  writeKubeconfig(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-kc-'))
    const file = path.join(dir, 'config')
    fs.writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${this.url}`,
        // client-node refuses plain HTTP unless TLS verification is explicitly off.
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: fake',
        '  user:',
        '    token: test-token',
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: fake',
        'current-context: fake',
        '',
      ].join('\n'),
    )
    return file
  }

  lists(resource: Resource): number {
    return this.requests.filter((r) => r.resource === resource && !r.watch).length
  }

  watchRequests(resource: Resource) {
    return this.requests.filter((r) => r.resource === resource && r.watch)
  }

  openWatches(resource?: Resource): number {
    return [...this.watchers].filter((w) => resource === undefined || w.resource === resource).length
  }

  private keyOf(obj: Record<string, unknown>): string {
    const m = obj.metadata as { namespace: string; name: string }
    return `${m.namespace}/${m.name}`
  }

  private record(resource: Resource, type: EventType, object: Record<string, unknown>): void {
    this.history.push({ rv: this.rv, resource, type, object })
    const line = JSON.stringify({ type, object }) + '\n'
    for (const w of this.watchers) if (w.resource === resource) w.res.write(line)
  }

  /** Creates or replaces an object (ADDED / MODIFIED). */
  put(resource: Resource, obj: object): void {
    const o = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>
    this.rv++
    ;(o.metadata as Record<string, unknown>).resourceVersion = String(this.rv)
    const key = this.keyOf(o)
    const type: EventType = this.objects[resource].has(key) ? 'MODIFIED' : 'ADDED'
    this.objects[resource].set(key, o)
    this.record(resource, type, o)
  }

  delete(resource: Resource, namespace: string, name: string): void {
    const key = `${namespace}/${name}`
    const o = this.objects[resource].get(key)
    if (!o) throw new Error(`no ${resource} ${key}`)
    this.objects[resource].delete(key)
    this.rv++
    this.record(resource, 'DELETED', { ...o, metadata: { ...(o.metadata as object), resourceVersion: String(this.rv) } })
  }

  /** A BOOKMARK carrying the current resourceVersion to every open watch. */
  bookmark(): void {
    this.rv++
    for (const w of this.watchers) {
      const kind = w.resource === 'services' ? 'Service' : 'EndpointSlice'
      w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } }) + '\n')
    }
  }

  /** Cuts every open watch connection (no clean end of stream). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.socket?.destroy()
    this.watchers.clear()
  }

  /** Forgets the event history: watches from older resourceVersions get 410 Gone. */
  compact(): void {
    this.history = []
    this.compactedBelow = this.rv
  }

  /** Holds new watch requests unanswered until resume(). */
  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    for (const h of this.held.splice(0)) h()
  }

  async close(): Promise<void> {
    this.resume()
    for (const w of this.watchers) w.res.end()
    this.watchers.clear()
    await new Promise<void>((r) => {
      this.server.close(() => r())
      this.server.closeAllConnections()
    })
  }

  private gone(res: http.ServerResponse, rv: number): void {
    const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${rv} (${this.compactedBelow})`, reason: 'Expired', code: 410 }
    if (this.goneMode === 'status') {
      res.writeHead(410, { 'Content-Type': 'application/json' }).end(JSON.stringify(status))
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ type: 'ERROR', object: status }) + '\n')
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url)
    const resource = PATHS[url.pathname]
    if (resource === undefined) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }))
      return
    }
    const query = Object.fromEntries(url.searchParams)
    const watch = query.watch === 'true'
    this.requests.push({ resource, watch, query })
    if (!watch) {
      if (this.failLists > 0) {
        this.failLists--
        res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd is unhappy' }))
        return
      }
      const kind = resource === 'services' ? 'ServiceList' : 'EndpointSliceList'
      const apiVersion = resource === 'services' ? 'v1' : 'discovery.k8s.io/v1'
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ kind, apiVersion, metadata: { resourceVersion: String(this.rv) }, items: [...this.objects[resource].values()] }))
      return
    }
    const open = () => {
      const from = Number(query.resourceVersion ?? '0')
      if (from < this.compactedBelow) return this.gone(res, from)
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' })
      res.flushHeaders()
      for (const e of this.history) if (e.resource === resource && e.rv > from) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n')
      const w = { resource, res }
      this.watchers.add(w)
      res.on('close', () => this.watchers.delete(w))
    }
    if (this.paused) this.held.push(open)
    else open()
  }
}

/** Polls `check` every 10 ms until it returns true or `timeoutMs` passes; returns whether it did. */
export async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (check()) return true
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return false
    await new Promise((r) => setTimeout(r, 10))
  }
}
