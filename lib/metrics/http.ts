// Small HTTP helpers shared by the metrics, healthz and health-check-node-port servers.
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { SvcplaneError, SvcplaneRangeError } from '../errors.js'

export interface BindAddress {
  host: string
  port: number
}

/**
 * kube-proxy's bind address flags: "IP:PORT", "[IPv6]:PORT", ":PORT" (every address), or an IP
 * alone (the default port). "" / "0" / "off" disable the server (null).
 */
export function parseBindAddress(text: string, defaultPort: number, flag: string): BindAddress | null {
  const t = text.trim()
  if (t === '' || t === '0' || t === 'off') return null
  let host: string
  let port: string | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t)
  if (v6) [host, port] = [v6[1], v6[2]]
  else if ((t.match(/:/g) ?? []).length > 1) [host, port] = [t, undefined]
  else {
    const i = t.lastIndexOf(':')
    ;[host, port] = i === -1 ? [t, undefined] : [t.slice(0, i), t.slice(i + 1)]
  }
  const p = port === undefined || port === '' ? defaultPort : Number(port)
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new SvcplaneRangeError(`${flag}: invalid port in ${JSON.stringify(text)}`)
  return { host: host === '' ? '0.0.0.0' : host, port: p }
}

export function formatAddress(a: BindAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/** Listens and resolves with the bound address (port 0 picks a free port), or rejects with a clear error. */
export function listen(server: http.Server, addr: BindAddress, what: string): Promise<BindAddress> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : err.message
      reject(new SvcplaneError('LISTEN_FAILED', `cannot serve ${what} on ${formatAddress(addr)}: ${why}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError)
      const a = server.address() as AddressInfo
      resolve({ host: a.address, port: a.port })
    })
  })
}

export function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections?.()
  })
}

export function send(res: http.ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'Content-Length': Buffer.byteLength(body), ...headers })
  res.end(body)
}
