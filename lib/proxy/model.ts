// The kube-proxy model as plain data: Services, the endpoint cache, and for every ServicePort
// its endpoints, categorized endpoint sets, traffic plan and frontends. Proxy modes (native
// dataplane, iptables rules) read it through ProxyModelView and render it their own way.
import type { IPFamily } from '../k8s/types.js'
import type { ValidService } from '../k8s/service.js'
import { categorizeEndpoints, type CategorizedEndpoints } from './categorize.js'
import { EndpointSliceCache, sameEndpoint, type EndpointInfo } from './endpoints.js'
import { frontendKey, frontendsOf, type Frontend } from './frontends.js'
import { LocalTrafficDetector, NodeAddresses } from './local-detector.js'
import type { NodeInfo, ResolvedOptions } from './options.js'
import { buildServicePorts, sameServicePort, type ServicePortInfo } from './serviceport.js'
import { planTraffic, type TrafficPlan } from './traffic-plan.js'

export interface ServicePortState {
  info: ServicePortInfo
  /** Every endpoint the slices list for this port, sorted by "IP:port". */
  endpoints: EndpointInfo[]
  categorized: CategorizedEndpoints
  plan: TrafficPlan
  frontends: Frontend[]
}

export interface ModelOptions {
  masqueradeBit: number
  masqueradeAll: boolean
  localhostNodePorts: boolean
  podCIDRs: string[]
}

/** Read-only access for renderers (the iptables mode, dumps, explain). */
export interface ProxyModelView {
  readonly node: NodeInfo
  readonly options: ModelOptions
  readonly detector: LocalTrafficDetector
  readonly nodeAddresses: NodeAddresses
  /** All ServicePorts, sorted by name, then protocol, then family. */
  servicePorts(): ServicePortState[]
  servicePort(key: string): ServicePortState | undefined
  /** ServicePorts of one Service ("ns/name"). */
  servicePortsOf(service: string): ServicePortState[]
  /** Which ServicePort answers on (address, port, protocol), in kube-proxy's rule order. */
  lookupFrontend(address: string, port: number, protocol: string): { state: ServicePortState; frontend: Frontend } | undefined
}

export interface EndpointChange {
  servicePort: string
  before: EndpointInfo | undefined
  after: EndpointInfo | undefined
}

/** What one Service's recomputation changes; applied with ProxyModel.commit. */
export interface ServiceDiff {
  service: string
  added: ServicePortState[]
  changed: { before: ServicePortState; after: ServicePortState }[]
  removed: ServicePortState[]
  endpoints: { added: number; changed: number; removed: number }
  endpointChanges: EndpointChange[]
}

export function isEmptyDiff(d: ServiceDiff): boolean {
  return d.added.length === 0 && d.changed.length === 0 && d.removed.length === 0
}

const FRONTEND_ORDER = { clusterIP: 0, externalIP: 1, loadBalancer: 2, nodePort: 3 }

function compareStates(a: ServicePortState, b: ServicePortState): number {
  const x = `${a.info.name}\u0000${a.info.protocol}\u0000${a.info.family}`
  const y = `${b.info.name}\u0000${b.info.protocol}\u0000${b.info.family}`
  return x < y ? -1 : x > y ? 1 : 0
}

function diffEndpoints(key: string, before: EndpointInfo[], after: EndpointInfo[], out: ServiceDiff): void {
  // A ServicePort added or removed (every one, on a full sync) needs no lookup map.
  if (before.length === 0 || after.length === 0) {
    const added = after.length > 0
    for (const e of added ? after : before) {
      out.endpointChanges.push(added ? { servicePort: key, before: undefined, after: e } : { servicePort: key, before: e, after: undefined })
    }
    if (added) out.endpoints.added += after.length
    else out.endpoints.removed += before.length
    return
  }
  const old = new Map(before.map((e) => [e.endpoint, e]))
  for (const e of after) {
    const prev = old.get(e.endpoint)
    if (prev === undefined) {
      out.endpoints.added++
      out.endpointChanges.push({ servicePort: key, before: undefined, after: e })
    } else {
      old.delete(e.endpoint)
      if (!sameEndpoint(prev, e)) {
        out.endpoints.changed++
        out.endpointChanges.push({ servicePort: key, before: prev, after: e })
      }
    }
  }
  for (const e of old.values()) {
    out.endpoints.removed++
    out.endpointChanges.push({ servicePort: key, before: e, after: undefined })
  }
}

export class ProxyModel implements ProxyModelView {
  readonly node: NodeInfo
  readonly options: ModelOptions
  readonly detector: LocalTrafficDetector
  readonly nodeAddresses: NodeAddresses
  readonly slices: EndpointSliceCache
  /** Validated Services by "ns/name" (the desired state, possibly not yet committed). */
  readonly services = new Map<string, ValidService>()
  private readonly states = new Map<string, ServicePortState>()
  private readonly keysByService = new Map<string, string[]>()
  private readonly frontendIndex = new Map<string, { state: ServicePortState; frontend: Frontend }[]>()
  /** The node's first address of each family (the node is fixed for the model's life). */
  private readonly primaryNodeIPs: Record<IPFamily, string | undefined>

  constructor(opts: ResolvedOptions) {
    this.node = opts.node
    this.options = {
      masqueradeBit: opts.masqueradeBit,
      masqueradeAll: opts.masqueradeAll,
      localhostNodePorts: opts.localhostNodePorts,
      podCIDRs: opts.podCIDRs,
    }
    this.detector = new LocalTrafficDetector(opts.podCIDRs)
    this.nodeAddresses = new NodeAddresses(opts.node.ips)
    this.slices = new EndpointSliceCache(opts.node.name)
    const first = (v6: boolean) => opts.node.ips.find((ip) => ip.includes(':') === v6)
    this.primaryNodeIPs = { IPv4: first(false), IPv6: first(true) }
  }

  servicePorts(): ServicePortState[] {
    return [...this.states.values()].sort(compareStates)
  }

  servicePort(key: string): ServicePortState | undefined {
    return this.states.get(key)
  }

  servicePortsOf(service: string): ServicePortState[] {
    return (this.keysByService.get(service) ?? []).map((k) => this.states.get(k)!)
  }

  lookupFrontend(address: string, port: number, protocol: string) {
    return this.frontendIndex.get(frontendKey(address, port, protocol))?.[0]
  }

  private primaryNodeIP(family: IPFamily): string | undefined {
    return family === 'IPv6' ? this.primaryNodeIPs.IPv6 : this.primaryNodeIPs.IPv4
  }

  /** The state a ServicePort should have now, from the stored Service and slices. */
  private buildState(info: ServicePortInfo): ServicePortState {
    const endpoints = this.slices.endpointsFor(info.service, info.portName, info.protocol, info.family)
    const categorized = categorizeEndpoints(endpoints, info, this.node.zone)
    return {
      info,
      endpoints,
      categorized,
      plan: planTraffic(info, categorized, this.primaryNodeIP(info.family)),
      frontends: frontendsOf(info, this.node.ips, this.options.localhostNodePorts),
    }
  }

  /** Every ServicePort state `svc` should have now, family by family (arrays sized once: a full sync builds one per Service). */
  private buildStates(svc: ValidService): ServicePortState[] {
    let out: ServicePortState[] | undefined
    for (const family of this.node.families) {
      const infos = buildServicePorts(svc, family)
      if (infos.length === 0) continue
      const states = new Array<ServicePortState>(infos.length)
      for (let i = 0; i < infos.length; i++) states[i] = this.buildState(infos[i])
      out = out === undefined ? states : out.concat(states)
    }
    return out ?? []
  }

  /** Recomputes one Service (cost: its own ports and slices only) against what is committed. */
  diffService(service: string): ServiceDiff {
    const svc = this.services.get(service)
    const committed = this.keysByService.get(service)
    const next = svc === undefined ? [] : this.buildStates(svc)
    if (committed === undefined) {
      // A Service new to the model (every one, on a full sync): all its ports are added.
      let added = 0
      for (const after of next) added += after.endpoints.length
      // Sized once (a pushed-to empty array grows to 17 slots): a full sync builds one per Service.
      const changes = new Array<EndpointChange>(added)
      let n = 0
      for (const after of next) for (const e of after.endpoints) changes[n++] = { servicePort: after.info.key, before: undefined, after: e }
      return { service, added: next, changed: [], removed: [], endpoints: { added, changed: 0, removed: 0 }, endpointChanges: changes }
    }
    const out: ServiceDiff = { service, added: [], changed: [], removed: [], endpoints: { added: 0, changed: 0, removed: 0 }, endpointChanges: [] }
    const byKey = new Map(next.map((s) => [s.info.key, s]))
    for (const key of committed) {
      const before = this.states.get(key)!
      const after = byKey.get(key)
      if (after === undefined) {
        out.removed.push(before)
        diffEndpoints(key, before.endpoints, [], out)
        continue
      }
      byKey.delete(key)
      const endpointsBefore = out.endpointChanges.length
      diffEndpoints(key, before.endpoints, after.endpoints, out)
      if (!sameServicePort(before.info, after.info) || out.endpointChanges.length !== endpointsBefore) {
        out.changed.push({ before, after })
      }
    }
    for (const [key, after] of byKey) {
      out.added.push(after)
      diffEndpoints(key, [], after.endpoints, out)
    }
    return out
  }

  commit(diff: ServiceDiff): void {
    for (const s of diff.removed) this.states.delete(s.info.key)
    for (const { after } of diff.changed) this.states.set(after.info.key, after)
    for (const s of diff.added) this.states.set(s.info.key, s)
    // Only ports committed before have index entries to drop (added ones have none yet).
    for (const s of diff.removed) this.unindexFrontends(s)
    for (const { before, after } of diff.changed) {
      this.unindexFrontends(before)
      this.unindexFrontends(after)
    }
    for (const { after } of diff.changed) this.indexFrontends(after)
    for (const s of diff.added) this.indexFrontends(s)
    const committed = this.keysByService.get(diff.service)
    if (committed === undefined || (diff.removed.length === 0 && diff.added.length === 0)) {
      if (committed === undefined && diff.added.length > 0) this.keysByService.set(diff.service, diff.added.map((s) => s.info.key))
      return
    }
    const keys = new Set(committed)
    for (const s of diff.removed) keys.delete(s.info.key)
    for (const s of diff.added) keys.add(s.info.key)
    if (keys.size === 0) this.keysByService.delete(diff.service)
    else this.keysByService.set(diff.service, [...keys])
  }

  private unindexFrontends(s: ServicePortState): void {
    for (const f of s.frontends) {
      const k = frontendKey(f.address, f.port, f.protocol)
      const list = this.frontendIndex.get(k)
      if (list === undefined) continue
      const kept = list.filter((e) => e.state.info.key !== s.info.key)
      if (kept.length === 0) this.frontendIndex.delete(k)
      else if (kept.length !== list.length) this.frontendIndex.set(k, kept)
    }
  }

  private indexFrontends(s: ServicePortState): void {
    for (const frontend of s.frontends) {
      const k = frontendKey(frontend.address, frontend.port, frontend.protocol)
      const list = this.frontendIndex.get(k)
      if (list === undefined) {
        this.frontendIndex.set(k, [{ state: s, frontend }])
        continue
      }
      list.push({ state: s, frontend })
      list.sort((a, b) => FRONTEND_ORDER[a.frontend.kind] - FRONTEND_ORDER[b.frontend.kind] || compareStates(a.state, b.state))
    }
  }
}
