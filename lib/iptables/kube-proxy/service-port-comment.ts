// Recovers the service port name ("ns/svc:port") from the comments
// kube-proxy writes on its rules, so a walk over a plain iptables-save dump
// can say which service a decision belongs to.

const NAME = '[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?(?::[-a-zA-Z0-9_.]+)?'

const PATTERNS: RegExp[] = [
  new RegExp(`^(${NAME})$`), // KUBE-SEP and KUBE-NODEPORTS rules
  new RegExp(`^(${NAME}) (?:cluster IP|external IP|loadbalancer IP|has no endpoints|has no local endpoints|health check node port)$`),
  new RegExp(`^(${NAME}) -> \\S+$`),
  new RegExp(`^(${NAME}) traffic not accepted by KUBE-FW-\\S+$`),
  new RegExp(`^(?:masquerade traffic for|pod traffic for|masquerade LOCAL traffic for|route LOCAL traffic for) (${NAME}) external destinations$`),
  new RegExp(`^other traffic to (${NAME}) will be dropped by KUBE-PROXY-FIREWALL$`),
]

/** The service port name a kube-proxy comment refers to, if it is one of kube-proxy's. */
export function servicePortFromComment(comment: string | undefined): string | undefined {
  if (comment === undefined) return undefined
  for (const re of PATTERNS) {
    const m = re.exec(comment)
    if (m) return m[1]
  }
  return undefined
}
