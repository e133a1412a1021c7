// The doctor: loads the cluster's objects into one Proxier per node (as that node's kube-proxy
// would see them), runs the checks on every ServicePort, and merges what is the same on
// several nodes. diagnoseProxier() checks a running Proxier instead, including its conntrack.
import { joinHostPort } from '../util/host-port.js'
import { Proxier } from '../modes/index.js'
import type { ProxierOptions, ProxyMode } from '../modes/index.js'
import type { ProxyModelView } from '../proxy/model.js'
import { isRecord } from '../k8s/fields.js'
import { listItems, splitObjects, type SplitObjects } from '../k8s/load.js'
import { conflictMessage } from '../k8s/address-conflicts.js'
import { parseService } from '../k8s/service.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'
import type { IPFamily } from '../k8s/types.js'
import { checkServicePort, checkTarget, DEFAULT_NODE_PORT_RANGE, type CheckContext, type NodeView, type Target } from './checks.js'
import { mergeFindings, type Finding } from './findings.js'
import { nodeAddresses, splitNodesAndPods, type ClusterNode, type PodRef } from './nodes.js'
import { addressInCidr, ownedProber, tracingProber, type Prober } from './probe.js'
import { ipvsFindings, reviseForIpvs } from './ipvs-checks.js'
import { classifyFlow, staleFlows, trackedFlows, conntrackDeleteCommands, type StaleFlow, type TrackedFlow } from './stale.js'
import { errorCode, SvcplaneError, SvcplaneRangeError } from '../errors.js'

export interface DoctorObjects {
  services: unknown[]
  endpointSlices: unknown[]
  nodes: ClusterNode[]
  /** Pods, when the dump has them: endpoints are checked against them. */
  pods?: PodRef[]
  /** Services kube-proxy skips (another proxy's, headless-labelled): reported as notes saying why. */
  notProxied?: SplitObjects['notProxied']
}

export interface DoctorOptions {
  /** Check from this node only; default every node of the dump. */
  nodeName?: string
  /** The node's addresses when the dump has no Node for it (or to override them). */
  nodeIPs?: string[]
  /** The local-traffic detector (kube-proxy --cluster-cidr); default each node's spec.podCIDRs. */
  podCIDRs?: string[]
  /** The node's zone when the dump has no Node for it. */
  zone?: string
  /** Services ("ns/name") to check; default all. Naming a Service also shows its notes (info findings). */
  services?: string[]
  /** An external client's address: checks that it can reach the Services from outside. */
  client?: string
  /** The address and port a client connects to (a NodePort, a load-balancer IP...). */
  target?: Target
  /** The API server's --service-node-port-range; default 30000-32767. */
  nodePortRange?: [number, number]
  /** kube-proxy's localhost NodePorts (iptables mode only; default true). */
  localhostNodePorts?: boolean
  masqueradeAll?: boolean
  /** Also report info findings (default: only when `services` names some). */
  includeInfo?: boolean
  /** The node's conntrack table (a parsed `conntrack -L`), checked for stale flows; needs one node. */
  conntrack?: TrackedFlow[]
  /** Fixes the schedulers of the probe Proxiers (reproducible endpoints in probes). Default 1. */
  seed?: number
  /**
   * The nodes' proxy mode: probes run through it, and 'ipvs' adds IPVS mode's own checks.
   * Default: the native model (the decisions of iptables mode).
   */
  mode?: ProxyMode
  /** kube-proxy's service CIDRs (nftables mode drops their unallocated addresses). */
  serviceCIDRs?: string[]
  /** kube-proxy's --nodeport-addresses (CIDRs or "primary"). */
  nodePortAddresses?: string[]
  /** The mode sections of a KubeProxyConfiguration (ipvs.strictARP, ipvs.scheduler, ...). */
  sections?: Pick<ProxierOptions, 'iptables' | 'ipvs' | 'nftables' | 'timeouts'>
}

export interface DoctorReport {
  /** The nodes checked. */
  nodes: string[]
  services: number
  servicePorts: number
  findings: Finding[]
  /** Flows pinned to endpoints that take no new connections (from a running Proxier or --conntrack). */
  staleFlows: StaleFlow[]
  /** `conntrack -D` commands that clear them on a kube-proxy node. */
  clearCommands: string[]
}

function serviceKey(obj: unknown): string | undefined {
  if (!isRecord(obj) || !isRecord(obj.metadata)) return undefined
  return `${String(obj.metadata.namespace)}/${String(obj.metadata.name)}`
}

function sliceServiceKey(obj: unknown): string | undefined {
  if (!isRecord(obj) || !isRecord(obj.metadata)) return undefined
  const labels = isRecord(obj.metadata.labels) ? obj.metadata.labels : {}
  return `${String(obj.metadata.namespace)}/${String(labels['kubernetes.io/service-name'])}`
}

/** The nodes to check, from the dump or from the options when the dump has none. */
export function nodesToCheck(objects: DoctorObjects, options: DoctorOptions): ClusterNode[] {
  let nodes = objects.nodes
  if (options.nodeName !== undefined) {
    const found = nodes.find((n) => n.name === options.nodeName)
    if (found !== undefined) nodes = [found]
    else if (options.nodeIPs !== undefined && options.nodeIPs.length > 0) {
      nodes = [{ name: options.nodeName, internalIPs: options.nodeIPs, externalIPs: [], zone: options.zone, podCIDRs: [], ready: true, unschedulable: false }]
    } else {
      const known = objects.nodes.map((n) => n.name).join(', ')
      throw new SvcplaneRangeError(`node ${JSON.stringify(options.nodeName)} is not in the dump (${known === '' ? 'it has no Nodes' : `nodes: ${known}`}); give its addresses with nodeIPs (--node-ip)`)
    }
  }
  if (nodes.length === 0) throw new SvcplaneRangeError('the dump has no Nodes: name the node to check from and give its addresses (--node-name, --node-ip)')
  return nodes.map((n) => {
    const withIPs = options.nodeIPs !== undefined && options.nodeIPs.length > 0 && options.nodeName === n.name ? { ...n, internalIPs: options.nodeIPs, externalIPs: [] } : n
    if (nodeAddresses(withIPs).length === 0) throw new SvcplaneRangeError(`Node ${n.name} has no InternalIP or ExternalIP address: give its addresses (--node-name ${n.name} --node-ip IP)`)
    return { ...withIPs, zone: withIPs.zone ?? (options.nodeName === n.name ? options.zone : undefined) }
  })
}

/** kube-proxy's options for a node: its name, addresses, zone and detector. */
export function proxierOptionsFor(node: ClusterNode, objects: DoctorObjects, options: DoctorOptions, mode: ProxyMode): ProxierOptions {
  let ports = 0
  for (const s of objects.services) if (isRecord(s) && isRecord(s.spec) && Array.isArray(s.spec.ports)) ports += s.spec.ports.length
  let endpoints = 0
  for (const sl of objects.endpointSlices) if (isRecord(sl) && Array.isArray(sl.endpoints)) endpoints += sl.endpoints.length * Math.max(1, Array.isArray(sl.ports) ? sl.ports.length : 1)
  const ips = nodeAddresses(node)
  let podCIDRs = options.podCIDRs ?? node.podCIDRs
  if (mode === 'iptables') {
    // kube-proxy's iptables mode detects pod traffic by one CIDR per family.
    podCIDRs = (['IPv4', 'IPv6'] as IPFamily[]).map((f) => podCIDRs.find((c) => c.includes(':') === (f === 'IPv6'))).filter((c): c is string => c !== undefined)
  }
  const sections = options.sections ?? {}
  return {
    mode,
    nodeName: node.name,
    nodeIPs: ips,
    podCIDRs,
    ...(options.serviceCIDRs !== undefined ? { serviceCIDRs: options.serviceCIDRs } : {}),
    ...(options.nodePortAddresses !== undefined ? { nodePortAddresses: options.nodePortAddresses } : {}),
    zone: node.zone,
    masqueradeAll: options.masqueradeAll ?? false,
    seed: options.seed ?? 1,
    ...(sections.ipvs !== undefined ? { ipvs: sections.ipvs } : {}),
    ...(sections.nftables !== undefined ? { nftables: sections.nftables } : {}),
    ...(sections.timeouts !== undefined ? { timeouts: sections.timeouts } : {}),
    iptables: { ...sections.iptables, localhostNodePorts: options.localhostNodePorts ?? sections.iptables?.localhostNodePorts ?? true },
    native: {
      capacity: {
        services: 2 * ports + 64,
        frontends: ports * (ips.length + 8) + 64,
        backends: 2 * endpoints + 64,
        conntrack: 1 << 17,
        affinity: 1 << 14,
      },
    },
  }
}

/** A Proxier of `mode` for `node`, loaded with the objects and synced. */
export function loadNode(node: ClusterNode, objects: DoctorObjects, options: DoctorOptions, mode: ProxyMode = 'native'): Proxier {
  const proxier = new Proxier(proxierOptionsFor(node, objects, options, mode))
  for (const s of objects.services) proxier.applyService(s)
  for (const s of objects.endpointSlices) proxier.applyEndpointSlice(s)
  const summary = proxier.sync()
  if (summary.errors.length > 0) {
    const e = summary.errors[0]!
    const clash = conflictMessage(e.service, objects.services.flatMap((s) => { try { return [parseService(s)] } catch { return [] } }))
    if (clash !== undefined) throw new SvcplaneError('CONFLICT', clash)
    // The cause's code (FULL, CONFLICT, ...) says why, as it would from the Proxier itself.
    throw new SvcplaneError(errorCode(e.error) ?? 'INVALID', `programming ${e.service} failed on node ${node.name}: ${e.error.message}`, { cause: e.error })
  }
  return proxier
}

function podSources(model: ProxyModelView): Partial<Record<IPFamily, string>> {
  const avoid = new Set<string>()
  for (const s of model.servicePorts()) for (const e of s.endpoints) avoid.add(e.ip)
  const out: Partial<Record<IPFamily, string>> = {}
  for (const cidr of model.detector.podCIDRs) {
    const family: IPFamily = cidr.includes(':') ? 'IPv6' : 'IPv4'
    if (out[family] === undefined) {
      const a = addressInCidr(cidr, avoid)
      if (a !== undefined) out[family] = a
    }
  }
  return out
}

function contextOf(objects: { nodes: ClusterNode[]; pods?: PodRef[] }, options: DoctorOptions, oneNode: boolean): CheckContext {
  return {
    clusterNodes: objects.nodes,
    focus: new Set(options.services ?? []),
    oneNode,
    client: options.client,
    target: options.target,
    nodePortRange: options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE,
    localhostNodePorts: options.localhostNodePorts ?? true,
    pods: objects.pods,
  }
}

function checkNode(view: NodeView, ctx: CheckContext, wanted: (service: string) => boolean): Finding[] {
  const out: Finding[] = []
  const t = ctx.target
  if (t !== undefined) {
    // Only the node that owns a node address answers on it; other addresses are tried everywhere.
    const owner = ctx.clusterNodes.find((n) => nodeAddresses(n).includes(t.address))
    if (owner === undefined || owner.name === view.node.name) out.push(...checkTarget(view, ctx, t))
  }
  for (const s of view.model.servicePorts()) {
    if (!wanted(s.info.service)) continue
    out.push(...checkServicePort(view, s, ctx))
  }
  return out
}

/** Live flows: stale ones, and ClientIP affinity concentrating a Service's flows on one endpoint. */
function flowFindings(model: ProxyModelView, node: string, flows: readonly TrackedFlow[], wanted: (service: string) => boolean): { findings: Finding[]; stale: StaleFlow[] } {
  const stale: StaleFlow[] = []
  const perPort = new Map<string, { endpoints: Map<string, number>; clients: Set<string> }>()
  for (const f of flows) {
    const s = classifyFlow(model, f)
    const hit = model.lookupFrontend(f.dst, f.dport, f.protocol.toUpperCase())
    if (hit === undefined || !wanted(hit.state.info.service)) continue
    if (s !== undefined) stale.push(s)
    let c = perPort.get(hit.state.info.key)
    if (c === undefined) perPort.set(hit.state.info.key, (c = { endpoints: new Map(), clients: new Set() }))
    const ep = joinHostPort(f.endpointAddress, f.endpointPort)
    c.endpoints.set(ep, (c.endpoints.get(ep) ?? 0) + 1)
    c.clients.add(f.src)
  }
  const findings: Finding[] = []
  const byPort = new Map<string, StaleFlow[]>()
  for (const s of stale) byPort.set(`${s.servicePort}|${s.protocol}`, [...(byPort.get(`${s.servicePort}|${s.protocol}`) ?? []), s])
  for (const [k, list] of byPort) {
    const [servicePort, protocol] = k.split('|')
    const state = model.servicePorts().find((x) => x.info.name === servicePort && x.info.protocol === protocol)!
    const endpoints = [...new Set(list.map((f) => f.endpoint))]
    const kinds = [...new Set(list.map((f) => f.why))].sort()
    findings.push({
      code: 'stale-flows',
      severity: 'warning',
      servicePort,
      service: state.info.service,
      protocol,
      nodes: [node],
      what: `${list.length} tracked connection(s) still go to ${endpoints.length} old endpoint(s): ${endpoints.join(', ')}`,
      why: `conntrack keeps a connection on the endpoint its first packet chose; these endpoints are ${kinds.map((w) => (w === 'deleted' ? 'no longer listed (deleted pods)' : w === 'terminating' ? 'terminating' : 'not ready')).join(' or ')}, so those clients never reach the new pods (${state.categorized.allReachable.map((e) => e.endpoint).join(', ') || 'none'}) until they reconnect; kube-proxy clears only UDP flows by itself`,
      fix: 'clear them: svcplane doctor --clear-stale (a running svcplane), or on a kube-proxy node: ' + conntrackDeleteCommands(list).join('; '),
      details: { flows: list },
    })
  }
  for (const [key, c] of perPort) {
    const s = model.servicePort(key)!
    if (s.info.affinityTimeoutSeconds === 0 || s.categorized.allReachable.length < 2) continue
    const total = [...c.endpoints.values()].reduce((a, b) => a + b, 0)
    if (c.endpoints.size !== 1 || total < 2) continue
    const [ep] = c.endpoints.keys()
    findings.push({
      code: 'affinity-pinning',
      severity: 'warning',
      servicePort: s.info.name,
      service: s.info.service,
      protocol: s.info.protocol,
      nodes: [node],
      what: `all ${total} tracked connections go to ${ep}, one of ${s.categorized.allReachable.length} ready endpoints`,
      why: `sessionAffinity: ClientIP pins each client address to one endpoint for ${s.info.affinityTimeoutSeconds} s, and these connections come from ${c.clients.size} client address(es) (${[...c.clients].slice(0, 4).join(', ')}): clients behind a NAT, a proxy or an ingress controller share an address and so share one pod`,
      fix: 'sessionAffinity: None unless the application needs stickiness; otherwise a shorter sessionAffinityConfig.clientIP.timeoutSeconds, or stickiness in the application layer (cookies)',
      details: { endpoint: ep, connections: total, clients: [...c.clients] },
    })
  }
  return { findings, stale }
}

function finish(findings: Finding[], options: DoctorOptions, nodes: string[], allNodes: number): Finding[] {
  const showInfo = options.includeInfo ?? (options.services !== undefined && options.services.length > 0)
  const merged = mergeFindings(findings.filter((f) => showInfo || f.severity !== 'info'))
  // A finding on every node checked (of several) does not depend on the node.
  if (nodes.length > 1 && allNodes > 1) for (const f of merged) if (f.nodes.length === nodes.length) f.nodes = []
  return merged
}

const DOCTOR_OPTION_KEYS = optionKeys<DoctorOptions>({
  nodeName: true, nodeIPs: true, podCIDRs: true, zone: true, services: true, client: true, target: true,
  nodePortRange: true, localhostNodePorts: true, masqueradeAll: true, includeInfo: true, conntrack: true, seed: true,
  mode: true, serviceCIDRs: true, nodePortAddresses: true, sections: true,
})
const LIVE_OPTION_KEYS = optionKeys<LiveOptions>({ services: true, client: true, target: true, nodePortRange: true, includeInfo: true, nodes: true, pods: true, now: true })

function isDoctorObjects(v: unknown): v is DoctorObjects {
  return isRecord(v) && Array.isArray(v.services) && Array.isArray(v.endpointSlices) && !('kind' in v)
}

/**
 * The doctor's objects from anything the other entry points take: DoctorObjects as they are,
 * or a List (kubectl JSON, an array, JSON text) whose Nodes and Pods are read too and whose
 * v1 Endpoints are read as EndpointSlices.
 */
export function doctorObjects(input: unknown): DoctorObjects {
  if (isDoctorObjects(input)) return { ...input, nodes: input.nodes ?? [] }
  const items = listItems(input)
  const split = splitObjects(items)
  const extra = splitNodesAndPods(items)
  return { services: split.services, endpointSlices: split.endpointSlices, nodes: extra.nodes, pods: extra.pods.length > 0 ? extra.pods : undefined, notProxied: split.notProxied }
}

/** Notes for the Services kube-proxy leaves out, saying why. */
function notProxiedFindings(objects: DoctorObjects, wanted: (service: string) => boolean): Finding[] {
  return (objects.notProxied ?? []).filter((n) => n.kind === 'Service' && wanted(n.key)).map((n): Finding => ({
    code: 'not-proxied',
    severity: 'info',
    servicePort: '',
    service: n.key,
    protocol: '',
    nodes: [],
    what: 'kube-proxy does not program this Service: no rules, no frontends',
    why: `it is ${n.reason} (kube-proxy's informers select "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless")`,
    fix: 'nothing, if the proxy named by the label serves it; otherwise remove the label so kube-proxy takes it',
  }))
}

/** Checks every Service of the dump (DoctorObjects, or a List) from every node (or options.nodeName). */
export function diagnose(input: DoctorObjects | unknown, options: DoctorOptions = {}): DoctorReport {
  checkOptions('diagnose options', options, DOCTOR_OPTION_KEYS)
  const objects = doctorObjects(input)
  const nodes = nodesToCheck(objects, options)
  if (options.conntrack !== undefined && nodes.length !== 1) throw new SvcplaneRangeError('a conntrack listing belongs to one node: name it (nodeName / --node-name)')
  const known = new Set([...objects.services.map(serviceKey), ...(objects.notProxied ?? []).filter((n) => n.kind === 'Service').map((n) => n.key)])
  for (const s of options.services ?? []) {
    if (!known.has(s)) throw new SvcplaneRangeError(`Service ${s} is not in the dump`)
  }
  const focus = options.services !== undefined && options.services.length > 0 ? new Set(options.services) : undefined
  const wanted = (service: string) => focus === undefined || focus.has(service)
  // Only the focused Services and their slices are loaded: a Proxier per node stays small.
  const scoped: DoctorObjects = focus === undefined
    ? objects
    : { ...objects, services: objects.services.filter((s) => focus.has(serviceKey(s) ?? '')), endpointSlices: objects.endpointSlices.filter((s) => focus.has(sliceServiceKey(s) ?? '')) }
  if (options.target !== undefined && focus !== undefined) scoped.services = objects.services
  if (options.target !== undefined && focus !== undefined) scoped.endpointSlices = objects.endpointSlices
  const all = { ...objects, nodes: objects.nodes.length > 0 ? objects.nodes : nodes }
  const ctx = contextOf(all, options, options.nodeName !== undefined)
  const findings: Finding[] = notProxiedFindings(objects, wanted)
  const stale: StaleFlow[] = []
  let servicePorts = 0
  for (const node of nodes) {
    const proxier = loadNode(node, scoped, options, options.mode ?? 'native')
    try {
      const model = proxier.state
      servicePorts = Math.max(servicePorts, model.servicePorts().filter((s) => wanted(s.info.service)).length)
      const view: NodeView = { node, model, probe: ownedProber(proxier), podSource: podSources(model) }
      const found = checkNode(view, ctx, wanted)
      findings.push(...(proxier.ipvs !== undefined ? reviseForIpvs(found) : found))
      findings.push(...ipvsFindings(node.name, proxier, view.probe).filter((f) => f.service === '' || wanted(f.service)))
      if (options.conntrack !== undefined) {
        const r = flowFindings(model, node.name, options.conntrack, wanted)
        findings.push(...r.findings)
        stale.push(...r.stale)
      }
    } finally {
      proxier.dataplane?.destroy()
    }
  }
  const names = nodes.map((n) => n.name)
  return {
    nodes: names,
    services: scoped.services.filter((s) => wanted(serviceKey(s) ?? '')).length,
    servicePorts,
    findings: finish(findings, options, names, all.nodes.length),
    staleFlows: stale,
    clearCommands: conntrackDeleteCommands(stale),
  }
}

export interface LiveOptions extends Pick<DoctorOptions, 'services' | 'client' | 'target' | 'nodePortRange' | 'includeInfo'> {
  /** Every node of the cluster (to say where endpoints run); default just this one. */
  nodes?: ClusterNode[]
  pods?: PodRef[]
  now?: number
}

/**
 * Checks a running Proxier: its model from its own node's point of view (probes are traced
 * only: nothing enters its conntrack), and its conntrack: stale flows, affinity pinning.
 */
export function diagnoseProxier(proxier: Proxier, options: LiveOptions = {}): DoctorReport {
  checkOptions('diagnoseProxier options', options, LIVE_OPTION_KEYS)
  const o = proxier.options
  const self: ClusterNode = { name: o.node.name, internalIPs: o.node.ips, externalIPs: [], zone: o.node.zone, podCIDRs: o.podCIDRs, ready: true, unschedulable: false }
  const nodes = options.nodes ?? [self]
  const ctx = contextOf({ nodes, pods: options.pods }, { ...options, localhostNodePorts: proxier.state.options.localhostNodePorts }, true)
  const focus = options.services !== undefined && options.services.length > 0 ? new Set(options.services) : undefined
  const wanted = (service: string) => focus === undefined || focus.has(service)
  const model = proxier.state
  const prober: Prober = tracingProber(model)
  const view: NodeView = { node: self, model, probe: prober, podSource: podSources(model) }
  const findings = checkNode(view, ctx, wanted)
  const flows = flowFindings(model, self.name, trackedFlows(proxier, options.now), wanted)
  findings.push(...flows.findings)
  const services = new Set(model.servicePorts().map((s) => s.info.service).filter(wanted))
  return {
    nodes: [self.name],
    services: services.size,
    servicePorts: model.servicePorts().filter((s) => wanted(s.info.service)).length,
    findings: finish(findings, options, [self.name], 1),
    staleFlows: flows.stale,
    clearCommands: conntrackDeleteCommands(flows.stale),
  }
}

export { staleFlows }
