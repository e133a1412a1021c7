// A cluster of realistic size for the performance scenarios: namespaces of microservices, each
// a ClusterIP Service with one or two ports and two or three pods spread over the nodes; a few
// NodePort and LoadBalancer Services in front.
import { node, NODES, service, slice, list, type Pod } from './cluster.js'

export function bigCluster(services: number) {
  const items: unknown[] = NODES.map(node)
  for (let i = 0; i < services; i++) {
    const ns = `team-${String(Math.floor(i / 50)).padStart(2, '0')}`
    const name = `svc-${String(i).padStart(4, '0')}`
    const ip = `10.96.${100 + Math.floor(i / 250)}.${(i % 250) + 1}`
    const ports = i % 4 === 0 ? [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'metrics', port: 9090 }] : [{ name: 'http', port: 80, targetPort: 8080 }]
    const front = i % 100 === 0
    items.push(service(ns, name, ip, ports.map((p, k) => ({ ...p, ...(front ? { nodePort: 30000 + (i % 2700) + k } : {}) })),
      front ? { type: i % 200 === 0 ? 'LoadBalancer' : 'NodePort', externalTrafficPolicy: 'Cluster' } : {},
      front && i % 200 === 0 ? { loadBalancer: { ingress: [{ ip: `34.120.${Math.floor(i / 200)}.10`, ipMode: 'VIP' }] } } : undefined))
    const pods: Pod[] = []
    for (let k = 0; k < 2 + (i % 2); k++) {
      const n = (i + k) % 3
      pods.push({ ip: `10.244.${n}.${1 + ((i * 3 + k) % 250)}`.replace(/^10\.244\.(\d)\./, `10.${244 + Math.floor(((i * 3 + k) / 250) % 8)}.$1.`), node: NODES[n].name, pod: `${name}-7d8f9-${k}` })
    }
    items.push(slice(ns, name, 'x1', pods, ports.map((p) => ({ name: p.name, port: p.targetPort ?? p.port }))))
  }
  return list(...items)
}
