// Which addresses this host owns (so a listener can bind them) and the text forms sockets use.
import * as os from 'node:os'
import { canonicalAddress } from '../util/address.js'
import { splitHostPort } from '../util/host-port.js'
import { SvcplaneRangeError } from '../errors.js'

/** "::ffff:1.2.3.4" (a dual-stack socket's view of an IPv4 peer) -> "1.2.3.4"; otherwise canonical. */
export function peerAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
  return canonicalAddress(plain) ?? plain
}

/** Splits kube-proxy's endpoint string "IP:port" / "[IPv6]:port" (the model made it: it is well formed). */
export function splitEndpoint(endpoint: string): { host: string; port: number } {
  const hp = splitHostPort(endpoint)
  if (hp === undefined) throw new SvcplaneRangeError(`endpoint ${JSON.stringify(endpoint)} is not "IP:port"`)
  return { host: hp.address, port: hp.port }
}

/** Linux answers on all of 127.0.0.0/8 through lo, so any of them is bindable without configuration. */
export function isLoopback(address: string): boolean {
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address)
}

export class LocalAddresses {
  private addresses = new Set<string>()

  constructor() {
    this.refresh()
  }

  /** Re-reads the interface addresses (they can change while the proxy runs). */
  refresh(): void {
    const next = new Set<string>()
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) {
        const c = canonicalAddress(a.address.split('%')[0])
        if (c !== undefined) next.add(c)
      }
    }
    this.addresses = next
  }

  has(address: string): boolean {
    return isLoopback(address) || this.addresses.has(address)
  }
}
