// The UDP blaster of bench/node.ts: from one socket, keeps WINDOW datagrams in flight to
// HOST:PORT (each reply lets the next one go) until COUNT were sent or MS milliseconds passed,
// then prints one JSON line { sent, received, ms }. Bounded in count and time: it never loops
// forever, and a lost datagram only shrinks the window until the time is up.
'use strict'
const dgram = require('node:dgram')

const [host, portText, countText, windowText, msText] = process.argv.slice(2)
const port = Number(portText)
const count = Math.min(Number(countText), 1000000)
const windowSize = Math.min(Number(windowText ?? 32), 1024)
const limitMs = Math.min(Number(msText ?? 30000), 120000)

const s = dgram.createSocket('udp4')
let sent = 0
let received = 0
const t0 = process.hrtime.bigint()
const payload = Buffer.from('ping')

let done = false
function finish() {
  if (done) return
  done = true
  clearTimeout(timer)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  process.stdout.write(JSON.stringify({ sent, received, ms }) + '\n')
  s.close()
}

function sendOne() {
  if (sent >= count) return
  sent++
  s.send(payload)
}

const timer = setTimeout(finish, limitMs)
s.on('message', () => {
  received++
  if (received >= count) finish()
  else sendOne()
})
s.on('error', () => undefined)
s.connect(port, host, () => {
  for (let i = 0; i < windowSize; i++) sendOne()
})
