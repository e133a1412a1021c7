// What kube-proxy's service health server serves: for each LoadBalancer Service with
// externalTrafficPolicy Local, its healthCheckNodePort and how many ready endpoints it has on
// this node (load balancers send traffic only to nodes answering with a count above zero).
import type { ProxyModelView } from './model.js'

export interface HealthCheck {
  /** "ns/name" */
  service: string
  healthCheckNodePort: number
  /** Distinct local, ready endpoint IPs over the Service's ports. */
  localEndpoints: number
}

export function healthChecks(model: ProxyModelView): HealthCheck[] {
  const ports = new Map<string, number>()
  for (const s of model.servicePorts()) {
    if (s.info.healthCheckNodePort !== 0) ports.set(s.info.service, s.info.healthCheckNodePort)
  }
  return [...ports].map(([service, healthCheckNodePort]) => {
    const ips = new Set<string>()
    for (const s of model.servicePortsOf(service)) for (const ep of s.endpoints) if (ep.isLocal && ep.ready) ips.add(ep.ip)
    return { service, healthCheckNodePort, localEndpoints: ips.size }
  })
}
