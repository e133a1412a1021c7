// The checks: for one node's model, every ServicePort's endpoint sets and traffic plan, and
// the decisions of probe packets from a pod, from the node and from outside to its frontends.
// Each finding says what fails, why (from the model's facts), and what fixes it.
import { ProxyModel, type ProxyModelView, type ServicePortState } from '../proxy/model.js'
import type { EndpointInfo } from '../proxy/endpoints.js'
import type { Frontend } from '../proxy/frontends.js'
import type { Packet } from '../proxy/packet.js'
import { externallyAccessible } from '../proxy/serviceport.js'
import { sourceAllowed } from '../proxy/traffic-plan.js'
import type { IPFamily, K8sProtocol } from '../k8s/types.js'
import type { Finding, FindingCode, Probe, Severity } from './findings.js'
import { nodeAddresses, type ClusterNode, type PodRef } from './nodes.js'
import { joinHostPort } from '../util/host-port.js'
import { DEFAULT_EXTERNAL_CLIENT, type Prober } from './probe.js'

export const DEFAULT_NODE_PORT_RANGE: [number, number] = [30000, 32767]

export interface Target {
  address: string
  port: number
  protocol: K8sProtocol
}

/** What the whole run knows, shared by every node's checks. */
export interface CheckContext {
  /** Every node of the cluster (to say where endpoints run and whose address a target is). */
  clusterNodes: ClusterNode[]
  /** Services ("ns/name") the user asked about: their notes (info findings) and exposure are checked. */
  focus: ReadonlySet<string>
  /** --node-name was given: node-specific findings are wanted even when a load balancer would steer around the node. */
  oneNode: boolean
  /** An external client address (--client). */
  client: string | undefined
  /** The address a client connects to (--dst). */
  target: Target | undefined
  nodePortRange: [number, number]
  localhostNodePorts: boolean
  /** Pods of the dump, when it has them (cross-checked against the slices). */
  pods: PodRef[] | undefined
}

export interface NodeView {
  node: ClusterNode
  model: ProxyModelView
  probe: Prober
  /** A pod address on this node (inside the local-traffic detector's CIDRs) per family, when there is a detector. */
  podSource: Partial<Record<IPFamily, string>>
}

interface Out {
  push(f: Omit<Finding, 'servicePort' | 'service' | 'protocol' | 'nodes'> & { nodes?: string[] }): void
}

const list = (eps: readonly EndpointInfo[], max = 6) => {
  const names = eps.slice(0, max).map((e) => e.endpoint)
  return eps.length > max ? `${names.join(', ')} and ${eps.length - max} more` : names.join(', ')
}

function where(eps: readonly EndpointInfo[]): string {
  const nodes = [...new Set(eps.map((e) => e.nodeName ?? '(no node)'))].sort()
  return nodes.join(', ')
}

function familyOf(s: ServicePortState): IPFamily {
  return s.info.family
}

function nodeIP(view: NodeView, family: IPFamily): string | undefined {
  return view.model.node.ips.find((ip) => ip.includes(':') === (family === 'IPv6'))
}

function externalSource(ctx: CheckContext, family: IPFamily): string {
  if (ctx.client !== undefined && ctx.client.includes(':') === (family === 'IPv6')) return ctx.client
  return DEFAULT_EXTERNAL_CLIENT[family]
}

function packet(src: string, f: { address: string; port: number; protocol: K8sProtocol }, hook: Packet['hook'] = 'prerouting'): Packet {
  return { src, sport: 0, dst: f.address, dport: f.port, protocol: f.protocol, hook, now: 1000 }
}

/** A packet from inside the cluster to the cluster IP: from a pod when there is a detector, else from the node. */
function internalProbe(view: NodeView, s: ServicePortState, src?: string): Probe | undefined {
  const cip = s.frontends.find((f) => f.kind === 'clusterIP')!
  const pod = src ?? view.podSource[familyOf(s)]
  if (pod !== undefined) return view.probe(view.node.name, packet(pod, cip))
  const ip = nodeIP(view, familyOf(s))
  return ip === undefined ? undefined : view.probe(view.node.name, packet(ip, cip, 'output'))
}

function externalFrontends(s: ServicePortState): Frontend[] {
  return s.frontends.filter((f) => f.kind !== 'clusterIP' && !(f.kind === 'nodePort' && f.address === '127.0.0.1'))
}

function describeEndpointStates(eps: readonly EndpointInfo[]): string {
  return eps
    .map((e) => `${e.endpoint} (${e.ready ? 'ready' : e.terminating ? (e.serving ? 'terminating, serving' : 'terminating') : 'not ready'}${e.nodeName ? ` on ${e.nodeName}` : ''})`)
    .join(', ')
}

/** Slices of a Service whose ports do not include the ServicePort's name/protocol. */
function portMismatch(model: ProxyModelView, s: ServicePortState): { slices: number; ports: string[] } | undefined {
  if (!(model instanceof ProxyModel)) return undefined
  const slices = model.slices.slicesOf(s.info.service).filter((sl) => sl.addressType === s.info.family)
  if (slices.length === 0) return { slices: 0, ports: [] }
  const ports = new Set<string>()
  let endpoints = 0
  for (const sl of slices) {
    endpoints += sl.endpoints.length
    for (const p of sl.ports) ports.add(`${p.name === null ? '(unset)' : p.name === '' ? '(unnamed)' : p.name}/${p.protocol}${p.port === null ? ' (no port)' : ''}`)
  }
  return endpoints === 0 ? { slices: slices.length, ports: [] } : { slices: slices.length, ports: [...ports].sort() }
}

/** The checks of one ServicePort on one node. */
export function checkServicePort(view: NodeView, s: ServicePortState, ctx: CheckContext): Finding[] {
  const out: Finding[] = []
  const { info, plan, categorized, endpoints } = s
  const nodeName = view.node.name
  const focused = ctx.focus.has(info.service)
  const add: Out['push'] = (f) =>
    out.push({ servicePort: info.name, service: info.service, protocol: info.protocol, nodes: f.nodes ?? [nodeName], ...f })
  const ready = endpoints.filter((e) => e.ready)
  const portName = info.portName === '' ? '(unnamed)' : info.portName

  // Exposure (scenario 1): asked about from outside, but nothing listens outside.
  if (ctx.client !== undefined && focused && !externallyAccessible(info)) {
    const ip = nodeIP(view, info.family)
    const probe = ip === undefined ? undefined : view.probe(nodeName, packet(externalSource(ctx, info.family), { address: ip, port: info.port, protocol: info.protocol }))
    add({
      code: 'not-exposed',
      severity: 'error',
      nodes: [],
      what: `not reachable from outside the cluster: type ${info.type}, no NodePort, no external or load-balancer IP`,
      why: `the cluster IP ${info.clusterIP} is routed only inside the cluster (from pods and nodes); a client outside, such as ${ctx.client}, has no address of this Service to connect to, and nothing answers on a node's address at port ${info.port}`,
      fix: 'make it type: LoadBalancer (or NodePort), give it spec.externalIPs, or put an Ingress / Gateway in front of it',
      probe,
    })
  }

  // A load balancer named by a hostname (AWS ELB/NLB) or in ipMode Proxy is provisioned: it
  // sends to the NodePorts (or to the node), and kube-proxy has no IP to program for it.
  const svc = view.model instanceof ProxyModel ? view.model.services.get(info.service) : undefined
  const lbElsewhere = [...(svc?.loadBalancerHostnames ?? []), ...(svc?.loadBalancerProxyIPs ?? []).map((ip) => `${ip} (ipMode: Proxy)`)]
  if (info.type === 'LoadBalancer' && info.loadBalancerVIPs.length === 0 && lbElsewhere.length > 0) {
    add({
      code: 'load-balancer-hostname',
      severity: info.nodePort === 0 ? 'warning' : 'info',
      nodes: [],
      what: `the load balancer is ${lbElsewhere.join(', ')}: provisioned, with no IP for kube-proxy to program`,
      why: `status.loadBalancer.ingress names the load balancer by hostname (or it proxies, ipMode: Proxy), so its traffic reaches the nodes ${info.nodePort === 0 ? 'on their own addresses, and this Service has no NodePort to receive it (spec.allocateLoadBalancerNodePorts: false)' : `on the NodePort ${info.nodePort}, which answers on every node address`}`,
      fix: info.nodePort === 0 ? 'set allocateLoadBalancerNodePorts: true, unless the load balancer sends straight to pod IPs' : 'nothing to fix; to test it, connect to NODE-ADDRESS:' + info.nodePort + ' or to the hostname',
    })
  }

  if (info.type === 'LoadBalancer' && info.loadBalancerVIPs.length === 0 && lbElsewhere.length === 0) {
    const noNodePort = info.nodePort === 0
    add({
      code: noNodePort ? 'no-node-port' : 'load-balancer-pending',
      severity: noNodePort ? 'error' : 'warning',
      nodes: [],
      what: noNodePort
        ? 'not reachable from outside: no load-balancer IP and no NodePort'
        : 'no load-balancer IP: only the NodePort is reachable from outside',
      why:
        'status.loadBalancer.ingress has no IP and no hostname (no load balancer was provisioned: no cloud controller or MetalLB, a quota or an annotation error)' +
        (noNodePort ? ', and spec.allocateLoadBalancerNodePorts: false left the Service without NodePorts' : `; the NodePort ${info.nodePort} answers on every node address`),
      fix: noNodePort
        ? 'check the load-balancer controller (kubectl describe service shows its events), or set allocateLoadBalancerNodePorts: true to get NodePorts'
        : 'check the load-balancer controller (kubectl describe service shows its events); meanwhile clients can use NODE-ADDRESS:' + info.nodePort,
    })
  }

  if (info.nodePort !== 0 && (info.nodePort < ctx.nodePortRange[0] || info.nodePort > ctx.nodePortRange[1])) {
    add({
      code: 'node-port-out-of-range',
      severity: 'warning',
      nodes: [],
      what: `NodePort ${info.nodePort} is outside the node-port range ${ctx.nodePortRange[0]}-${ctx.nodePortRange[1]}`,
      why: 'firewalls and cloud security groups for nodes usually open only the node-port range (the API server\'s --service-node-port-range); a NodePort outside it was set while the API server had another range, or the range here is not the cluster\'s',
      fix: `choose a nodePort inside ${ctx.nodePortRange[0]}-${ctx.nodePortRange[1]} (or remove nodePort and let the API server allocate one), or open ${info.nodePort}/${info.protocol} to the nodes; pass --node-port-range if the cluster uses another range`,
    })
  }

  if (!plan.hasEndpoints) {
    const probe = internalProbe(view, s)
    const mismatch = endpoints.length === 0 ? portMismatch(view.model, s) : undefined
    if (mismatch !== undefined && mismatch.ports.length > 0) {
      add({
        code: 'endpoint-port-mismatch',
        severity: 'error',
        nodes: [],
        what: 'every connection is rejected: the EndpointSlices have endpoints, but not for this port',
        why: `the Service port is named ${portName} (${info.protocol}); its ${mismatch.slices} EndpointSlice(s) list the ports ${mismatch.ports.join(', ')}. kube-proxy matches endpoint ports by name and protocol`,
        fix: 'give spec.ports[].name the name the EndpointSlices use (for a Service with a selector, the port names come from the Service itself: check targetPort names against the pods\' container ports); for hand-written EndpointSlices, name their ports like the Service\'s',
        probe,
        details: { slicePorts: mismatch.ports },
      })
    } else {
      const why =
        endpoints.length === 0
          ? mismatch?.slices === 0
            ? `no EndpointSlice is labelled kubernetes.io/service-name=${info.serviceName} in ${info.namespace}: the selector matches no pod, or the Service has no selector and nobody wrote its EndpointSlices`
            : 'its EndpointSlices list no endpoints: the selector matches no running pod'
          : `${endpoints.length} endpoint(s) listed, none ready and none serving while terminating: ${describeEndpointStates(endpoints)}`
      add({
        code: 'no-endpoints',
        severity: 'error',
        nodes: [],
        what: 'every connection is rejected (ICMP port unreachable / connection refused): no endpoints',
        why,
        fix:
          endpoints.length === 0
            ? 'check spec.selector against the pods\' labels (kubectl get pods -l ...), and that the pods are running'
            : 'find why the pods fail their readiness probe (kubectl describe pod; kubectl get events)',
        probe,
        details: { endpoints: endpoints.map((e) => ({ endpoint: e.endpoint, ready: e.ready, serving: e.serving, terminating: e.terminating, node: e.nodeName })) },
      })
    }
    return out
  }

  // internalTrafficPolicy Local: pods on this node reach only endpoints on this node.
  if (info.internalPolicyLocal && categorized.local.length === 0) {
    add({
      code: 'no-local-endpoints-internal',
      severity: 'error',
      what: 'connections from pods on this node to the cluster IP are dropped',
      why: `internalTrafficPolicy: Local sends traffic from a node only to endpoints on that node, and this node runs none of the ${ready.length} ready endpoint(s) (they run on ${where(ready)})`,
      fix: 'run an endpoint on every node with clients (a DaemonSet), or set internalTrafficPolicy: Cluster',
      probe: internalProbe(view, s),
    })
  }

  const external = externalFrontends(s)
  if (info.externalPolicyLocal && external.length > 0) {
    if (categorized.local.length === 0) {
      const anyNodeHasLocal = ctx.clusterNodes.some((n) => ready.some((e) => e.nodeName === n.name))
      const lb = info.healthCheckNodePort !== 0
      // A load balancer asks healthCheckNodePort and skips nodes without endpoints: only report
      // that when asked about this node or this Service, or when no node can take the traffic.
      if (!lb || !anyNodeHasLocal || ctx.oneNode || focused || ctx.client !== undefined) {
        const f = external.find((x) => x.kind === 'nodePort') ?? external[0]
        add({
          code: 'no-local-endpoints-external',
          severity: 'error',
          what: `external connections arriving at this node are dropped (${f.kind === 'nodePort' ? `NodePort ${info.nodePort}` : `${f.kind} ${f.address}`})`,
          why:
            `externalTrafficPolicy: Local forwards external traffic only to endpoints on the node it arrives at, and this node runs none of the ${ready.length} ready endpoint(s) (they run on ${where(ready)})` +
            (lb ? `; its health check (healthCheckNodePort ${info.healthCheckNodePort}) answers 503 here, so a load balancer that checks it sends nothing to this node` : ''),
          fix:
            'send external traffic only to nodes that run an endpoint (a cloud load balancer does, through the health check; NodePort clients must pick such a node), spread the pods over every node (a DaemonSet), or set externalTrafficPolicy: Cluster (the client address is then masqueraded)',
          probe: view.probe(nodeName, packet(externalSource(ctx, info.family), f)),
        })
      }
    } else if (categorized.local.length === 1 && ready.length > 1) {
      const f = external.find((x) => x.kind === 'nodePort') ?? external[0]
      add({
        code: 'local-policy-single-endpoint',
        severity: 'info',
        what: `external traffic arriving at this node goes to one pod only: ${categorized.local[0].endpoint}`,
        why: `externalTrafficPolicy: Local keeps external traffic on the node it arrives at; this node runs 1 of the ${ready.length} ready endpoints, so whatever a load balancer sends to it lands on that pod, however many run elsewhere`,
        fix: 'spread the pods evenly over the nodes (topologySpreadConstraints, or a DaemonSet), use a load balancer that weighs nodes by their endpoint count, or set externalTrafficPolicy: Cluster',
        probe: view.probe(nodeName, packet(externalSource(ctx, info.family), f)),
      })
    }
  }

  // Source ranges (scenario 1): the client asked about is outside them.
  if (ctx.client !== undefined && plan.usesFirewall && ctx.client.includes(':') === (info.family === 'IPv6') && !sourceAllowed(plan.firewallAllows, ctx.client)) {
    const f = s.frontends.find((x) => x.kind === 'loadBalancer')!
    add({
      code: 'source-range',
      severity: 'error',
      nodes: [],
      what: `connections from ${ctx.client} to the load-balancer IP ${f.address} are dropped`,
      why: `spec.loadBalancerSourceRanges (${info.loadBalancerSourceRanges.join(', ')}) does not contain ${ctx.client}; kube-proxy drops other sources in the service's firewall chain (KUBE-FW-*), and so does a cloud load balancer that applies the ranges itself`,
      fix: `add ${ctx.client}${info.family === 'IPv6' ? '/128' : '/32'} (or its network) to spec.loadBalancerSourceRanges; if the client is in a range already, the load balancer does not preserve its address (check what source address reaches the node)`,
      probe: view.probe(nodeName, packet(ctx.client, f)),
    })
  }

  // Traffic reaches only one pod (scenario 4).
  if (ready.length === 1 && endpoints.length > 1) {
    add({
      code: 'one-ready-endpoint',
      severity: 'warning',
      nodes: [],
      what: `all new connections go to ${ready[0].endpoint}: it is the only ready endpoint of ${endpoints.length}`,
      why: `the others are not ready: ${describeEndpointStates(endpoints.filter((e) => !e.ready))}`,
      fix: 'find why the other pods fail their readiness probe (kubectl describe pod; kubectl get events); a rollout in progress passes by itself',
      probe: internalProbe(view, s),
      details: { ready: ready[0].endpoint, notReady: endpoints.filter((e) => !e.ready).map((e) => e.endpoint) },
    })
  }

  if (categorized.usedTopology && categorized.cluster.length < ready.length) {
    const single = categorized.cluster.length === 1
    if (single || focused) {
      add({
        code: 'topology-single-zone',
        severity: single ? 'warning' : 'info',
        what: `connections from ${nodeName} (zone ${view.model.node.zone}) go only to the ${categorized.cluster.length} endpoint(s) hinted for that zone: ${list(categorized.cluster)}`,
        why: `every ready endpoint carries a topology hint (topology-aware routing: the annotation service.kubernetes.io/topology-mode: Auto, or spec.trafficDistribution: PreferClose) and ${categorized.cluster.length} of them name zone ${view.model.node.zone}; the other ${ready.length - categorized.cluster.length} ready endpoint(s) get nothing from this node`,
        fix: 'run replicas in proportion to each zone\'s clients, or turn the hints off (remove the topology-mode annotation / trafficDistribution) so every node uses every ready endpoint',
        probe: internalProbe(view, s),
      })
    }
  }

  if (info.affinityTimeoutSeconds > 0 && Math.max(categorized.cluster.length, categorized.local.length) > 1 && focused) {
    const first = internalProbe(view, s)
    const second = first === undefined ? undefined : internalProbe(view, s, first.packet.src)
    add({
      code: 'affinity-pinning',
      severity: 'info',
      what: `each client address sticks to one endpoint for ${info.affinityTimeoutSeconds} s (sessionAffinity: ClientIP)`,
      why:
        'with ClientIP affinity, every new connection from a client address goes to the endpoint its first connection chose, until the client is idle for timeoutSeconds; clients behind one address (a NAT gateway, an ingress controller, a proxy, masqueraded node traffic) all land on one pod' +
        (second !== undefined && second.result.action === 'dnat' ? ` (two connections from ${first!.packet.src} both went to ${second.result.endpoint})` : ''),
      fix: 'sessionAffinity: None unless the application needs stickiness; otherwise a shorter sessionAffinityConfig.clientIP.timeoutSeconds, or stickiness in the application layer (cookies)',
      probe: second ?? first,
    })
  }

  const terminating = endpoints.filter((e) => e.terminating)
  if (terminating.length > 0 && focused) {
    add({
      code: 'stale-endpoints',
      severity: 'info',
      nodes: [],
      what: `the EndpointSlices still list ${terminating.length} terminating endpoint(s): ${list(terminating)}`,
      why: 'terminating pods stay listed until they exit; they take no new connections while ready endpoints exist, but connections opened before keep going to them until they close',
      fix: 'nothing, if they go away within terminationGracePeriodSeconds; long-lived connections to them can be cleared (svcplane doctor --clear-stale, or conntrack -D)',
    })
  }

  if (ctx.pods !== undefined && ctx.pods.length > 0) {
    const pods = ctx.pods.filter((p) => p.namespace === info.namespace)
    const byIP = new Map<string, PodRef>()
    for (const p of pods) for (const ip of p.podIPs) byIP.set(ip, p)
    const gone = endpoints.filter((e) => !byIP.has(e.ip))
    const deleting = endpoints.filter((e) => e.ready && byIP.get(e.ip)?.deleting === true)
    if (gone.length > 0 || deleting.length > 0) {
      add({
        code: 'stale-endpoints',
        severity: 'warning',
        nodes: [],
        what:
          gone.length > 0
            ? `the EndpointSlices list ${gone.length} endpoint(s) with no pod behind them: ${list(gone)}`
            : `the EndpointSlices list ${deleting.length} deleted pod(s) as ready: ${list(deleting)}`,
        why:
          'the EndpointSlice controller has not caught up with the pods (it lags, is failing, or the slices are managed by hand / by another controller), so new connections are still balanced to pods that are gone' +
          (deleting.length > 0 && gone.length > 0 ? `; ${deleting.length} more are deleted pods still marked ready` : ''),
        fix: 'check the EndpointSlice controller (kube-controller-manager logs, the slices\' endpointslice.kubernetes.io/managed-by label); delete a hand-written slice that lists old pods',
        probe: internalProbe(view, s),
        details: { withoutPod: gone.map((e) => e.endpoint), deletedButReady: deleting.map((e) => e.endpoint) },
      })
    }
  }
  return out
}

/**
 * --dst (scenario 6): what a client connecting to that address and port gets on this node,
 * and why when it is not a service.
 */
export function checkTarget(view: NodeView, ctx: CheckContext, t: Target): Finding[] {
  const out: Finding[] = []
  const model = view.model
  const family: IPFamily = t.address.includes(':') ? 'IPv6' : 'IPv4'
  const loopback = t.address === '::1' || /^127\./.test(t.address)
  const fromNode = loopback
  const src = fromNode ? t.address : ctx.client ?? DEFAULT_EXTERNAL_CLIENT[family]
  const probe = { ...view.probe(view.node.name, { src, sport: 0, dst: t.address, dport: t.port, protocol: t.protocol, hook: fromNode ? 'output' : 'prerouting', now: 1000 }), asked: true }
  const r = probe.result
  const states = model.servicePorts().filter((s) => s.info.protocol === t.protocol)
  const withNodePort = states.filter((s) => s.info.nodePort === t.port)
  const base = (s: ServicePortState | undefined) => ({ servicePort: s?.info.name ?? '', service: s?.info.service ?? '', protocol: t.protocol, nodes: [view.node.name] })
  if (r.action === 'dnat') return out
  if (r.action === 'reject' || r.action === 'drop') {
    const s = model.servicePorts().find((x) => x.info.name === r.servicePort && x.info.protocol === t.protocol)
    // The ServicePort's own checks say why; the probe of the address the user gave is added there.
    if (s !== undefined) {
      const again = checkServicePort(view, s, { ...ctx, oneNode: true, client: ctx.client })
      for (const f of again) if (f.severity === 'error') out.push({ ...f, probe })
    }
    return out
  }
  // Nothing answers on that address and port.
  const isNodeAddress = view.model.node.ips.includes(t.address)
  if (loopback) {
    if (withNodePort.length > 0) {
      const s = withNodePort[0]
      out.push({
        ...base(s),
        code: 'localhost-node-ports-disabled',
        severity: 'error',
        what: `NodePort ${t.port} does not answer on ${t.address}`,
        why:
          family === 'IPv6'
            ? 'kube-proxy never opens NodePorts on ::1 (IPv6 has no route_localnet)'
            : 'localhost NodePorts are disabled (kube-proxy --iptables-localhost-nodeports=false; the ipvs and nftables modes never open them), so only the node\'s own addresses answer',
        fix: `connect to a node address instead (${view.model.node.ips.filter((ip) => ip.includes(':') === (family === 'IPv6')).map((ip) => joinHostPort(ip, t.port)).join(', ')})${family === 'IPv4' ? ', or enable localhost NodePorts (iptables mode: --iptables-localhost-nodeports=true, the default)' : ''}`,
        probe,
      })
    }
    return out
  }
  const owner = ctx.clusterNodes.find((n) => nodeAddresses(n).includes(t.address))
  if (!isNodeAddress && owner === undefined) {
    const frontendOwner = model.servicePorts().find((s) => s.frontends.some((f) => f.address === t.address))
    const known = ctx.clusterNodes.map((n) => `${n.name} ${nodeAddresses(n).join(' ')}`).join('; ')
    out.push({
      ...base(withNodePort[0]),
      code: 'wrong-node-address',
      severity: 'error',
      what: `nothing answers on ${joinHostPort(t.address, t.port)}: ${t.address} is not an address of any node${frontendOwner ? ` (it is an address of ${frontendOwner.info.name}, which has no port ${t.port}/${t.protocol})` : ''}`,
      why: `NodePorts answer only on the nodes' own addresses (${known || 'none known: the dump has no Nodes'})`,
      fix: withNodePort.length > 0
        ? `connect to a node address with NodePort ${t.port}, e.g. ${joinHostPort(ctx.clusterNodes.map((n) => nodeAddresses(n).find((ip) => ip.includes(':') === (family === 'IPv6'))).find((ip) => ip !== undefined) ?? nodeIP(view, family) ?? '', t.port)}; behind a NAT or a cloud, use the address that is translated to a node address`
        : 'connect to a node address and the NodePort of the Service (kubectl get service shows PORT:NODEPORT)',
      probe,
    })
    return out
  }
  if (withNodePort.length === 0) {
    const byPort = states.filter((s) => s.info.port === t.port)
    const hint = byPort.length > 0 ? byPort[0] : undefined
    let why: string
    let fix: string
    if (hint !== undefined && hint.info.nodePort !== 0) {
      why = `${t.port} is the service port of ${hint.info.name}; on node addresses it answers on its NodePort ${hint.info.nodePort}`
      fix = `connect to ${joinHostPort(t.address, hint.info.nodePort)}`
    } else if (hint !== undefined) {
      why = `${t.port} is the service port of ${hint.info.name}, which is type ${hint.info.type}${hint.info.type === 'LoadBalancer' ? ' without NodePorts (allocateLoadBalancerNodePorts: false)' : ''}: it has no NodePort`
      fix = hint.info.type === 'LoadBalancer' ? 'connect to its load-balancer IP, or set allocateLoadBalancerNodePorts: true' : 'make it type: NodePort (or LoadBalancer) and connect to the NodePort it gets'
    } else {
      why = `no Service has NodePort ${t.port}/${t.protocol}${t.port < ctx.nodePortRange[0] || t.port > ctx.nodePortRange[1] ? ` (and ${t.port} is outside the node-port range ${ctx.nodePortRange[0]}-${ctx.nodePortRange[1]})` : ''}`
      fix = 'kubectl get service -A shows each NodePort as PORT:NODEPORT/PROTOCOL; use that port'
    }
    out.push({
      ...base(hint),
      code: hint !== undefined && hint.info.nodePort === 0 && hint.info.type === 'LoadBalancer' ? 'no-node-port' : 'wrong-port',
      severity: 'error',
      what: `nothing answers on ${joinHostPort(t.address, t.port)}/${t.protocol}: no NodePort ${t.port}`,
      why,
      fix,
      probe,
    })
    return out
  }
  // A node address of another node, or an address kube-proxy does not open NodePorts on.
  const s = withNodePort[0]
  out.push({
    ...base(s),
    code: 'wrong-node-address',
    severity: 'error',
    what: `NodePort ${t.port} does not answer on ${t.address} on ${view.node.name}`,
    why: owner !== undefined && owner.name !== view.node.name
      ? `${t.address} is an address of ${owner.name}, not of ${view.node.name}`
      : `${t.address} is not among the addresses this node opens NodePorts on (${view.model.node.ips.join(', ')})`,
    fix: `connect to ${joinHostPort(nodeIP(view, family) ?? t.address, t.port)}`,
    probe,
  })
  return out
}

export function sortSeverity(a: Severity, b: Severity): number {
  return ({ error: 0, warning: 1, info: 2 } as const)[a] - ({ error: 0, warning: 1, info: 2 } as const)[b]
}

export type { FindingCode }
