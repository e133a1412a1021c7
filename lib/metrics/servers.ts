// kube-proxy's two HTTP endpoints: the metrics server (--metrics-bind-address, default
// 127.0.0.1:10249: /metrics, /healthz, /proxyMode, /configz) and the healthz server
// (--healthz-bind-address, default 127.0.0.1:10256: /healthz and /livez with JSON bodies).
import * as http from 'node:http'
import type { ProxierHealth } from './health.js'
import { close, listen, send, type BindAddress } from './http.js'
import type { ProxyMetrics } from './registry.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'

export interface RunningServer {
  address: BindAddress
  /** "http://host:port" */
  url: string
  close(): Promise<void>
}

function urlOf(a: BindAddress): string {
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host
  return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`
}

export type ExtraRoutes = Record<string, (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>>

async function serve(addr: BindAddress, what: string, route: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    route(req, res).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, `${err.message}\n`, { 'Content-Type': 'text/plain; charset=utf-8' })
      else res.destroy()
    })
  })
  server.keepAliveTimeout = 5000
  const address = await listen(server, addr, what)
  return { address, url: urlOf(address), close: () => close(server) }
}

export interface MetricsServerOptions {
  metrics: ProxyMetrics
  mode: string
  /** Served as /configz. */
  config?: unknown
  /** More paths (for example debug dumps). */
  routes?: ExtraRoutes
}

const METRICS_SERVER_KEYS = optionKeys<MetricsServerOptions>({ metrics: true, mode: true, config: true, routes: true })

export function startMetricsServer(addr: BindAddress, o: MetricsServerOptions): Promise<RunningServer> {
  checkOptions('startMetricsServer options', o, METRICS_SERVER_KEYS)
  const text = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }
  return serve(addr, 'metrics', async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    switch (url.pathname) {
      case '/metrics':
        return send(res, 200, await o.metrics.metrics(), { 'Content-Type': o.metrics.contentType })
      case '/healthz':
        return send(res, 200, 'ok', text)
      case '/proxyMode':
        return send(res, 200, o.mode, text)
      case '/configz':
        return send(res, 200, JSON.stringify({ kubeproxy: o.config ?? {} }), { 'Content-Type': 'application/json' })
    }
    const extra = o.routes?.[url.pathname]
    if (extra) return void (await extra(req, res, url))
    send(res, 404, '404 page not found\n', text)
  })
}

export function startHealthzServer(addr: BindAddress, health: ProxierHealth, metrics?: ProxyMetrics): Promise<RunningServer> {
  const json = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' }
  return serve(addr, 'healthz', async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === '/healthz') {
      const r = health.healthz()
      metrics?.healthz(r.code)
      return send(res, r.code, r.body, json)
    }
    if (path === '/livez') {
      const r = health.livez()
      metrics?.livez(r.code)
      return send(res, r.code, r.body, json)
    }
    send(res, 404, '404 page not found\n', { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' })
  })
}
