// A small, realistic cluster for the troubleshooting scenarios: three nodes in three zones
// (as `kubectl get nodes -o json` shows them), Services and EndpointSlices as the API server
// and the EndpointSlice controller write them, and helpers to run `svcplane` in-process.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'
import { splitNodesAndPods } from '../../lib/doctor/nodes.js'
import type { DoctorObjects, DoctorReport } from '../../lib/doctor/diagnose.js'

export const NODES = [
  { name: 'node-a', ip: '192.168.10.11', external: '34.90.10.11', zone: 'europe-west4-a', podCIDR: '10.244.0.0/24' },
  { name: 'node-b', ip: '192.168.10.12', external: '34.90.10.12', zone: 'europe-west4-b', podCIDR: '10.244.1.0/24' },
  { name: 'node-c', ip: '192.168.10.13', external: '34.90.10.13', zone: 'europe-west4-c', podCIDR: '10.244.2.0/24' },
]

export function node(n: (typeof NODES)[number]) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: {
        'kubernetes.io/hostname': n.name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'e2-standard-4',
        'topology.kubernetes.io/region': 'europe-west4',
        'topology.kubernetes.io/zone': n.zone,
      },
    },
    spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR], providerID: `gce://shop-prod/${n.zone}/${n.name}` },
    status: {
      addresses: [
        { type: 'InternalIP', address: n.ip },
        { type: 'ExternalIP', address: n.external },
        { type: 'Hostname', address: n.name },
      ],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }],
    },
  }
}

export interface PortSpec {
  name: string
  port: number
  targetPort?: number | string
  nodePort?: number
  protocol?: 'TCP' | 'UDP'
}

export function service(ns: string, name: string, clusterIP: string, ports: PortSpec[], spec: Record<string, unknown> = {}, status?: Record<string, unknown>) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: ns, name, uid: `uid-${ns}-${name}`, labels: { app: name } },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      selector: { app: name },
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
      ...spec,
      ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort ?? p.port, protocol: p.protocol ?? 'TCP', ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
    },
    status: status ?? { loadBalancer: {} },
  }
}

export interface Pod {
  ip: string
  node: string
  pod: string
  ready?: boolean
  terminating?: boolean
  serving?: boolean
  zones?: string[]
}

export function zoneOf(nodeName: string): string {
  return NODES.find((n) => n.name === nodeName)?.zone ?? 'unknown'
}

export function slice(ns: string, svc: string, suffix: string, pods: Pod[], ports: { name: string; port: number; protocol?: 'TCP' | 'UDP' }[]) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: ns,
      name: `${svc}-${suffix}`,
      labels: { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc, uid: `uid-${ns}-${svc}`, controller: true }],
    },
    addressType: 'IPv4',
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: { ready: p.ready ?? !(p.terminating ?? false), serving: p.serving ?? p.ready ?? true, terminating: p.terminating ?? false },
      nodeName: p.node,
      zone: zoneOf(p.node),
      targetRef: { kind: 'Pod', namespace: ns, name: p.pod, uid: `uid-${p.pod}` },
      ...(p.zones ? { hints: { forZones: p.zones.map((name) => ({ name })) } } : {}),
    })),
    ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol ?? 'TCP' })),
  }
}

export function pod(ns: string, p: Pod, deleting = false) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: ns, name: p.pod, uid: `uid-${p.pod}`, ...(deleting ? { deletionTimestamp: '2024-05-01T10:00:00Z' } : {}) },
    spec: { nodeName: p.node },
    status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] },
  }
}

/** `kubectl get services,endpointslices,nodes -A -o json` output. */
export function list(...items: unknown[]) {
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items }
}

/** The same objects as the doctor's library API takes them. */
export function objectsOf(dump: { items: unknown[] }): DoctorObjects {
  const items = dump.items as { kind: string }[]
  const { nodes, pods } = splitNodesAndPods(items)
  return {
    services: items.filter((i) => i.kind === 'Service'),
    endpointSlices: items.filter((i) => i.kind === 'EndpointSlice'),
    nodes,
    pods: pods.length > 0 ? pods : undefined,
  }
}

export function writeDump(dir: string, dump: unknown, name = 'cluster.json'): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, JSON.stringify(dump, null, 2))
  return file
}

export async function svcplane(...argv: string[]) {
  const io = bufferIO()
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

/** The modes a scenario's doctor outcome is checked in: the native model (iptables mode decides alike) and ipvs. */
export const MODES = [{ name: 'native', mode: {} }, { name: 'ipvs', mode: { mode: 'ipvs' as const } }]

/** A report without the node-wide findings (ipvs mode's deprecation and kube-ipvs0 notes). */
export function serviceFindings(r: DoctorReport): DoctorReport {
  return { ...r, findings: r.findings.filter((f) => f.servicePort !== '') }
}
