// What a proxy mode implements on top of the shared model, and the registry through which a
// mode living in another layer (lib/iptables) plugs in without lib/proxy importing it.
import type { ProxyModelView, ServiceDiff } from './model.js'
import type { ResolvedOptions } from './options.js'
import type { CheckedPacket, RouteResult } from './packet.js'
import type { KubeProxyTrace, SourceClass, Step } from './trace.js'

export interface ModeDecision {
  result: RouteResult
  /** Mode-specific steps (conntrack, affinity, endpoint chosen), after the trace's. */
  steps: Step[]
}

export interface ProxyModeImpl {
  /** Programs one Service's changes entirely, or throws leaving the previous programming in place. */
  apply(diff: ServiceDiff): { flowsRemoved: number }
  /** Decides a packet; `trace` is kube-proxy's decision from the model for its first packet. */
  route(packet: CheckedPacket, source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision
}

export type ProxyModeFactory = (model: ProxyModelView, options: ResolvedOptions) => ProxyModeImpl

const modes = new Map<string, ProxyModeFactory>()

export function registerProxyMode(name: 'native' | 'iptables', factory: ProxyModeFactory): void {
  modes.set(name, factory)
}

export function proxyModeFactory(name: string): ProxyModeFactory | undefined {
  return modes.get(name)
}
