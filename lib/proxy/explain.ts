// explain(): a routing decision with the ordered steps that led to it, as data and as text.
import type { RouteResult } from './packet.js'
import type { Step } from './trace.js'

export interface Explanation {
  result: RouteResult
  steps: Step[]
  /** The steps as numbered lines, then the verdict. */
  text: string
}

export function describeResult(r: RouteResult): string {
  switch (r.action) {
    case 'dnat':
      return `DNAT ${r.servicePort} -> ${r.endpoint}${r.masquerade ? ', masqueraded' : ''}`
    case 'reject':
    case 'drop':
      return `${r.action.toUpperCase()} ${r.servicePort} (${r.reason})`
    case 'accept':
      return 'ACCEPT (not service traffic)'
  }
}

export function explanation(result: RouteResult, steps: Step[]): Explanation {
  const lines = steps.map((s, i) => `${i + 1}. [${s.kind}] ${s.text}`)
  lines.push(`=> ${describeResult(result)}`)
  return { result, steps, text: lines.join('\n') }
}
