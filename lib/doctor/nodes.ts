// Nodes as the doctor needs them: the node's name (what EndpointSlices call nodeName), its
// addresses (NodePorts answer on them; InternalIP first, as kube-proxy picks its node IP), its
// zone (topology hints) and its pod CIDRs (kube-proxy's NodeCIDR local-traffic detector).
// lib/k8s loads Services and EndpointSlices only, so Nodes and Pods are split out here.
import { show } from '../util/show.js'
import { canonicalAddress, parseCidr } from '../util/address.js'
import { isRecord, optionalArray, optionalString, requiredString } from '../k8s/fields.js'
import { SvcplaneTypeError } from '../errors.js'

export const ZONE_LABEL = 'topology.kubernetes.io/zone'
/** Still set by older cloud providers. */
export const LEGACY_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone'

export interface ClusterNode {
  name: string
  /** status.addresses of type InternalIP, canonical. */
  internalIPs: string[]
  /** status.addresses of type ExternalIP, canonical. */
  externalIPs: string[]
  zone: string | undefined
  /** spec.podCIDRs (or spec.podCIDR), canonical. */
  podCIDRs: string[]
  ready: boolean
  unschedulable: boolean
}

function invalid(name: unknown, field: string, expected: string, got: unknown): TypeError {
  const n = typeof name === 'string' && name !== '' ? name : '<no name>'
  return new SvcplaneTypeError(`Node ${n}: ${field} must be ${expected}, got ${got === undefined ? 'nothing' : show(got)}`)
}

/** Checks one Node object (`kubectl get nodes -o json` item); a TypeError names the field. */
export function parseNode(input: unknown): ClusterNode {
  if (!isRecord(input)) throw new SvcplaneTypeError(`Node must be an object, got ${input === null ? 'null' : typeof input}`)
  const meta = isRecord(input.metadata) ? input.metadata : undefined
  if (meta === undefined) throw invalid(undefined, 'metadata', 'an object', input.metadata)
  const obj = `Node ${typeof meta.name === 'string' ? meta.name : '<no name>'}`
  const name = requiredString(obj, 'metadata.name', meta.name)
  const labels = isRecord(meta.labels) ? meta.labels : {}
  const zoneLabel = labels[ZONE_LABEL] ?? labels[LEGACY_ZONE_LABEL]
  const zone = optionalString(obj, `metadata.labels["${ZONE_LABEL}"]`, zoneLabel)
  const spec = isRecord(input.spec) ? input.spec : {}
  const status = isRecord(input.status) ? input.status : {}
  const internalIPs: string[] = []
  const externalIPs: string[] = []
  optionalArray(obj, 'status.addresses', status.addresses).forEach((a, i) => {
    if (!isRecord(a)) throw invalid(name, `status.addresses[${i}]`, 'an object', a)
    const type = requiredString(obj, `status.addresses[${i}].type`, a.type)
    if (type !== 'InternalIP' && type !== 'ExternalIP') return
    const address = requiredString(obj, `status.addresses[${i}].address`, a.address)
    const ip = canonicalAddress(address)
    if (ip === undefined) throw invalid(name, `status.addresses[${i}].address`, 'an IP address', address)
    const list = type === 'InternalIP' ? internalIPs : externalIPs
    if (!list.includes(ip)) list.push(ip)
  })
  const cidrs = optionalArray(obj, 'spec.podCIDRs', spec.podCIDRs)
  if (cidrs.length === 0 && spec.podCIDR !== undefined) cidrs.push(spec.podCIDR)
  const podCIDRs = cidrs.map((c, i) => {
    const parsed = typeof c === 'string' ? parseCidr(c) : undefined
    if (parsed === undefined || typeof c !== 'string' || !c.includes('/')) throw invalid(name, `spec.podCIDRs[${i}]`, 'a CIDR', c)
    return parsed.text
  })
  const conditions = optionalArray(obj, 'status.conditions', status.conditions)
  const readyCond = conditions.find((c) => isRecord(c) && c.type === 'Ready') as Record<string, unknown> | undefined
  return {
    name,
    internalIPs,
    externalIPs,
    zone: zone === '' ? undefined : zone,
    podCIDRs,
    // A node that reports no Ready condition (a hand-written dump) is taken as ready.
    ready: readyCond === undefined || readyCond.status === 'True',
    unschedulable: spec.unschedulable === true,
  }
}

/** The addresses kube-proxy opens NodePorts on for this node (every node address it has). */
export function nodeAddresses(node: ClusterNode): string[] {
  return [...node.internalIPs, ...node.externalIPs.filter((ip) => !node.internalIPs.includes(ip))]
}

export interface PodRef {
  namespace: string
  name: string
  uid: string | undefined
  /** metadata.deletionTimestamp is set: the pod is terminating. */
  deleting: boolean
  podIPs: string[]
  nodeName: string | undefined
}

/** The few Pod fields the doctor cross-checks EndpointSlices against. */
export function parsePod(input: unknown): PodRef {
  if (!isRecord(input) || !isRecord(input.metadata)) throw new SvcplaneTypeError('Pod must be an object with metadata')
  const meta = input.metadata
  const obj = `Pod ${String(meta.namespace)}/${String(meta.name)}`
  const status = isRecord(input.status) ? input.status : {}
  const spec = isRecord(input.spec) ? input.spec : {}
  const ips = optionalArray(obj, 'status.podIPs', status.podIPs)
    .map((p) => (isRecord(p) && typeof p.ip === 'string' ? canonicalAddress(p.ip) : undefined))
    .filter((ip): ip is string => ip !== undefined)
  if (ips.length === 0 && typeof status.podIP === 'string') {
    const ip = canonicalAddress(status.podIP)
    if (ip !== undefined) ips.push(ip)
  }
  return {
    namespace: requiredString(obj, 'metadata.namespace', meta.namespace),
    name: requiredString(obj, 'metadata.name', meta.name),
    uid: optionalString(obj, 'metadata.uid', meta.uid),
    deleting: meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null,
    podIPs: ips,
    nodeName: optionalString(obj, 'spec.nodeName', spec.nodeName),
  }
}

function kindOf(item: unknown): string | undefined {
  return isRecord(item) && typeof item.kind === 'string' ? item.kind : undefined
}

/** Nodes and Pods among the items of a dump (other kinds are left to lib/k8s). */
export function splitNodesAndPods(items: readonly unknown[]): { nodes: ClusterNode[]; pods: PodRef[] } {
  const nodes: ClusterNode[] = []
  const pods: PodRef[] = []
  for (const item of items) {
    const kind = kindOf(item)
    if (kind === 'Node') nodes.push(parseNode(item))
    else if (kind === 'Pod') pods.push(parsePod(item))
  }
  const seen = new Set<string>()
  for (const n of nodes) {
    if (seen.has(n.name)) throw new SvcplaneTypeError(`Node ${n.name}: listed twice`)
    seen.add(n.name)
  }
  return { nodes, pods }
}
