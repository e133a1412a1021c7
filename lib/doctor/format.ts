// The doctor's report as text: per Service port, each finding with what, why, fix and the
// probe that shows it; then stale flows and the performance comparison when asked for.
import type { Finding } from './findings.js'
import type { DoctorReport } from './diagnose.js'
import type { ModePerf, PerfReport } from './perf.js'
import { describeProbe } from './probe.js'

const LABEL = { error: 'ERROR', warning: 'WARNING', info: 'NOTE' } as const

function wrap(text: string, width: number, indent: string): string {
  const out: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      out.push(line)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  out.push(line)
  return out.join(`\n${indent}`)
}

function nodesText(f: Finding, checked: number): string {
  if (f.nodes.length === 0) return checked > 1 ? 'every node' : ''
  return f.nodes.length > 4 ? `${f.nodes.slice(0, 4).join(', ')} and ${f.nodes.length - 4} more nodes` : f.nodes.join(', ')
}

export function formatFinding(f: Finding, checkedNodes: number): string {
  const where = nodesText(f, checkedNodes)
  const pad = '           '
  const lines = [`  ${LABEL[f.severity]} ${f.code}${where ? ` (${where})` : ''}`]
  lines.push(`    what:  ${wrap(f.what, 100, pad)}`)
  lines.push(`    why:   ${wrap(f.why, 100, pad)}`)
  lines.push(`    fix:   ${wrap(f.fix, 100, pad)}`)
  if (f.probe !== undefined) lines.push(`    probe: ${wrap(describeProbe(f.probe), 100, pad)}`)
  return lines.join('\n')
}

export function formatReport(r: DoctorReport): string {
  const lines: string[] = []
  const nodes = r.nodes.length === 1 ? `node ${r.nodes[0]}` : `${r.nodes.length} nodes (${r.nodes.join(', ')})`
  lines.push(`Checked ${r.services} service(s), ${r.servicePorts} service port(s) from ${nodes}.`)
  if (r.findings.length === 0) {
    lines.push('No findings.')
  } else {
    let current = '\u0000'
    for (const f of r.findings) {
      const head = f.servicePort === '' ? 'proxy' : `${f.servicePort} (${f.protocol})`
      if (head !== current) {
        lines.push('', head)
        current = head
      }
      lines.push(formatFinding(f, r.nodes.length))
    }
    const count = (s: string) => r.findings.filter((f) => f.severity === s).length
    const parts = [`${count('error')} error(s)`, `${count('warning')} warning(s)`]
    if (count('info') > 0) parts.push(`${count('info')} note(s)`)
    lines.push('', `${r.findings.length} finding(s): ${parts.join(', ')}.`)
  }
  if (r.staleFlows.length > 0) {
    lines.push('', `Stale flows (${r.staleFlows.length}):`)
    for (const f of r.staleFlows.slice(0, 50)) {
      lines.push(`  ${f.protocol.toLowerCase().padEnd(4)} ${f.src}:${f.sport} -> ${f.dst}:${f.dport} pinned to ${f.endpoint} (${f.why}, ${f.state}, expires in ${f.expiresIn} s)`)
    }
    if (r.staleFlows.length > 50) lines.push(`  ... and ${r.staleFlows.length - 50} more`)
    if (r.clearCommands.length > 0) {
      lines.push('To clear them on a kube-proxy node:')
      for (const c of r.clearCommands) lines.push(`  ${c}`)
    }
  }
  return lines.join('\n') + '\n'
}

function ms(v: number): string {
  return v >= 100 ? `${v.toFixed(0)} ms` : v >= 1 ? `${v.toFixed(1)} ms` : `${(v * 1000).toFixed(0)} µs`
}

function us(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : v >= 10 ? `${v.toFixed(0)} µs` : `${v.toFixed(2)} µs`
}

function column(m: ModePerf): string[] {
  return [
    m.rules ? `${m.rules.totalRules} (${Object.entries(m.rules.rules).map(([t, n]) => `${t} ${n}`).join(', ')})` : 'none: hash maps',
    m.rules ? String(m.rules.chains) : '-',
    m.rulesWalked ? `avg ${m.rulesWalked.average.toFixed(0)}, worst ${m.rulesWalked.worst}` : '0 (one hash lookup per map)',
    us(m.newConnectionUs),
    ms(m.syncFullMs),
    m.syncOneSamples > 0 ? ms(m.syncOneMs) : '-',
  ]
}

/** Both modes side by side, the user's first. */
export function formatPerf(p: PerfReport): string {
  const rows = ['rules', 'kube-proxy chains', 'rules walked per new connection', 'cost of a new connection', 'full sync', 'sync after one endpoint change']
  const cols = p.modes.map(column)
  const titles = p.modes.map((m) => (m.mode === p.currentMode ? `${m.mode} (current)` : m.mode))
  const w0 = Math.max(...rows.map((r) => r.length)) + 2
  const widths = cols.map((c, i) => Math.max(titles[i].length, ...c.map((x) => x.length)) + 2)
  const line = (a: string, cells: string[]) => (a.padEnd(w0) + cells.map((c, i) => c.padEnd(widths[i])).join('')).trimEnd()
  const out = [
    `Proxy performance on node ${p.node}: ${p.services} services, ${p.servicePorts} service ports, ${p.endpoints} endpoints (measured on these objects, this machine)`,
    line('', titles),
    ...rows.map((r, i) => line(r, cols.map((c) => c[i]))),
  ]
  const ipt = p.modes.find((m) => m.mode === 'iptables')
  if (ipt?.rulesWalked) out.push(`(worst case: ${ipt.rulesWalked.worstTarget}, the last Service in KUBE-SERVICES)`)
  out.push(
    '',
    'Switching modes:',
    '  kube-proxy: set mode: "nftables" (Kubernetes 1.31+) or mode: "ipvs" (needs the ip_vs modules) in the KubeProxyConfiguration',
    '    (kubectl -n kube-system edit configmap kube-proxy; or the --proxy-mode flag), then',
    '    kubectl -n kube-system rollout restart daemonset kube-proxy. Switching leaves the old rules behind:',
    '    run kube-proxy --cleanup once on each node (or reboot it).',
    '  svcplane:   models and measures the native column (hash maps); `svcplane run` observes and does not forward traffic,',
    '              so it is not a replacement for kube-proxy on a node.',
  )
  return out.join('\n') + '\n'
}
