import { performance } from 'node:perf_hooks'
import { Proxier } from './dist/modes/index.js'
const makeService = (ns, name, spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name }, spec: { type: 'ClusterIP', ...spec } })
const makeSlice = (ns, svc, ips) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { namespace: ns, name: `${svc}-1`, labels: { 'kubernetes.io/service-name': svc } }, addressType: 'IPv4', endpoints: ips.map((ip) => ({ addresses: [ip] })), ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] })
const n = 1000
const p = new Proxier({ mode: process.argv[2], nodeName: 'n', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'], serviceCIDRs: ['172.16.0.0/12'], seed: 1 })
for (let i = 0; i < n; i++) {
  p.applyService(makeService('ns', `s${i}`, { clusterIP: `172.16.${i >> 8}.${i & 255}`, ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] }))
  p.applyEndpointSlice(makeSlice('ns', `s${i}`, [`10.1.${i >> 8}.${i & 255}`]))
}
p.sync()
p.route({ src: '10.0.0.2', sport: 1, dst: '172.16.0.5', dport: 80, protocol: 'TCP', now: 1 })
const t0 = performance.now()
for (let i = 0; i < 3000; i++) p.route({ src: '10.0.0.2', sport: 1000 + i, dst: `172.16.3.${i % 200}`, dport: 80, protocol: 'TCP', now: 1 })
console.log(process.argv[2], 'us/flow', ((performance.now() - t0) / 3).toFixed(1))
