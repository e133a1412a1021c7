// Kubernetes objects for the benchmarks, generated deterministically from a seed: the same
// arguments give byte-identical Services and EndpointSlices for every implementation.
import type { EndpointSlice, Service } from '../lib/k8s/types.js'
import { clusterIP, endpointIP, rng } from './workload.js'

export type Mix = 'plain' | 'realistic'

export interface Cluster {
  services: Service[]
  slices: EndpointSlice[]
}

export const BENCH_NODE = { nodeName: 'bench-node', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'] }

/**
 * `plain`: ClusterIP services, one TCP port 80, two endpoints on 8080.
 * `realistic`: a mix of ClusterIP, NodePort and LoadBalancer services, some with ClientIP
 * affinity or externalTrafficPolicy Local, one to three ports, 1–10 endpoints.
 */
export function generateCluster(count: number, mix: Mix = 'plain', seed = 1): Cluster {
  const r = rng(seed)
  const services: Service[] = []
  const slices: EndpointSlice[] = []
  let nextEndpoint = 0
  let nextNodePort = 30000
  for (let i = 0; i < count; i++) {
    const ns = `ns${i % 50}`
    const name = `svc${i}`
    let type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' = 'ClusterIP'
    let ports = [{ name: 'p80', port: 80, protocol: 'TCP' as const, targetPort: 8080 }]
    let endpoints = 2
    const spec: Service['spec'] = { clusterIP: clusterIP(i), clusterIPs: [clusterIP(i)] }
    if (mix === 'realistic') {
      const roll = r()
      type = roll < 0.7 ? 'ClusterIP' : roll < 0.9 ? 'NodePort' : 'LoadBalancer'
      const nPorts = 1 + Math.floor(r() * r() * 3)
      ports = []
      for (let p = 0; p < nPorts; p++)
        ports.push({ name: `p${p}`, port: 80 + p, protocol: r() < 0.85 ? 'TCP' : ('UDP' as 'TCP'), targetPort: 8080 + p })
      endpoints = 1 + Math.floor(r() * 10)
      if (r() < 0.1) {
        spec.sessionAffinity = 'ClientIP'
        spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } }
      }
      if (type !== 'ClusterIP' && r() < 0.3) spec.externalTrafficPolicy = 'Local'
    }
    spec.type = type
    spec.ports = ports.map((p) => ({ ...p, ...(type !== 'ClusterIP' ? { nodePort: nextNodePort++ } : {}) }))
    const status: Service['status'] =
      type === 'LoadBalancer' ? { loadBalancer: { ingress: [{ ip: `198.51.${(i >> 8) & 255}.${i & 255}` }] } } : undefined
    services.push({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name }, spec, ...(status ? { status } : {}) })
    const eps = []
    for (let e = 0; e < endpoints; e++)
      eps.push({
        addresses: [endpointIP(nextEndpoint++)],
        conditions: { ready: true },
        nodeName: mix === 'realistic' && r() < 0.2 ? BENCH_NODE.nodeName : `node-${e % 16}`,
      })
    slices.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { namespace: ns, name: `${name}-abc`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints: eps,
      ports: ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })),
    })
  }
  return { services, slices }
}
