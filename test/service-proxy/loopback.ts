// Loopback fixtures for the socket proxy tests: endpoint servers (HTTP, UDP echo, TCP echo) on
// 127.x.y.z addresses, and clients that bind their own 127.x.y.z source address so tests can
// play several client IPs. Network safety: everything binds and connects to 127.0.0.0/8 only;
// every wait is bounded; callers close what they open.
import * as dgram from 'node:dgram'
import * as http from 'node:http'
import * as net from 'node:net'

function assertLoopback(address: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(address)) throw new Error(`test network safety: ${address} is not in 127.0.0.0/8`)
}

export interface Endpoint {
  address: string
  port: number
  name: string
  close(): Promise<void>
}

/** An HTTP server answering every request with its own "IP:port". */
export async function httpEndpoint(address: string, port: number): Promise<Endpoint & { server: http.Server; requests: number }> {
  assertLoopback(address)
  const name = `${address}:${port}`
  const ep = {
    address,
    port,
    name,
    requests: 0,
    server: http.createServer((req, res) => {
      ep.requests++
      req.resume()
      req.on('end', () => res.end(name))
    }),
    close: () =>
      new Promise<void>((resolve) => {
        ep.server.close(() => resolve())
        ep.server.closeAllConnections()
      }),
  }
  await new Promise<void>((resolve, reject) => {
    ep.server.once('error', reject)
    ep.server.listen(port, address, () => resolve())
  })
  return ep
}

/** A UDP server answering each datagram with "IP:port|" + the datagram. */
export async function udpEchoEndpoint(address: string, port: number): Promise<Endpoint> {
  assertLoopback(address)
  const name = `${address}:${port}`
  const socket = dgram.createSocket('udp4')
  socket.on('message', (msg, rinfo) => socket.send(Buffer.concat([Buffer.from(`${name}|`), msg]), rinfo.port, rinfo.address))
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, address, () => resolve())
  })
  return { address, port, name, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) }
}

/** A raw TCP server: echoes everything; after the client's FIN sends "bytes=N" and closes. */
export async function tcpEchoEndpoint(address: string, port: number): Promise<Endpoint> {
  assertLoopback(address)
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    let n = 0
    s.on('data', (d) => {
      n += d.length
      s.write(d)
    })
    s.on('end', () => s.end(`bytes=${n}`))
    s.on('error', () => {})
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, address, () => resolve())
  })
  return { address, port, name: `${address}:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

export interface Reply {
  ok: boolean
  body?: string
  error?: string
}

/** One HTTP GET on a new connection (no keep-alive), optionally from a chosen source address. */
export function get(host: string, port: number, from?: string, timeoutMs = 5000): Promise<Reply> {
  assertLoopback(host)
  if (from !== undefined) assertLoopback(from)
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', agent: false, localAddress: from, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ ok: res.statusCode === 200, body }))
      res.on('error', (e) => resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (e) => resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }))
  })
}

/** Sends one datagram from a socket and waits (bounded) for one reply. */
export function udpAsk(socket: dgram.Socket, host: string, port: number, text: string, timeoutMs = 2000): Promise<string | undefined> {
  assertLoopback(host)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage)
      resolve(undefined)
    }, timeoutMs)
    const onMessage = (msg: Buffer) => {
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve(msg.toString())
    }
    socket.on('message', onMessage)
    socket.send(text, port, host)
  })
}

export async function udpClient(from: string, port = 0): Promise<dgram.Socket> {
  assertLoopback(from)
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.bind(port, from, () => resolve())
  })
  return s
}

/** Polls `cond` every 10 ms, at most `limit` times (bounded; not a timing assertion). */
export async function eventually(cond: () => boolean, limit = 500): Promise<boolean> {
  for (let i = 0; i < limit; i++) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return cond()
}
