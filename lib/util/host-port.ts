// "host:port" text, as Go's net.JoinHostPort and net.SplitHostPort write and read it: IPv6
// addresses in brackets ("[2001:db8::1]:80"). The one place such strings are made and taken apart.

import { canonicalAddress } from './address.js'

/** An address and a port, as kube-proxy's Endpoint carries them next to its "ip:port" string. */
export interface HostPort {
  address: string
  port: number
}

/** "10.0.0.1:80", "[2001:db8::1]:80". */
export function joinHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

/**
 * Splits "a.b.c.d:port" or "[v6]:port" into a canonical address and a port 0..65535; undefined
 * when the text is not exactly that (a bare IPv6 address without brackets, a name, a bad port).
 */
export function splitHostPort(text: string): HostPort | undefined {
  if (typeof text !== 'string') return undefined
  let host: string
  let portText: string
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0 || text[close + 1] !== ':') return undefined
    host = text.slice(1, close)
    if (!host.includes(':')) return undefined
    portText = text.slice(close + 2)
  } else {
    const colon = text.indexOf(':')
    if (colon < 0 || text.indexOf(':', colon + 1) >= 0) return undefined
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
  }
  if (!/^(0|[1-9]\d{0,4})$/.test(portText)) return undefined
  const port = Number(portText)
  const address = canonicalAddress(host)
  if (port > 65535 || address === undefined) return undefined
  return { address, port }
}
