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
  if (r.bytes !== undefined) return r.bytes >= 1 << 20 ? `${(r.bytes / (1 << 20)).toFixed(1)} MiB` : `${(r.bytes / 1024).toFixed(1)} KiB`
  const ns = r.nsPerOp ?? NaN
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`
  return `${ns.toFixed(1)} ns`
}

export function textTable(results: BenchResult[]): string {
  const head = ['workload', 'impl', 'services', 'flows', 'per op / size']
  const rows = results.map((r) => [r.workload, r.impl, String(r.services), r.flows !== undefined ? String(r.flows) : '', human(r)])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** The summary: per service count, new-flow cost of each implementation side by side. */
export function summaryTable(results: BenchResult[]): string {
  const impls = ['native-batch', 'native-call', 'cpp-linear', 'ts-iptables', 'kernel-nft', 'kernel-legacy'].filter((i) =>
    results.some((r) => r.workload === 'new-flow-last' && r.impl === i),
  )
  const counts = [...new Set(results.filter((r) => r.workload === 'new-flow-last').map((r) => r.services))].sort((a, b) => a - b)
  const cell = (w: string, impl: string, n: number) => {
    const r = results.find((x) => x.workload === w && x.impl === impl && x.services === n)
    return r ? human(r) : '–'
  }
  const out = [`| services | ${impls.map((i) => `${i} new flow (last service)`).join(' | ')} | native sync-one | ts-iptables sync-one |`]
  out.push(`|---:|${impls.map(() => '---:').join('|')}|---:|---:|`)
  for (const n of counts)
    out.push(
      `| ${n.toLocaleString('en-US')} | ${impls.map((i) => cell('new-flow-last', i, n)).join(' | ')} | ${cell('sync-one', 'native', n)} | ${cell('sync-one', 'ts-iptables', n)} |`,
    )
  return out.join('\n')
}

function seriesOf(results: BenchResult[], workload: string, value: (r: BenchResult) => number | undefined): Series[] {
  const byImpl = new Map<string, Array<[number, number]>>()
  for (const r of results) {
    if (r.workload !== workload) continue
    const v = value(r)
    if (v === undefined || !(v > 0)) continue
    const key = r.flows !== undefined && workload === 'established' ? `${r.impl}` : r.impl
    if (!byImpl.has(key)) byImpl.set(key, [])
    byImpl.get(key)!.push([workload === 'established' ? r.flows ?? r.services : r.services, v])
  }
  return [...byImpl].map(([name, points]) => ({ name, points }))
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
    lineChart(seriesOf(results, 'new-flow-last', (r) => r.nsPerOp), {
      title: 'New connection to the last service',
      xLabel: 'services',
      yLabel: 'ns per packet',
      logX: true,
      logY: true,
    }),
  )
  write(
    'new-flow-spread.svg',
    lineChart(seriesOf(results, 'new-flow', (r) => r.nsPerOp), {
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
    '![new flow](new-flow.svg)',
    '',
    '![new flow spread](new-flow-spread.svg)',
    '',
    '![sync](sync.svg)',
    '',
    '![memory](memory.svg)',
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
