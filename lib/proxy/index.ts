export { Proxier, type SyncSummary, type ChangeCounts, type ApplyListResult } from './proxier.js'
export type { ProxierOptions, ProxyMode, NodeInfo, ResolvedOptions } from './options.js'
export type { Packet, Hook, RouteResult, RouteReason } from './packet.js'
export type { Explanation } from './explain.js'
export type { HealthCheck } from './health.js'
export type { ProxyModelView, ServicePortState, ModelOptions, ServiceDiff } from './model.js'
export { buildServicePorts, externallyAccessible, usesClusterEndpoints, usesLocalEndpoints, type ServicePortInfo } from './serviceport.js'
export { EndpointSliceCache, joinHostPort, type EndpointInfo } from './endpoints.js'
export { categorizeEndpoints, canUseTopology, type CategorizedEndpoints } from './categorize.js'
export { planTraffic, type TrafficPlan, type EndpointSetName } from './traffic-plan.js'
export { frontendsOf, type Frontend, type FrontendKind } from './frontends.js'
export { LocalTrafficDetector } from './local-detector.js'
export { traceKubeProxy, classifySource, type KubeProxyTrace, type Step, type SourceClass } from './trace.js'
export {
  registerProxyMode,
  registerIptablesRestoreWriter,
  type ProxyModeImpl,
  type ProxyModeFactory,
  type ModeDecision,
  type IptablesRestoreWriter,
  type IptablesRestoreWriterFactory,
} from './proxy-mode.js'
export { desiredDataplaneServices } from './native-backend.js'
