// The client of the node tests and the benchmark: COUNT requests (a new connection or UDP socket
// each), one at a time, each bounded by TIMEOUT ms; one JSON line per request on stdout
// ({ i, start, ms, reply } or { i, start, error }), so a test can follow progress while it runs.
// Bounded in count and per request; never loops forever.
'use strict'
const net = require('node:net')
const dgram = require('node:dgram')

const [proto, host, portText, countText, timeoutText, pauseText] = process.argv.slice(2)
const port = Number(portText)
const count = Math.min(Number(countText), 100000)
const timeout = Number(timeoutText ?? 2000)
const pause = Number(pauseText ?? 0)

function tcpRequest() {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port })
    let data = ''
    let connectMs
    const t0 = process.hrtime.bigint()
    const timer = setTimeout(() => (s.destroy(), reject(new Error('timeout'))), timeout)
    s.on('connect', () => {
      connectMs = Number(process.hrtime.bigint() - t0) / 1e6
      s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    })
    s.setEncoding('utf8').on('data', (d) => (data += d))
    s.on('error', (e) => (clearTimeout(timer), reject(e)))
    s.on('close', () => {
      clearTimeout(timer)
      const body = data.split('\r\n\r\n')[1]
      if (body === undefined) reject(new Error(`no reply (${JSON.stringify(data.slice(0, 80))})`))
      else resolve({ reply: body.trim(), connectMs })
    })
  })
}

function udpRequest() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    const timer = setTimeout(() => (s.close(), reject(new Error('timeout'))), timeout)
    s.on('message', (msg) => (clearTimeout(timer), s.close(), resolve({ reply: msg.toString().trim() })))
    s.on('error', (e) => (clearTimeout(timer), s.close(), reject(e)))
    s.send('ping', port, host)
  })
}

async function main() {
  const request = proto === 'udp' ? udpRequest : tcpRequest
  for (let i = 0; i < count; i++) {
    const start = Date.now()
    const t0 = process.hrtime.bigint()
    try {
      const r = await request()
      process.stdout.write(JSON.stringify({ i, start, ms: Number(process.hrtime.bigint() - t0) / 1e6, ...r }) + '\n')
    } catch (e) {
      process.stdout.write(JSON.stringify({ i, start, error: e.message }) + '\n')
    }
    if (pause > 0) await new Promise((r) => setTimeout(r, pause))
  }
}
main()
