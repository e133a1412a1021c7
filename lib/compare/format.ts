// A comparison of modes as text: one line per difference, grouped by service port.
import { describeResult } from '../proxy/explain.js'
import type { ModeComparison } from './compare.js'

export function formatComparison(c: ModeComparison): string {
  const lines: string[] = []
  const classes = Object.entries(c.classes).map(([k, n]) => `${n} ${k}`).join(', ')
  lines.push(`${c.from} vs ${c.to}: ${c.servicePorts} service ports, ${c.probes} probes (${classes || 'none'})`)
  if (c.differences.length === 0) {
    lines.push('The two modes decide every probe alike.')
    return lines.join('\n') + '\n'
  }
  lines.push(`${c.differences.length} probe${c.differences.length === 1 ? '' : 's'} decided differently:`)
  let last: string | undefined
  for (const d of c.differences) {
    const head = d.servicePort || '(no service)'
    if (head !== last) lines.push('', head)
    last = head
    const p = d.packet
    lines.push(`  ${d.probe}: ${p.protocol} ${p.src} -> ${d.target} (${p.dst}:${p.dport}${p.hook === 'output' ? ', from the node' : ''})`)
    lines.push(`    ${c.from.padEnd(9)} ${describeResult(d.from.result)} — ${d.from.why}`)
    lines.push(`    ${c.to.padEnd(9)} ${describeResult(d.to.result)} — ${d.to.why}`)
  }
  return lines.join('\n') + '\n'
}
