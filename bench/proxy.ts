// Load benchmark of the socket proxy (ServiceProxy): requests per second and p50/p99 latency
// of HTTP through the proxy against the same endpoint directly, with a real load generator
// (`wrk`, Debian package "wrk"), bounded in time, on loopback only.
//
//   tsc -p tsconfig.bench.json && node dist-bench/bench/proxy.js [--duration 5] [--connections 32] [--json FILE]
//
// Three runs: direct (wrk -> endpoint), proxy keep-alive (wrk -> proxy -> endpoint, long-lived
// connections: the piping cost), proxy new connection per request ("Connection: close": the
// accept + route + connect cost). The endpoint runs in a child process so it does not share
// the proxy's event loop; wrk, the endpoint and the proxy still share this machine's cores.
// A measurement, not a pass/fail test. Skips (exit 0) when wrk is not installed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { Proxier } from '../lib/modes/index.js'
import { ServiceProxy } from '../lib/service-proxy/index.js'

const ENDPOINT = { host: '127.78.0.1', port: 9080 }
const SERVICE = { host: '127.78.0.10', port: 8080 }

interface Args {
  duration: number
  connections: number
  threads: number
  json?: string
}

function parseArgs(argv: string[]): Args {
  const a: Args = { duration: 5, connections: 32, threads: 1 }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    if (argv[i] === '--duration') { a.duration = Number(v); i++ }
    else if (argv[i] === '--connections') { a.connections = Number(v); i++ }
    else if (argv[i] === '--threads') { a.threads = Number(v); i++ }
    else if (argv[i] === '--json') { a.json = v; i++ }
    else {
      console.error('usage: node dist-bench/bench/proxy.js [--duration S (1..60)] [--connections N] [--threads N] [--json FILE]')
      process.exit(2)
    }
  }
  // Bounded: a benchmark run must end.
  if (!(a.duration >= 1 && a.duration <= 60)) throw new RangeError(`--duration must be 1..60 seconds, got ${a.duration}`)
  if (!(a.connections >= 1 && a.connections <= 1000)) throw new RangeError(`--connections must be 1..1000, got ${a.connections}`)
  return a
}

function haveWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'pipe' })
    return true
  } catch (err) {
    // wrk --version exits 1 but prints its banner.
    const e = err as { stdout?: Buffer; stderr?: Buffer; code?: string }
    if (e.code === 'ENOENT') return false
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.includes('wrk')
  }
}

const ENDPOINT_SCRIPT = `
const http = require('node:http')
const body = Buffer.from('hello from the endpoint\\n')
const s = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }); res.end(body) })
s.keepAliveTimeout = 60000
s.listen(${ENDPOINT.port}, '${ENDPOINT.host}', () => process.send('ready'))
process.on('disconnect', () => process.exit(0))
`

async function startEndpoint(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', ENDPOINT_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code) => reject(new Error(`endpoint exited with ${code}`)))
  })
  return child
}

export interface WrkResult {
  run: string
  requests: number
  rps: number
  p50ms: number
  p99ms: number
  errors: number
}

function ms(v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60000 : n
}

// wrk runs in a child process, asynchronously: the proxy lives on this process's event loop,
// which must stay free to serve while wrk loads it.
function wrk(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`wrk exited with ${code}: ${out}`))
    })
  })
}

async function runWrk(run: string, url: string, a: Args, close: boolean): Promise<WrkResult> {
  const args = ['-t', String(a.threads), '-c', String(a.connections), '-d', `${a.duration}s`, '--latency', '--timeout', '5s']
  if (close) args.push('-H', 'Connection: close')
  args.push(url)
  const out = await wrk(args, (a.duration + 30) * 1000)
  const pct = (p: string) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'))
    return m ? ms(m[1], m[2]) : NaN
  }
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN)
  const requests = Number(out.match(/(\d+) requests in/)?.[1] ?? NaN)
  const sock = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0)
  const errors = (sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0) + non2xx
  return { run, requests, rps, p50ms: pct('50'), p99ms: pct('99'), errors }
}

async function main() {
  const a = parseArgs(process.argv.slice(2))
  if (!haveWrk()) {
    console.log('bench/proxy: wrk is not installed (apt-get install wrk); skipped')
    return
  }
  const endpoint = await startEndpoint()
  const proxier = new Proxier({ mode: 'native', nodeName: 'bench-node', nodeIPs: ['127.78.255.1'], iptables: { localhostNodePorts: false } })
  proxier.applyService({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'bench', name: 'web' },
    spec: { type: 'ClusterIP', clusterIP: SERVICE.host, ports: [{ name: 'http', port: SERVICE.port, protocol: 'TCP' }] },
  })
  proxier.applyEndpointSlice({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: 'bench', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ENDPOINT.host] }],
    ports: [{ name: 'http', port: ENDPOINT.port, protocol: 'TCP' }],
  })
  const proxy = new ServiceProxy({ proxier })
  await proxy.start()
  const results: WrkResult[] = []
  try {
    results.push(await runWrk('direct keep-alive', `http://${ENDPOINT.host}:${ENDPOINT.port}/`, a, false))
    results.push(await runWrk('proxy keep-alive', `http://${SERVICE.host}:${SERVICE.port}/`, a, false))
    results.push(await runWrk('direct, new conn/request', `http://${ENDPOINT.host}:${ENDPOINT.port}/`, a, true))
    results.push(await runWrk('proxy, new conn/request', `http://${SERVICE.host}:${SERVICE.port}/`, a, true))
  } finally {
    await proxy.close({ drainMs: 0 })
    endpoint.disconnect()
  }
  const counters = proxy.counters()['bench/web:http']
  console.log(`wrk -t${a.threads} -c${a.connections} -d${a.duration}s on loopback; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}`)
  const head = ['run', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'errors']
  const rows = results.map((r) => [r.run, String(r.requests), r.rps.toFixed(0), r.p50ms.toFixed(3), r.p99ms.toFixed(3), String(r.errors)])
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  for (const r of [head, ...rows]) console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '))
  console.log(`proxy counters: ${counters.connections} connections, ${counters.errors} errors, ${counters.refused} refused, ${(counters.bytesIn / 1e6).toFixed(1)} MB in, ${(counters.bytesOut / 1e6).toFixed(1)} MB out`)
  if (a.json) fs.writeFileSync(a.json, JSON.stringify({ args: a, results, counters, node: process.version, cores: os.cpus().length }, null, 2))
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
