// A pod's server for the node tests: HTTP (one request a connection) and UDP on the given ports,
// answering "<pod name> <peer address>" so a test sees which endpoint a packet reached and
// whether it was masqueraded. Prints "listening" once both sockets are bound; SIGTERM stops it
// gracefully, as a terminating pod's server stops.
'use strict'
const http = require('node:http')
const dgram = require('node:dgram')

const [name, tcpPort, udpPort] = process.argv.slice(2)
let bound = 0
const ready = () => ++bound === 2 && process.stdout.write('listening\n')

const server = http.createServer((req, res) => {
  res.setHeader('Connection', 'close')
  res.end(`${name} ${req.socket.remoteAddress}\n`)
})
server.keepAliveTimeout = 1
server.listen(Number(tcpPort), '0.0.0.0', ready)

const udp = dgram.createSocket('udp4')
udp.on('message', (msg, rinfo) => udp.send(`${name} ${rinfo.address}\n`, rinfo.port, rinfo.address))
udp.bind(Number(udpPort), '0.0.0.0', ready)

// A terminating pod's server: no new connections, the ones it has are answered, then it exits
// (bounded: after 5 s it exits anyway).
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 5000).unref()
  udp.close()
  server.close(() => process.exit(0))
})
