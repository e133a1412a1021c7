// What a proxy mode implements on top of the shared model, and the registry through which a
// mode living in another layer (lib/iptables) plugs in without lib/proxy importing it.
import type { ProxyModelView, ServiceDiff } from './model.js'
import type { ProxierOptions, ResolvedOptions } from './options.js'
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
  /** Called at the end of every sync(), once the model holds every change of that sync. */
  synced?(): void
}

/** `input` is the options object as given to the Proxier (mode-specific fields included). */
export type ProxyModeFactory = (model: ProxyModelView, options: ResolvedOptions, input: ProxierOptions) => ProxyModeImpl

const modes = new Map<string, ProxyModeFactory>()

export function registerProxyMode(name: 'native' | 'iptables', factory: ProxyModeFactory): void {
  modes.set(name, factory)
}

export function proxyModeFactory(name: string): ProxyModeFactory | undefined {
  return modes.get(name)
}

/** Renders kube-proxy's iptables-restore input from the model, in any proxy mode (lib/iptables). */
export interface IptablesRestoreWriter {
  /** One Service's changes, just committed to the model during a sync. */
  applied(diff: ServiceDiff): void
  /** The sync is over: its changes are what the partial text covers. */
  synced(): void
  render(request?: { partial?: boolean; ipFamily?: 'IPv4' | 'IPv6' } & Record<string, unknown>): string
}

export type IptablesRestoreWriterFactory = (model: ProxyModelView, options: ResolvedOptions, input: ProxierOptions) => IptablesRestoreWriter

let restoreWriterFactory: IptablesRestoreWriterFactory | undefined

export function registerIptablesRestoreWriter(factory: IptablesRestoreWriterFactory): void {
  restoreWriterFactory = factory
}

export function iptablesRestoreWriterFactory(): IptablesRestoreWriterFactory | undefined {
  return restoreWriterFactory
}
