// What a proxy mode implements on top of the shared model. lib/proxy never imports a mode:
// the composition root (lib/modes) builds the mode and hands it to the Proxier, as kube-proxy's
// createProxier does for pkg/proxy.
import type { ProxyModelView, ServiceDiff } from './model.js'
import type { CheckedPacket, RouteResult } from './packet.js'
import type { KubeProxyTrace, SourceClass, Step } from './trace.js'

export interface ModeDecision {
  result: RouteResult
  /** Mode-specific steps (conntrack, affinity, endpoint chosen), after the trace's. */
  steps: Step[]
}

export type ApplyOutcome = { flowsRemoved: number; error?: undefined } | { error: Error }

/** A proxy mode: programs the model's changes and decides packets. `View` is what inspect() shows. */
export interface ProxyModeImpl<View = unknown> {
  /** Programs one Service's changes entirely, or throws leaving the previous programming in place. */
  apply(diff: ServiceDiff): { flowsRemoved: number }
  /**
   * Programs many Services' changes (the diffs of one sync, in order, none committed yet):
   * what apply() would do for each in turn, possibly at once; each outcome is that Service's
   * result or error (an error leaves that Service's previous programming in place). Undefined
   * when nothing was applied: the Proxier then calls apply() for each diff.
   */
  applyAll?(diffs: readonly ServiceDiff[]): ApplyOutcome[] | undefined
  /** Decides a packet; `trace` is kube-proxy's decision from the model for its first packet. */
  route(packet: CheckedPacket, source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision
  /** Called at the end of every sync(), once the model holds every change of that sync. */
  synced?(): void
  /** The mode's own state (maps, rulesets, counters), typed per mode. */
  inspect(): View
}

/** Observes syncs: told of every Service change committed to the model, then of the sync's end. */
export interface SyncListener {
  applied(diff: ServiceDiff): void
  synced(): void
}

/** Builds a mode over the model (called once, by the Proxier's constructor). */
export type ProxyModeFactory<View = unknown> = (model: ProxyModelView) => ProxyModeImpl<View>
