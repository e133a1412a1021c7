// What kube-proxy's rules do with the first packet of a connection, decided from the model
// alone: the frontend it hits, the policy and endpoint set that apply, and whether it is
// masqueraded. Every proxy mode must agree with this; explain() shows its steps.
import type { EndpointInfo } from './endpoints.js'
import type { Frontend } from './frontends.js'
import type { ProxyModelView, ServicePortState } from './model.js'
import type { CheckedPacket, RouteReason } from './packet.js'
import { sourceAllowed, type EndpointSetName } from './traffic-plan.js'

export interface Step {
  /** What the step is about. */
  kind: 'source' | 'frontend' | 'firewall' | 'policy' | 'endpoints' | 'masquerade' | 'conntrack' | 'affinity' | 'endpoint' | 'verdict'
  text: string
}

export interface SourceClass {
  /** Inside the pod CIDRs (kube-proxy's local-traffic detector). */
  fromPod: boolean
  /** From this node (hook output, or a node / loopback address). */
  fromNode: boolean
}

export interface KubeProxyTrace {
  action: 'dnat' | 'reject' | 'drop' | 'accept'
  state?: ServicePortState
  frontend?: Frontend
  reason?: RouteReason
  /** The endpoint set new connections are balanced over. */
  endpointSet?: EndpointSetName
  candidates: EndpointInfo[]
  /** Masquerade before the hairpin rule (which depends on the endpoint chosen). */
  masquerade: boolean
  steps: Step[]
}

export function classifySource(model: ProxyModelView, p: CheckedPacket): SourceClass {
  return {
    fromPod: model.detector.implemented && model.detector.isFromPod(p.src),
    fromNode: p.hook === 'output' || model.nodeAddresses.isLocal(p.src),
  }
}

/** Hairpin: a pod reaching itself through a service must be masqueraded. */
export function isHairpin(src: string, endpoint: EndpointInfo | string): boolean {
  const ip = typeof endpoint === 'string' ? endpoint.replace(/^\[?(.*?)\]?:\d+$/, '$1') : endpoint.ip
  return ip === src
}

export function traceKubeProxy(model: ProxyModelView, p: CheckedPacket, source: SourceClass): KubeProxyTrace {
  const steps: Step[] = []
  const who = source.fromNode ? 'this node' : source.fromPod ? 'a pod (inside the pod CIDRs)' : 'outside this node and the pod CIDRs'
  steps.push({ kind: 'source', text: `source ${p.src} is ${who}` })
  const hit = model.lookupFrontend(p.dst, p.dport, p.protocol)
  if (hit === undefined) {
    steps.push({ kind: 'frontend', text: `no service answers on ${p.dst}:${p.dport}/${p.protocol}` })
    return { action: 'accept', candidates: [], masquerade: false, steps }
  }
  const { state, frontend } = hit
  const { info, plan, categorized } = state
  const name = info.name
  steps.push({ kind: 'frontend', text: `${p.dst}:${p.dport}/${p.protocol} is the ${frontend.kind} of ${name}` })
  const base = { state, frontend, candidates: [] as EndpointInfo[], masquerade: false, steps }
  if (!plan.hasEndpoints) {
    // kube-proxy rejects external destinations without endpoints in KUBE-EXTERNAL-SERVICES,
    // which only INPUT and FORWARD jump to: a node's own packet to an external or load-balancer
    // IP that is not one of its addresses leaves the node untouched.
    const external = frontend.kind === 'externalIP' || frontend.kind === 'loadBalancer'
    if (p.hook === 'output' && external && !model.nodeAddresses.isLocal(p.dst)) {
      steps.push({ kind: 'verdict', text: `${name} has no endpoints, but kube-proxy only rejects arriving traffic to its ${frontend.kind}: ACCEPT (leaves the node)` })
      return { ...base, action: 'accept' }
    }
    steps.push({ kind: 'verdict', text: `${name} has no endpoints: REJECT` })
    return { ...base, action: 'reject', reason: 'no-endpoints' }
  }

  let set: EndpointSetName
  let masquerade = false
  if (frontend.kind === 'clusterIP') {
    if (!plan.hasInternalEndpoints) {
      steps.push({ kind: 'policy', text: 'internalTrafficPolicy Local and no local endpoints' })
      steps.push({ kind: 'verdict', text: `${name} has no local endpoints: DROP` })
      return { ...base, action: 'drop', reason: 'no-local-endpoints' }
    }
    set = plan.internalSet
    steps.push({ kind: 'policy', text: `internalTrafficPolicy ${info.internalPolicyLocal ? 'Local' : 'Cluster'}: ${set} endpoints` })
    if (model.options.masqueradeAll) {
      masquerade = true
      steps.push({ kind: 'masquerade', text: 'masqueradeAll' })
    } else if (model.detector.implemented && !source.fromPod) {
      masquerade = true
      steps.push({ kind: 'masquerade', text: 'cluster IP reached from outside the pod CIDRs' })
    }
  } else {
    if (frontend.kind === 'loadBalancer' && plan.usesFirewall) {
      if (!sourceAllowed(plan.firewallAllows, p.src)) {
        steps.push({ kind: 'firewall', text: `${p.src} is outside loadBalancerSourceRanges (${info.loadBalancerSourceRanges.join(', ')})` })
        steps.push({ kind: 'verdict', text: 'DROP' })
        return { ...base, action: 'drop', reason: 'source-range' }
      }
      steps.push({ kind: 'firewall', text: `${p.src} is allowed by loadBalancerSourceRanges` })
    }
    if (!info.externalPolicyLocal) {
      set = 'cluster'
      masquerade = true
      steps.push({ kind: 'policy', text: 'externalTrafficPolicy Cluster: cluster endpoints' })
      steps.push({ kind: 'masquerade', text: 'external traffic under Cluster policy' })
    } else if (model.detector.implemented && source.fromPod) {
      set = 'cluster'
      steps.push({ kind: 'policy', text: 'externalTrafficPolicy Local, but pod traffic to an external destination is short-circuited to cluster endpoints' })
    } else if (source.fromNode) {
      set = 'cluster'
      masquerade = true
      steps.push({ kind: 'policy', text: 'externalTrafficPolicy Local, but node traffic to an external destination is short-circuited to cluster endpoints' })
      steps.push({ kind: 'masquerade', text: 'node-originated traffic to an external destination' })
    } else if (!plan.hasExternalEndpoints) {
      steps.push({ kind: 'policy', text: 'externalTrafficPolicy Local and no local endpoints' })
      steps.push({ kind: 'verdict', text: `${name} has no local endpoints: DROP` })
      return { ...base, action: 'drop', reason: 'no-local-endpoints' }
    } else {
      set = 'local'
      steps.push({ kind: 'policy', text: 'externalTrafficPolicy Local: local endpoints, source address kept' })
    }
  }
  const candidates = categorized[set]
  const fallback = set === 'cluster' ? categorized.clusterFallback : categorized.localFallback
  let how = fallback ? 'no ready endpoints, falling back to serving terminating ones' : 'ready endpoints'
  if (set === 'cluster' && categorized.usedTopology) how += ` hinted for zone ${model.node.zone}`
  steps.push({ kind: 'endpoints', text: `${set} set (${how}): ${candidates.map((e) => e.endpoint).join(', ')}` })
  return { ...base, action: 'dnat', endpointSet: set, candidates, masquerade }
}
