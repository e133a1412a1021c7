// What the doctor reports: one finding per problem of a ServicePort (merged over the nodes
// where it is the same), each with what is wrong, why, the fix, and the probe packet whose
// real decision shows it.
import type { Packet, RouteResult } from '../proxy/packet.js'

export type Severity = 'error' | 'warning' | 'info'

export type FindingCode =
  // Traffic fails.
  | 'no-endpoints'
  | 'no-local-endpoints-internal'
  | 'no-local-endpoints-external'
  | 'source-range'
  | 'not-exposed'
  | 'no-node-port'
  | 'load-balancer-pending'
  | 'load-balancer-hostname'
  | 'not-proxied'
  | 'wrong-node-address'
  | 'wrong-port'
  | 'localhost-node-ports-disabled'
  | 'node-port-out-of-range'
  | 'endpoint-port-mismatch'
  // Traffic works, but not where it should go.
  | 'one-ready-endpoint'
  | 'topology-single-zone'
  | 'local-policy-single-endpoint'
  | 'affinity-pinning'
  | 'stale-flows'
  | 'stale-endpoints'
  // The proxy itself.
  | 'iptables-scale'
  | 'ipvs-scale'
  // A node's nftables ruleset (--nft-ruleset, lib/doctor/nft-ruleset.ts).
  | 'nft-no-kube-proxy-table' | 'nft-no-endpoints' | 'nft-service-without-endpoints' | 'nft-endpoint-without-dnat'
  | 'nft-missing-jump' | 'nft-missing-masquerade' | 'nft-refused-packets' | 'nft-unknown-expression'
  // IPVS mode only.
  | 'ipvs-deprecated'
  | 'ipvs-service-ip-any-port'
  | 'ipvs-strict-arp-off'
  | 'ipvs-weight-zero-reuse'
  | 'ipvs-local-policy-fallback'

/** A probe: one packet decided by the model, as `svcplane explain` shows it. */
export interface Probe {
  node: string
  packet: Packet
  result: RouteResult
  /** explain()'s steps, one line each. */
  steps: string[]
  /** The packet the user asked about (--dst): preferred when findings merge. */
  asked?: boolean
}

export interface Finding {
  code: FindingCode
  severity: Severity
  /** kube-proxy's ServicePort name ("ns/name:port"), or "" for node-wide findings. */
  servicePort: string
  /** "ns/name", or "" for node-wide findings. */
  service: string
  protocol: string
  /** The nodes it was found on (sorted); empty when it does not depend on the node. */
  nodes: string[]
  what: string
  why: string
  fix: string
  probe?: Probe
  /** Facts behind the finding, for tools. */
  details?: Record<string, unknown>
}

export const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 }

/** Merges findings that say the same thing on several nodes into one naming them all. */
export function mergeFindings(findings: readonly Finding[]): Finding[] {
  const byKey = new Map<string, Finding>()
  for (const f of findings) {
    const key = [f.code, f.servicePort, f.protocol, f.what, f.why, f.fix].join('\u0000')
    const prev = byKey.get(key)
    if (prev === undefined) byKey.set(key, { ...f, nodes: [...f.nodes] })
    else {
      for (const n of f.nodes) if (!prev.nodes.includes(n)) prev.nodes.push(n)
      if (f.probe?.asked === true && prev.probe?.asked !== true) prev.probe = f.probe
    }
  }
  const out = [...byKey.values()]
  for (const f of out) f.nodes.sort()
  return out.sort(
    (a, b) =>
      a.service.localeCompare(b.service) ||
      a.servicePort.localeCompare(b.servicePort) ||
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      a.code.localeCompare(b.code),
  )
}
