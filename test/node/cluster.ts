// The cluster the node tests and the benchmark run: Services on ADDR's service CIDR with the two
// pods as endpoints, written as a `kubectl get -o json` list that svcplane run follows.
import { writeFileSync, renameSync } from 'node:fs'
import { makeService, makeSlice, port, type EP } from '../fixtures/objects'
import { ADDR, TCP_PORT, UDP_PORT } from './topology'

export const NODE_NAME = 'node-a'
export const VIP = { web: '10.96.0.10', local: '10.96.0.11', single: '10.96.0.12', sticky: '10.96.0.13' }
export const NODE_PORT = { web: 30080, webUdp: 30053, local: 30081 }

const pod = (e: string | EP): EP => (typeof e === 'string' ? { ip: e, node: NODE_NAME } : { node: NODE_NAME, ...e })

/**
 * The objects; `webEndpoints` picks which pods serve Service web (the one the removal and
 * rolling-update tests change): addresses, or endpoints with their conditions.
 */
export function clusterObjects(webEndpoints: Array<string | EP> = [ADDR.pod1, ADDR.pod2]): unknown[] {
  const ports = [{ name: 'http', port: TCP_PORT }, { name: 'dns', port: UDP_PORT, protocol: 'UDP' as const }]
  return [
    makeService('ns', 'web', {
      type: 'NodePort', clusterIP: VIP.web,
      ports: [port('http', 80, { targetPort: TCP_PORT, nodePort: NODE_PORT.web }), port('dns', 53, { protocol: 'UDP', targetPort: UDP_PORT, nodePort: NODE_PORT.webUdp })],
    }),
    makeSlice('ns', 'web', 1, webEndpoints.map(pod), ports),
    makeService('ns', 'local', { type: 'NodePort', clusterIP: VIP.local, externalTrafficPolicy: 'Local', ports: [port('http', 80, { targetPort: TCP_PORT, nodePort: NODE_PORT.local })] }),
    makeSlice('ns', 'local', 1, [pod(ADDR.pod1)], ports.slice(0, 1)),
    makeService('ns', 'single', { clusterIP: VIP.single, ports: [port('http', 80, { targetPort: TCP_PORT })] }),
    makeSlice('ns', 'single', 1, [pod(ADDR.pod2)], ports.slice(0, 1)),
    makeService('ns', 'sticky', { clusterIP: VIP.sticky, sessionAffinity: 'ClientIP', ports: [port('http', 80, { targetPort: TCP_PORT })] }),
    makeSlice('ns', 'sticky', 1, [pod(ADDR.pod1), pod(ADDR.pod2)], ports.slice(0, 1)),
  ]
}

/** Replaces the file in one step (a reader never sees half of it). */
export function writeCluster(file: string, objects: unknown[]): void {
  writeFileSync(`${file}.tmp`, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 1))
  renameSync(`${file}.tmp`, file)
}

/**
 * svcplane run's arguments for this node. Native mode's state file goes next to the cluster file
 * (the default, under /run, is shared by every namespace, so parallel tests would meet there).
 */
export function runArgs(file: string, mode: string, extra: string[] = []): string[] {
  const state = mode === 'native' && !extra.includes('--state-file') ? ['--state-file', `${file}.flows.bin`] : []
  return [
    'bin/svcplane.js', 'run', '--cluster', file, '--proxy-mode', mode, '--apply',
    '--node-name', NODE_NAME, '--node-ip', ADDR.nodeUplink, '--pod-cidr', ADDR.podCIDR, '--min-sync-period', '0', '--sync-period', '30',
    '--metrics-bind-address', '', '--healthz-bind-address', '', ...state, ...extra,
  ]
}
