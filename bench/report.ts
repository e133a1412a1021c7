// Turns benchmark results into a terminal table, a Markdown report and SVG charts.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { BenchResult } from './results.js'
import { lineChart, type Series } from './svg.js'

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  compiler: string
  platform: string
  date: string
}

function human(r: BenchResult): string {
  const size = (b: number) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b.toFixed(0)} B`)
  if (r.bytes !== undefined) {
    const parts = [size(r.bytes)]
    if (r.perService !== undefined) parts.push(`${size(r.perService)}/service`)
    if (r.perEndpoint !== undefined) parts.push(`${size(r.perEndpoint)}/endpoint`)
    if (r.perFlow !== undefined) parts.push(`${size(r.perFlow)}/flow`)
    if (r.rssBytes !== undefined) parts.push(`rss +${size(Math.max(0, r.rssBytes))}`)
    return parts.join(', ')
  }
  const ns = r.nsPerOp ?? NaN
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`
  return `${ns.toFixed(1)} ns`
}

/** A result's row name: the workload with its case or variant. */
export function key(r: BenchResult): string {
  return [r.workload, r.case, r.variant].filter(Boolean).join(':')
}

const find = (results: BenchResult[], k: string, impl: string, n: number) =>
  results.find((x) => key(x) === k && x.impl === impl && x.services === n)

export function textTable(results: BenchResult[]): string {
  const head = ['workload', 'impl', 'services', 'flows', 'batch', 'threads', 'per op / size', 'min–max', 'x floor']
  const rows = results.map((r) => [
    key(r),
    r.impl,
    String(r.services),
    r.flows !== undefined ? String(r.flows) : '',
    r.batch !== undefined ? String(r.batch) : '',
    r.threads !== undefined ? String(r.threads) : '',
    human(r),
    r.min !== undefined ? `${r.min.toFixed(1)}–${r.max!.toFixed(1)} (${r.runs})` : '',
    r.ratio !== undefined ? r.ratio.toFixed(2) : '',
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** The summary: per service count, new-flow cost of each implementation side by side. */
export function summaryTable(results: BenchResult[]): string {
  const impls = ['native-batch', 'native-call', 'cpp-linear', 'ts-iptables', 'ts-nftables', 'ipvs', 'kernel-nft', 'kernel-legacy', 'kernel-nftables'].filter((i) =>
    results.some((r) => key(r) === 'new-flow:last' && r.impl === i),
  )
  const counts = [...new Set(results.filter((r) => key(r) === 'new-flow:last').map((r) => r.services))].sort((a, b) => a - b)
  const cell = (w: string, impl: string, n: number) => {
    const r = find(results, w, impl, n)
    return r ? human(r) : '–'
  }
  const out = [`| services | ${impls.map((i) => `${i} new flow (last service)`).join(' | ')} | native sync-one | ts-iptables sync-one |`]
  out.push(`|---:|${impls.map(() => '---:').join('|')}|---:|---:|`)
  for (const n of counts)
    out.push(
      `| ${n.toLocaleString('en-US')} | ${impls.map((i) => cell('new-flow:last', i, n)).join(' | ')} | ${cell('sync-one', 'native', n)} | ${cell('sync-one:reload', 'ts-iptables', n)} |`,
    )
  return out.join('\n')
}

/** The real kernel per service count: iptables-restore (nft and legacy backends) next to kube-proxy's nftables table through `nft -f`. */
export function kernelTable(results: BenchResult[]): string | undefined {
  const impls = ['kernel-nft', 'kernel-legacy', 'kernel-nftables'].filter((i) => results.some((r) => r.impl === i))
  if (impls.length === 0) return undefined
  const counts = [...new Set(results.filter((r) => impls.includes(r.impl)).map((r) => r.services))].sort((a, b) => a - b)
  const cell = (w: string, impl: string, n: number) => {
    const r = find(results, w, impl, n)
    if (!r) return '–'
    return r.min !== undefined ? `${human(r)} (${human({ ...r, nsPerOp: r.min })}–${human({ ...r, nsPerOp: r.max })}, ${r.runs} runs)` : human(r)
  }
  const columns = [
    ...impls.map((i) => ['new-flow:last', i, `${i} new flow (last service)`]),
    ...impls.map((i) => ['sync-full', i, `${i} full sync`]),
    ...impls.filter((i) => results.some((r) => r.impl === i && r.workload === 'sync-one')).map((i) => ['sync-one', i, `${i} one-service sync`]),
  ]
  const out = [`| services | ${columns.map((c) => c[2]).join(' | ')} |`, `|---:|${columns.map(() => '---:').join('|')}|`]
  for (const n of counts) out.push(`| ${n.toLocaleString('en-US')} | ${columns.map(([w, i]) => cell(w!, i!, n)).join(' | ')} |`)
  return out.join('\n')
}

function seriesOf(results: BenchResult[], workload: string, value: (r: BenchResult) => number | undefined): Series[] {
  const byImpl = new Map<string, Array<[number, number]>>()
  for (const r of results) {
    if (key(r) !== workload) continue
    const v = value(r)
    if (v === undefined || !(v > 0)) continue
    if (!byImpl.has(r.impl)) byImpl.set(r.impl, [])
    byImpl.get(r.impl)!.push([workload === 'established' ? r.flows ?? r.services : r.services, v])
  }
  return [...byImpl].map(([name, points]) => ({ name, points }))
}

/** The issue's targets, each with the measured value and whether it is met. */
export function targets(results: BenchResult[]): string[] {
  const out: string[] = []
  const ns = (k: string, impl: string, n: number) => find(results, k, impl, n)?.nsPerOp
  const line = (what: string, measured: string | undefined, met: boolean | undefined) =>
    out.push(`- ${what}: ${measured ?? 'not measured in this run'}${met === undefined ? '' : met ? ' — **met**' : ' — **missed**'}`)
  const spread = results.filter((r) => key(r) === 'new-flow:spread' && r.impl === 'native-batch')
  if (spread.length > 1) {
    const lo = Math.min(...spread.map((r) => r.nsPerOp!))
    const hi = Math.max(...spread.map((r) => r.nsPerOp!))
    const last = results.filter((r) => key(r) === 'new-flow:last' && r.impl === 'native-batch')
    const lastRatio = Math.max(...last.map((r) => r.nsPerOp!)) / Math.min(...last.map((r) => r.nsPerOp!))
    line(`native new-flow cost flat within 1.5× from ${spread[0].services} to ${spread[spread.length - 1].services} services`,
      `spread ${(hi / lo).toFixed(2)}× (${lo.toFixed(0)}–${hi.toFixed(0)} ns; the larger tables outgrow the caches), last-service ${lastRatio.toFixed(2)}×`, hi / lo <= 1.5)
  }
  const n = 10_000
  const nat = ns('new-flow:spread', 'native-batch', n)
  const tsi = ns('new-flow:spread', 'ts-iptables', n)
  const cpp = ns('new-flow:spread', 'cpp-linear', n)
  if (nat && tsi) line('at 10,000 services native batch ≥ 1,000× faster than ts-iptables (spread)', `${(tsi / nat).toFixed(0)}×`, tsi / nat >= 1000)
  if (nat && cpp) line('at 10,000 services native batch ≥ 100× faster than cpp-linear (spread)', `${(cpp / nat).toFixed(0)}×`, cpp / nat >= 100)
  const floor = results.find((r) => r.workload === 'floor')
  const vsFloor = (what: string, r: BenchResult | undefined, limit: number) =>
    line(`${what} ≤ ${limit}× the memory floor`, r && r.ratio !== undefined ? `${r.nsPerOp!.toFixed(1)} ns = ${r.ratio.toFixed(2)}× (floor ${floor!.nsPerOp!.toFixed(1)} ns)` : undefined, r?.ratio !== undefined ? r.ratio <= limit : undefined)
  vsFloor('conntrack hit, batch path, 1,000,000 flows,', results.find((r) => r.workload === 'established' && r.impl === 'native-batch' && r.flows === 1_000_000), 2.5)
  const newFlows = results.filter((r) => r.workload === 'new-flow' && r.impl === 'native-batch' && r.ratio !== undefined)
  const worstNew = newFlows.reduce<BenchResult | undefined>((w, r) => (!w || r.ratio! > w.ratio! ? r : w), undefined)
  vsFloor(`new flow, batch path, the worst of spread/last at ${[...new Set(newFlows.map((r) => r.services))].join('/')} services${worstNew ? ` (${key(worstNew)} at ${worstNew.services})` : ''},`, worstNew, 8)
  const packetHit = results
    .filter((r) => r.workload === 'packet-path' && r.variant === 'conntrack-hit' && r.flows === 1_000_000 && (r.threads ?? 1) === 1)
    .reduce<BenchResult | undefined>((b, r) => (!b || r.nsPerOp! < b.nsPerOp! ? r : b), undefined)
  vsFloor(`packet path (parse, hit, rewrite, checksums), 1,000,000 flows${packetHit ? `, batch ${packetHit.batch}` : ''},`, packetHit, 3.5)
  for (const variant of ['conntrack-hit', 'new-flow']) {
    const shards = (t: number) => results.find((r) => r.impl === 'native-shards' && r.variant === variant && r.flows === 1_000_000 && r.threads === t)
    const [t1, t2] = [shards(1), shards(2)]
    line(`packet path ${variant}, 1,000,000 flows: 2 threads ≥ 1.8× one`, t1 && t2 ? `${(t1.nsPerOp! / t2.nsPerOp!).toFixed(2)}× elapsed, ${(t1.cpuNsPerOp! / t2.cpuNsPerOp!).toFixed(2)}× by CPU time (${(1e3 / t2.nsPerOp!).toFixed(1)} Mpps)` : undefined, t1 && t2 ? t1.nsPerOp! / t2.nsPerOp! >= 1.8 : undefined)
  }
  const one = ns('sync-one', 'native', 100_000)
  line('changing one service at 100,000 services ≤ 50 µs', one ? `${(one / 1e3).toFixed(1)} µs` : undefined, one ? one <= 50_000 : undefined)
  const mem = results.find((r) => r.workload === 'memory' && r.impl === 'native' && r.perFlow !== undefined)
  line('≤ 96 bytes per tracked flow', mem ? `${mem.perFlow!.toFixed(0)} bytes (flow record plus its index slots)` : undefined, mem ? mem.perFlow! <= 96 : undefined)
  return out
}

export function writeReport(dir: string, machine: Machine, results: BenchResult[], notes: string[]): string[] {
  fs.mkdirSync(dir, { recursive: true })
  const files: string[] = []
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text)
    files.push(path.join(dir, name))
  }
  write(
    'new-flow.svg',
    lineChart(seriesOf(results, 'new-flow:last', (r) => r.nsPerOp), {
      title: 'New connection to the last service',
      xLabel: 'services',
      yLabel: 'ns per packet',
      logX: true,
      logY: true,
    }),
  )
  write(
    'new-flow-spread.svg',
    lineChart(seriesOf(results, 'new-flow:spread', (r) => r.nsPerOp), {
      title: 'New connections spread over all services',
      xLabel: 'services',
      yLabel: 'ns per packet',
      logX: true,
      logY: true,
    }),
  )
  write(
    'sync.svg',
    lineChart(
      [
        ...seriesOf(results, 'sync-full', (r) => (r.nsPerOp ?? 0) / 1e6).map((s) => ({ ...s, name: `${s.name} full` })),
        ...seriesOf(results, 'sync-one', (r) => (r.nsPerOp ?? 0) / 1e6).map((s) => ({ ...s, name: `${s.name} one service` })),
        ...seriesOf(results, 'sync-one:reload', (r) => (r.nsPerOp ?? 0) / 1e6).map((s) => ({ ...s, name: `${s.name} one service` })),
        ...seriesOf(results, 'sync-one:partial-text', (r) => (r.nsPerOp ?? 0) / 1e6).map((s) => ({ ...s, name: `${s.name} partial text` })),
      ],
      { title: 'Sync time', xLabel: 'services', yLabel: 'ms', logX: true, logY: true },
    ),
  )
  write(
    'memory.svg',
    lineChart(seriesOf(results, 'memory', (r) => r.bytes), {
      title: 'Memory for the service state',
      xLabel: 'services',
      yLabel: 'bytes',
      logX: true,
      logY: true,
    }),
  )
  const md = [
    '# svcplane benchmark',
    '',
    `${machine.date.slice(0, 10)} · ${machine.cpu} (${machine.cores} cores, ${machine.memoryGiB} GiB) · Node ${machine.node} · ${machine.compiler} · ${machine.platform}`,
    '',
    '## Summary',
    '',
    summaryTable(results),
    '',
    ...((k) => (k ? ['## Real kernel', '', k, ''] : []))(kernelTable(results)),
    '![new flow](new-flow.svg)',
    '',
    '![new flow spread](new-flow-spread.svg)',
    '',
    '![sync](sync.svg)',
    '',
    '![memory](memory.svg)',
    '',
    '## Targets',
    '',
    ...targets(results),
    '',
    '## All results',
    '',
    '```',
    textTable(results),
    '```',
    '',
    ...(notes.length ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ].join('\n')
  write('report.md', md)
  return files
}
