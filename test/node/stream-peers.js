// Long-lived flows for the native restart test (restart-native.test.ts).
//   server NAME PORT: a TCP server in a pod that answers every line of a connection with
//     "<NAME> <peer address> <line>", for as long as the connection lasts. Prints "listening".
//   tcp HOST PORT COUNT PAUSE TIMEOUT: ONE connection, COUNT requests (a line each, PAUSE ms
//     apart), each bounded by TIMEOUT ms; stops at the first failure (the connection is broken).
//   udp HOST PORT COUNT PAUSE TIMEOUT: ONE socket (one flow), COUNT datagrams, a reply awaited
//     up to TIMEOUT ms each; a lost one is recorded and the next goes.
// One JSON line per request on stdout ({ i, start, ms, reply } or { i, start, error }).
// Bounded in count and time; never loops forever.
'use strict'
const net = require('node:net')
const dgram = require('node:dgram')

const [mode, ...args] = process.argv.slice(2)
const line = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function server(name, port) {
  const srv = net.createServer((s) => {
    let buf = ''
    s.setEncoding('utf8').on('data', (d) => {
      buf += d
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        s.write(`${name} ${s.remoteAddress} ${buf.slice(0, i)}\n`)
        buf = buf.slice(i + 1)
      }
    })
    s.on('error', () => s.destroy())
  })
  srv.listen(Number(port), '0.0.0.0', () => process.stdout.write('listening\n'))
  process.on('SIGTERM', () => process.exit(0))
}

async function tcp(host, port, count, pause, timeout) {
  const s = net.connect({ host, port: Number(port) })
  s.setEncoding('utf8')
  let buf = ''
  let waiter
  let failure
  const fail = (e) => {
    failure ??= e
    waiter?.()
  }
  s.on('data', (d) => ((buf += d), waiter?.()))
  s.on('error', fail)
  s.on('close', () => fail(new Error('closed')))
  await new Promise((r, j) => (s.once('connect', r), s.once('error', j))).catch(fail)
  for (let i = 0; i < count && failure === undefined; i++) {
    const start = Date.now()
    s.write(`${i}\n`)
    const reply = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeout)
      waiter = () => {
        const at = buf.indexOf('\n')
        if (at >= 0 || failure) {
          clearTimeout(timer)
          const l = at >= 0 ? buf.slice(0, at) : undefined
          buf = at >= 0 ? buf.slice(at + 1) : buf
          resolve(l)
        }
      }
      waiter()
    })
    if (reply === undefined) {
      line({ i, start, error: failure ? failure.code ?? failure.message : 'timeout' })
      break
    }
    line({ i, start, ms: Date.now() - start, reply })
    await sleep(pause)
  }
  s.destroy()
}

async function udp(host, port, count, pause, timeout) {
  const s = dgram.createSocket('udp4')
  let waiter
  s.on('message', (m) => waiter?.(m.toString().trim()))
  await new Promise((r) => s.bind(0, r))
  for (let i = 0; i < count; i++) {
    const start = Date.now()
    const reply = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeout)
      waiter = (m) => (clearTimeout(timer), resolve(m))
      s.send(`ping ${i}`, Number(port), host)
    })
    line(reply === undefined ? { i, start, error: 'timeout' } : { i, start, ms: Date.now() - start, reply })
    await sleep(pause)
  }
  s.close()
}

const [a, b, c, d, e] = args
if (mode === 'server') server(a, b)
else (mode === 'udp' ? udp : tcp)(a, b, Math.min(Number(c), 100000), Number(d), Math.min(Number(e), 60000))
