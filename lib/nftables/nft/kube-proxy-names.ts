// kube-proxy's nftables chain names carry the service port they belong to:
// "service-ULMVA6XW-ns1/svc1/tcp/p80", "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
// (a hash, then namespace/name/protocol/port name; the port name is empty for an unnamed port).
// The evaluator reports that as "ns1/svc1:p80", the name the other modes use.

const CHAIN = /^(?:service|external|local|firewall|endpoint)-[A-Z0-9]{8}-([^/]+)\/([^/]+)\/(?:tcp|udp|sctp)\/([^_/]*)(?:__.*)?$/

/** "ns/name:port" (or "ns/name" for an unnamed port) of a kube-proxy chain, or undefined. */
export function servicePortFromNftChain(chain: string): string | undefined {
  const m = CHAIN.exec(chain)
  if (!m) return undefined
  return m[3] ? `${m[1]}/${m[2]}:${m[3]}` : `${m[1]}/${m[2]}`
}
