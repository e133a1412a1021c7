// Clusters of n ClusterIP Services, each with one port and two ready endpoints, as a
// `kubectl get svc,endpointslices -o json` List would hold them. Addresses are derived from
// the index, so every Service and endpoint is distinct (up to 2^20 Services).

/** The cluster IP of Service i: 172.16.0.0/12 counted up. */
export function clusterIP(i: number): string {
  const n = (172 << 24 | 16 << 16) + i
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** The two endpoints of Service i, in 10.128.0.0/9 (away from the pod CIDR 10.0.0.0/16 used by the tests). */
export function endpointIPs(i: number): [string, string] {
  const ip = (n: number) => [10, 128 + ((n >>> 16) & 127), (n >>> 8) & 255, n & 255].join('.')
  return [ip(2 * i + 1), ip(2 * i + 2)]
}

export function clusterList(n: number, from = 0): { apiVersion: 'v1'; kind: 'List'; items: object[] } {
  const items: object[] = []
  for (let i = from; i < from + n; i++) {
    const name = `svc-${i}`
    items.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'load' },
      spec: { type: 'ClusterIP', clusterIP: clusterIP(i), clusterIPs: [clusterIP(i)], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
    })
    items.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-abc`, namespace: 'load', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: endpointIPs(i).map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-b' })),
    })
  }
  return { apiVersion: 'v1', kind: 'List', items }
}
