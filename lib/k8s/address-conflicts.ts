// Two Services that claim one address and port: the API server keeps cluster IPs and NodePorts
// unique, but spec.externalIPs and load-balancer ingress IPs can collide. kube-proxy renders
// both (the first rule wins); a hash dataplane can hold one. Found here by name, so an error can
// say which two Services and which address, not an internal id.
import { joinHostPort } from '../util/host-port.js'
import type { ValidService } from './service.js'

export interface AddressConflict {
  /** "IP:PORT/PROTO" ("[v6]:PORT/PROTO"). */
  address: string
  /** What the address is to each Service: "cluster IP", "external IP", "load-balancer IP", "NodePort". */
  kinds: [string, string]
  services: [string, string]
}

function hostPort(ip: string, port: number, protocol: string): string {
  return `${joinHostPort(ip, port)}/${protocol}`
}

/** Every address:port/protocol claimed by two Services (each pair once, in input order). */
export function addressConflicts(services: readonly ValidService[]): AddressConflict[] {
  const owner = new Map<string, { service: string; kind: string }>()
  const out: AddressConflict[] = []
  for (const svc of services) {
    const mine = new Map<string, string>()
    for (const p of svc.ports) {
      for (const ip of Object.values(svc.clusterIPs)) if (ip !== undefined) mine.set(hostPort(ip, p.port, p.protocol), 'cluster IP')
      for (const ip of svc.externalIPs) mine.set(hostPort(ip, p.port, p.protocol), 'external IP')
      for (const ip of svc.loadBalancerIPs) mine.set(hostPort(ip, p.port, p.protocol), 'load-balancer IP')
      if (p.nodePort !== 0) mine.set(`NodePort ${p.nodePort}/${p.protocol}`, 'NodePort')
    }
    for (const [address, kind] of mine) {
      const first = owner.get(address)
      if (first === undefined) owner.set(address, { service: svc.key, kind })
      else if (first.service !== svc.key) out.push({ address, kinds: [first.kind, kind], services: [first.service, svc.key] })
    }
  }
  return out
}

/** "Services a/x and b/y both use 192.0.2.10:80/TCP (external IP of both)". */
export function describeConflict(c: AddressConflict): string {
  const kinds = c.kinds[0] === c.kinds[1] ? `${c.kinds[0]} of both` : `${c.kinds[0]} of ${c.services[0]}, ${c.kinds[1]} of ${c.services[1]}`
  return `Services ${c.services[0]} and ${c.services[1]} both use ${c.address} (${kinds})`
}

/**
 * A sync error of `service` said in the user's terms when it is an address clash with another
 * of `services` (the dataplane names Services by internal id); undefined when it is not one.
 */
export function conflictMessage(service: string, services: readonly ValidService[]): string | undefined {
  const clash = addressConflicts(services).find((c) => c.services.includes(service))
  return clash === undefined ? undefined : `${describeConflict(clash)}; one address and port can belong to one Service`
}
