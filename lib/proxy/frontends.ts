// The addresses a ServicePort answers on: its cluster IP, its NodePort on every node IP (and
// 127.0.0.1 with localhostNodePorts; never ::1, as kube-proxy), external IPs and
// load-balancer IPs.
import type { K8sProtocol } from '../k8s/types.js'
import type { ServicePortInfo } from './serviceport.js'

export type FrontendKind = 'clusterIP' | 'externalIP' | 'loadBalancer' | 'nodePort'

export interface Frontend {
  kind: FrontendKind
  address: string
  port: number
  protocol: K8sProtocol
}

export function frontendKey(address: string, port: number, protocol: string): string {
  return `${address}|${port}|${protocol}`
}

/** In kube-proxy's rule order: cluster IP, external IPs, load-balancer IPs, then NodePorts. */
export function frontendsOf(sp: ServicePortInfo, nodeIPs: readonly string[], localhostNodePorts: boolean): Frontend[] {
  const out: Frontend[] = [{ kind: 'clusterIP', address: sp.clusterIP, port: sp.port, protocol: sp.protocol }]
  for (const address of sp.externalIPs) out.push({ kind: 'externalIP', address, port: sp.port, protocol: sp.protocol })
  for (const address of sp.loadBalancerVIPs) out.push({ kind: 'loadBalancer', address, port: sp.port, protocol: sp.protocol })
  if (sp.nodePort !== 0) {
    const v6 = sp.family === 'IPv6'
    for (const address of nodeIPs) {
      if (address.includes(':') === v6) out.push({ kind: 'nodePort', address, port: sp.nodePort, protocol: sp.protocol })
    }
    if (!v6 && localhostNodePorts) out.push({ kind: 'nodePort', address: '127.0.0.1', port: sp.nodePort, protocol: sp.protocol })
  }
  return out
}
