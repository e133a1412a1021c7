// --src / --dst / --proto / --hook as a Packet.
import { canonicalAddress } from '../util/address.js'
import type { Packet } from '../proxy/packet.js'
import { UsageError } from './errors.js'

/** "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address. */
export function parseEndpoint(text: string, flag: string, command: string, defaultPort?: number): { ip: string; port: number } {
  let host = text
  let port: string | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  if (v6) [host, port] = [v6[1], v6[2]]
  else if ((text.match(/:/g) ?? []).length === 1) [host, port] = text.split(':')
  const ip = canonicalAddress(host)
  if (ip === undefined) throw new UsageError(`${flag}: ${JSON.stringify(host)} is not an IP address`, command)
  if (port === undefined) {
    if (defaultPort === undefined) throw new UsageError(`${flag} needs a port: IP:PORT (or [IPv6]:PORT)`, command)
    return { ip, port: defaultPort }
  }
  const n = Number(port)
  if (!/^\d+$/.test(port) || n > 65535) throw new UsageError(`${flag}: invalid port ${JSON.stringify(port)}`, command)
  return { ip, port: n }
}

export function packetFrom(v: Record<string, unknown>, command: string): Packet {
  if (v.src === undefined) throw new UsageError('--src IP[:PORT] is required', command)
  if (v.dst === undefined) throw new UsageError('--dst IP:PORT is required', command)
  const src = parseEndpoint(v.src as string, '--src', command, 40000)
  const dst = parseEndpoint(v.dst as string, '--dst', command)
  if (src.ip.includes(':') !== dst.ip.includes(':')) throw new UsageError('--src and --dst must be of the same IP family', command)
  const packet: Packet = {
    src: src.ip,
    sport: src.port,
    dst: dst.ip,
    dport: dst.port,
    protocol: (v.proto as string).toUpperCase() as Packet['protocol'],
    hook: v.hook as Packet['hook'],
  }
  if (v.now !== undefined) packet.now = v.now as number
  return packet
}
