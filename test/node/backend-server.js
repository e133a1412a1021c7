// A pod's server for the node tests: HTTP (one request a connection) and UDP on the given ports,
// answering "<pod name> <peer address>" so a test sees which endpoint a packet reached and
// whether it was masqueraded. Prints "listening" once both sockets are bound.
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

process.on('SIGTERM', () => process.exit(0))
