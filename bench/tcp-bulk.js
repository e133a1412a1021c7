// The TCP bulk transfer of bench/node.ts. `server PORT`: a sink that reads a connection to its
// end and answers with the byte count (prints "listening" once bound). `client HOST PORT BYTES MS`:
// sends BYTES in 64 KiB writes, half-closes, waits for the count, and prints one JSON line
// { bytes, ms } (or { error }). Bounded: BYTES at most 1 GiB, and MS milliseconds at most.
'use strict'
const net = require('node:net')

const [role, ...args] = process.argv.slice(2)

if (role === 'server') {
  const server = net.createServer((s) => {
    let bytes = 0
    s.on('data', (d) => (bytes += d.length))
    s.on('end', () => s.end(`${bytes}\n`))
    s.on('error', () => undefined)
  })
  server.listen(Number(args[0]), '0.0.0.0', () => process.stdout.write('listening\n'))
  process.on('SIGTERM', () => process.exit(0))
} else {
  const [host, portText, bytesText, msText] = args
  const total = Math.min(Number(bytesText), 1 << 30)
  const limitMs = Math.min(Number(msText ?? 30000), 120000)
  const chunk = Buffer.alloc(65536, 0x61)
  const t0 = process.hrtime.bigint()
  const s = net.connect({ host, port: Number(portText) })
  const timer = setTimeout(() => (s.destroy(), process.stdout.write(JSON.stringify({ error: 'timeout' }) + '\n')), limitMs)
  let sent = 0
  let reply = ''
  const pump = () => {
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent)
      sent += n
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return s.once('drain', pump)
    }
    s.end()
  }
  s.on('connect', pump)
  s.setEncoding('utf8').on('data', (d) => (reply += d))
  s.on('error', (e) => (clearTimeout(timer), process.stdout.write(JSON.stringify({ error: e.message }) + '\n')))
  s.on('end', () => {
    clearTimeout(timer)
    process.stdout.write(JSON.stringify({ bytes: Number(reply.trim()), ms: Number(process.hrtime.bigint() - t0) / 1e6 }) + '\n')
  })
}
