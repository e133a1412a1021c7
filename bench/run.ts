// `npm run bench`: the project's main job. Measures the native dataplane on deterministic
// workloads and prints a table; --json FILE writes machine-readable results.
import * as fs from 'node:fs'
import * as os from 'node:os'
import { execSync } from 'node:child_process'
import { measureEstablished, measureNewFlows, type DataplaneResult } from './dataplane.js'
import { measureSync, type SyncResult } from './sync.js'

interface Args {
  full: boolean
  json?: string
}

function parseArgs(argv: string[]): Args {
  const a: Args = { full: false }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--full') a.full = true
    else if (argv[i] === '--json') a.json = argv[++i]
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('usage: npm run bench -- [--full] [--json FILE]')
      process.exit(0)
    } else {
      console.error(`unknown argument ${argv[i]}`)
      process.exit(2)
    }
  }
  return a
}

function machine() {
  let compiler = ''
  try {
    compiler = execSync('c++ --version', { encoding: 'utf8' }).split('\n')[0]
  } catch {
    compiler = 'unknown'
  }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    compiler,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
  }
}

function progress(done: number, total: number, label: string) {
  if (!process.stderr.isTTY) return
  const width = 30
  const filled = Math.round((done / total) * width)
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}   `)
  if (done === total) process.stderr.write('\n')
}

type Result = DataplaneResult | SyncResult

function table(results: Result[]) {
  const rows = results.map((r) => [
    r.workload,
    r.impl,
    String(r.services),
    'flows' in r ? String(r.flows) : '',
    r.nsPerOp >= 1e6 ? `${(r.nsPerOp / 1e6).toFixed(2)} ms` : r.nsPerOp.toFixed(1),
  ])
  const head = ['workload', 'impl', 'services', 'flows', 'ns/op']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')
  console.log(line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
}

function main() {
  const args = parseArgs(process.argv.slice(2))
  const serviceCounts = args.full ? [10, 1000, 100_000] : [10, 1000, 100_000]
  const flowCounts = [1000, 1_000_000]
  const total = serviceCounts.length * 2 + flowCounts.length
  let done = 0
  const step = (label: string) => () => progress(++done, total, label)
  progress(0, total, 'starting')
  const results = [
    ...measureNewFlows(serviceCounts, 500_000, step('new flows')),
    ...measureEstablished(flowCounts, step('established flows')),
    ...measureSync(serviceCounts, 'plain', step('proxier sync')),
  ]
  const m = machine()
  console.log(`\nsvcplane dataplane, ${m.cpu} (${m.cores} cores), Node ${m.node}, ${m.date.slice(0, 10)}\n`)
  table(results)
  if (args.json) {
    fs.writeFileSync(args.json, JSON.stringify({ machine: m, results }, null, 2) + '\n')
    console.log(`\nwrote ${args.json}`)
  }
}

main()
