// The userspace proxier's listener table as text: per ServicePort its proxy socket, the state
// of that socket, the connection counters and the endpoints in round-robin order (the next
// pick marked with '>'), for `svcplane dump --mode userspace`.
import { joinHostPort } from '../../util/host-port.js'
import type { ServiceCounters } from '../../service-proxy/counters.js'
import type { UserspaceServicePort } from './userspace-mode.js'

export interface ListenerRow {
  servicePort: string
  protocol: 'TCP' | 'UDP'
  address: string
  port: number
  state: string
  error?: string
}

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)))
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n') + '\n'
}

export function formatListenerTable(rows: readonly ListenerRow[], servicePorts: readonly UserspaceServicePort[], counters: Readonly<Record<string, ServiceCounters>>): string {
  const cells = [['SERVICE PORT', 'PROTO', 'PROXY SOCKET', 'STATE', 'CONNS', 'ACTIVE', 'FLOWS', 'REFUSED', 'AFFINITY', 'ENDPOINTS (round-robin order, > next)']]
  for (const r of rows) {
    const sp = servicePorts.find((s) => s.servicePort === r.servicePort && s.protocol === r.protocol)
    const c = counters[r.servicePort]
    const order = sp === undefined || sp.endpoints.length === 0 ? '-' : sp.endpoints.map((e, i) => (i === sp.next ? `>${e}` : e)).join(' ')
    cells.push([
      r.servicePort,
      r.protocol,
      joinHostPort(r.address, r.port),
      r.error !== undefined ? `${r.state} (${r.error})` : r.state,
      String(c?.connections ?? 0),
      String(r.protocol === 'TCP' ? (c?.activeConnections ?? 0) : (c?.activeUdpFlows ?? 0)),
      String(c?.udpFlows ?? 0),
      String(c?.refused ?? 0),
      sp !== undefined && sp.affinitySeconds > 0 ? `ClientIP ${sp.affinitySeconds}s` : 'None',
      order,
    ])
  }
  return pad(cells)
}
