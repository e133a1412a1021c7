// The userspace mode against a direct connection, on loopback: requests per second over
// keep-alive connections and connection-setup latency (connect, one request, its answer,
// close: p50 / p99), straight to the endpoint, through the userspace mode's proxy port, and
// through the ServiceProxy (the same sockets deciding with the native dataplane).
//
//   tsc -p tsconfig.bench.json && node dist-bench/bench/userspace.js [--duration 3] [--connects 1000] [--json FILE]
//
// The endpoint (an echo server) and the load generator run in child processes, so neither
// shares the proxy's event loop; all three still share this machine's cores. Every run is
// bounded in time and count. A measurement, not a pass/fail test.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import { Proxier } from '../lib/modes/index.js'
import { ServiceProxy } from '../lib/service-proxy/service-proxy.js'

const ENDPOINT = { host: '127.79.0.1', port: 9090 }
const SERVICE_IP = '127.79.0.10'
const REQUEST_BYTES = 64

export interface UserspaceBenchResult {
  /** direct: to the endpoint; userspace: the userspace mode's proxy port; service-proxy: ServiceProxy in mode native. */
  path: 'direct' | 'userspace' | 'service-proxy'
  requestsPerSecond: number
  connections: number
  connectP50Us: number
  connectP99Us: number
  connects: number
}

export interface UserspaceBenchOptions {
  /** Seconds of each requests-per-second run (1..30). */
  durationS: number
  /** Concurrent keep-alive connections of the requests-per-second run. */
  connections: number
  /** Connection-setup samples per path (bounded by 5 s as well). */
  connects: number
}

const ECHO_SERVER = `
const net = require('node:net')
const [host, port] = process.argv.slice(1)
const server = net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); s.on('error', () => {}) })
server.listen(Number(port), host, () => process.stdout.write('ready\\n'))
process.on('SIGTERM', () => process.exit(0))
`

// rps: C connections each sending REQUEST_BYTES and waiting for them back, until the deadline.
// connect: one connection at a time: connect, send, wait for the echo, close; latency each.
const LOAD_CLIENT = `
const net = require('node:net')
const [host, port, mode, n, ms, size] = process.argv.slice(1).map((v, i) => (i < 1 || i === 2 ? v : Number(v)))
const payload = Buffer.alloc(size, 97)
const deadline = Date.now() + ms
function rps() {
  let done = 0, open = n
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host, port, noDelay: true })
    let got = 0
    s.on('connect', () => s.write(payload))
    s.on('data', (d) => {
      got += d.length
      if (got < size) return
      got -= size
      done++
      if (Date.now() < deadline) s.write(payload)
      else s.end()
    })
    s.on('error', () => {})
    s.on('close', () => { if (--open === 0) finish({ requests: done, seconds: ms / 1000 }) })
  }
}
function connect() {
  const samples = []
  const one = () => {
    if (samples.length >= n || Date.now() > deadline) return finish({ samples })
    const t0 = process.hrtime.bigint()
    const s = net.connect({ host, port, noDelay: true })
    s.on('connect', () => s.write(payload))
    let got = 0
    s.on('data', (d) => {
      got += d.length
      if (got < size) return
      samples.push(Number(process.hrtime.bigint() - t0) / 1000)
      s.destroy()
      setImmediate(one)
    })
    s.on('error', () => setImmediate(one))
  }
  one()
}
function finish(r) { process.stdout.write(JSON.stringify(r) + '\\n'); process.exit(0) }
mode === 'rps' ? rps() : connect()
`

function child(script: string, args: (string | number)[], timeoutMs: number): { proc: ReturnType<typeof spawn>; line: Promise<string> } {
  const proc = spawn(process.execPath, ['-e', script, ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error('benchmark child did not answer in time'))
    }, timeoutMs)
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) {
        clearTimeout(timer)
        resolve(out.slice(0, nl))
      }
    })
    proc.on('exit', (code) => {
      clearTimeout(timer)
      if (!out.includes('\n')) reject(new Error(`benchmark child exited with ${code}`))
    })
  })
  return { proc, line }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function measurePath(path: UserspaceBenchResult['path'], host: string, port: number, o: UserspaceBenchOptions): Promise<UserspaceBenchResult> {
  const rps = child(LOAD_CLIENT, [host, port, 'rps', o.connections, o.durationS * 1000, REQUEST_BYTES], o.durationS * 1000 + 15_000)
  const r = JSON.parse(await rps.line) as { requests: number; seconds: number }
  const conn = child(LOAD_CLIENT, [host, port, 'connect', o.connects, 5000, REQUEST_BYTES], 20_000)
  const samples = (JSON.parse(await conn.line) as { samples: number[] }).samples.sort((a, b) => a - b)
  return {
    path,
    requestsPerSecond: Math.round(r.requests / r.seconds),
    connections: o.connections,
    connectP50Us: Math.round(percentile(samples, 50)),
    connectP99Us: Math.round(percentile(samples, 99)),
    connects: samples.length,
  }
}

function objects(clusterIP: string) {
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'bench', name: 'echo' }, spec: { clusterIP, ports: [{ name: 'echo', port: 80, protocol: 'TCP' }] } },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
      metadata: { namespace: 'bench', name: 'echo-1', labels: { 'kubernetes.io/service-name': 'echo' } },
      ports: [{ name: 'echo', port: ENDPOINT.port, protocol: 'TCP' }],
      endpoints: [{ addresses: [ENDPOINT.host], conditions: { ready: true } }],
    },
  ]
}

/** Direct, userspace mode and ServiceProxy, one after the other against one echo endpoint. */
export async function measureUserspace(o: UserspaceBenchOptions, onStep: (label: string) => void = () => {}): Promise<UserspaceBenchResult[]> {
  if (!(o.durationS >= 1 && o.durationS <= 30)) throw new RangeError(`duration must be 1..30 s, got ${o.durationS}`)
  if (!(o.connections >= 1 && o.connections <= 256)) throw new RangeError(`connections must be 1..256, got ${o.connections}`)
  if (!(o.connects >= 10 && o.connects <= 100_000)) throw new RangeError(`connects must be 10..100000, got ${o.connects}`)
  const endpoint = child(ECHO_SERVER, [ENDPOINT.host, ENDPOINT.port], 15_000)
  const results: UserspaceBenchResult[] = []
  try {
    await endpoint.line
    results.push(await measurePath('direct', ENDPOINT.host, ENDPOINT.port, o))
    onStep('userspace: direct')

    const us = new Proxier({ mode: 'userspace', nodeName: 'bench', nodeIPs: ['127.0.0.1'], seed: 1, userspace: { listen: true, bindAddress: '127.0.0.1' } })
    us.applyList(objects('172.30.79.10'))
    us.sync()
    const view = us.inspect()
    if (view.mode !== 'userspace') throw new Error('expected the userspace view')
    await view.userspace.settled()
    try {
      results.push(await measurePath('userspace', '127.0.0.1', view.userspace.servicePorts()[0]!.proxyPort, o))
    } finally {
      await view.userspace.close()
    }
    onStep('userspace: userspace mode')

    const native = new Proxier({ mode: 'native', nodeName: 'bench', nodeIPs: ['127.0.0.1'], seed: 1, iptables: { localhostNodePorts: false } })
    native.applyList(objects(SERVICE_IP))
    const proxy = new ServiceProxy({ proxier: native })
    await proxy.start()
    try {
      results.push(await measurePath('service-proxy', SERVICE_IP, 80, o))
    } finally {
      await proxy.close({ drainMs: 0 })
    }
    onStep('userspace: service proxy')
  } finally {
    endpoint.proc.kill('SIGTERM')
  }
  return results
}

export function userspaceTable(results: readonly UserspaceBenchResult[]): string {
  const direct = results.find((r) => r.path === 'direct')
  const rows = [['path', 'requests/s', 'vs direct', 'connect p50 µs', 'connect p99 µs', 'samples']]
  for (const r of results) {
    const ratio = direct === undefined ? '' : `${(r.requestsPerSecond / direct.requestsPerSecond).toFixed(2)}x`
    rows.push([r.path, String(r.requestsPerSecond), ratio, String(r.connectP50Us), String(r.connectP99Us), String(r.connects)])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')
}

function parseArgs(argv: string[]): UserspaceBenchOptions & { json?: string } {
  const a: UserspaceBenchOptions & { json?: string } = { durationS: 3, connections: 16, connects: 1000 }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    if (argv[i] === '--duration') a.durationS = Number(v)
    else if (argv[i] === '--connections') a.connections = Number(v)
    else if (argv[i] === '--connects') a.connects = Number(v)
    else if (argv[i] === '--json') a.json = v
    else {
      console.error('usage: node dist-bench/bench/userspace.js [--duration S (1..30)] [--connections N (1..256)] [--connects N] [--json FILE]')
      process.exit(2)
    }
    i++
  }
  return a
}

if (require.main === module) {
  const args = parseArgs(process.argv.slice(2))
  measureUserspace(args).then(
    (results) => {
      console.log(userspaceTable(results))
      if (args.json !== undefined) fs.writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n')
    },
    (err: Error) => {
      console.error(`bench/userspace: ${err.message}`)
      process.exit(1)
    },
  )
}
