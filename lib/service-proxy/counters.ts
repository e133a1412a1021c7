// Per-ServicePort counters of the socket proxy, keyed by the ServicePort name ("ns/name:port").
// Byte counts of open TCP connections are added when counters() is read, so the numbers are
// live without a callback per chunk.

export interface ServiceCounters {
  /** TCP connections accepted and forwarded to an endpoint. */
  connections: number
  /** TCP connections open now. */
  activeConnections: number
  /** UDP client flows created (a flow that moves to another endpoint counts again). */
  udpFlows: number
  /** UDP client flows open now. */
  activeUdpFlows: number
  /** UDP flows moved to another endpoint because theirs stopped serving or went away. */
  udpFlowsMoved: number
  datagramsIn: number
  datagramsOut: number
  /** Client to endpoint. */
  bytesIn: number
  /** Endpoint to client. */
  bytesOut: number
  /** Connections reset / datagrams dropped because the service had no usable endpoint (REJECT or DROP). */
  refused: number
  /** Endpoint connect failures, socket errors, listeners that could not bind. */
  errors: number
  /** New connections / flows per endpoint ("IP:port"). */
  endpoints: Record<string, number>
}

export function emptyCounters(): ServiceCounters {
  return {
    connections: 0,
    activeConnections: 0,
    udpFlows: 0,
    activeUdpFlows: 0,
    udpFlowsMoved: 0,
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    refused: 0,
    errors: 0,
    endpoints: {},
  }
}

export class CounterTable {
  private readonly byService = new Map<string, ServiceCounters>()

  of(servicePort: string): ServiceCounters {
    let c = this.byService.get(servicePort)
    if (c === undefined) this.byService.set(servicePort, (c = emptyCounters()))
    return c
  }

  /** A copy by ServicePort name; `open` sessions' bytes so far are added in. */
  snapshot(open: Iterable<{ servicePort: string; bytes(): [number, number] }> = []): Record<string, ServiceCounters> {
    const out: Record<string, ServiceCounters> = {}
    for (const [k, v] of [...this.byService].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      out[k] = { ...v, endpoints: { ...v.endpoints } }
    }
    for (const session of open) {
      const c = out[session.servicePort]
      if (c === undefined) continue
      const [i, o] = session.bytes()
      c.bytesIn += i
      c.bytesOut += o
    }
    return out
  }
}
