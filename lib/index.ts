// Public entry point of svcplane: the API users rely on. The layers underneath have subpath
// entry points of their own: 'svcplane/model' (kube-proxy's semantics: service ports, endpoint
// categorisation, traffic plans, the trace, the mode interface), 'svcplane/iptables' (the
// iptables-save format, kube-proxy's renderer and chain names, the netfilter evaluator) and
// 'svcplane/k8s' (Service and EndpointSlice validation).
export { Dataplane, DEFAULT_CAPACITY, DEFAULT_TIMEOUTS, INITIAL_CAPACITY, MAX_CAPACITY } from './dataplane/dataplane.js'
export { setNativeBinding } from './dataplane/native.js'
export { SvcplaneError, SvcplaneTypeError, SvcplaneRangeError, errorCode, ERROR_CODES, type ErrorCode } from './errors.js'
export type { DataplaneCounters, FlowEntry } from './dataplane/dataplane.js'
export type { FlowImport } from './dataplane/flow-handoff.js'
export { FlowBatch, DecisionBatch, TCP_FLAGS } from './dataplane/wire.js'
export { DECISION_V4, ipv4ToUint32, uint32ToIpv4 } from './dataplane/decide-v4.js'
export { parseCidr, canonicalAddress, formatAddress, addressFamily } from './util/address.js'
export { joinHostPort, splitHostPort, type HostPort } from './util/host-port.js'
export type * from './dataplane/types.js'

// The kube-proxy model: Services and EndpointSlices in, kube-proxy's decisions out.
export { Proxier, PROXY_MODE_NAMES, isProxyMode } from './modes/index.js'
export type { IpvsView, IpvsState, IpvsModeOptions } from './modes/index.js'
export type { UserspaceView, UserspaceServicePort, UserspaceModeOptions, PortalRule } from './modes/index.js'
export { IPVS_SCHEDULERS, type IpvsScheduler, type VirtualServer, type RealServer } from './ipvs/types.js'
export type { ProxierOptions, ProxyMode, ModeView, ModeSections, NativeView, NativeModeOptions, IptablesView, IptablesModeOptions, NftablesView, NftablesModeOptions } from './modes/index.js'
export type {
  CommonProxierOptions,
  Packet,
  Hook,
  RouteResult,
  RouteReason,
  Explanation,
  HealthCheck,
  SyncSummary,
  ChangeCounts,
  ApplyListResult,
  ProxyModelView,
  ServicePortState,
  ServicePortInfo,
  EndpointInfo,
  Frontend,
  FrontendKind,
  Step,
  NodeInfo,
} from './proxy/index.js'
export {
  parseService,
  parseEndpointSlice,
  parseObjects,
  splitObjects,
  objectKey,
  SERVICE_NAME_LABEL,
  DEFAULT_AFFINITY_TIMEOUT_SECONDS,
  mirrorEndpoints,
  notProxiedReason,
  requireKubernetesObjects,
  SERVICE_PROXY_NAME_LABEL,
  HEADLESS_LABEL,
  SKIP_MIRROR_LABEL,
} from './k8s/index.js'
export type { Service, EndpointSlice, List, ValidService, ValidEndpointSlice, LoadNotice, SplitObjects, ParsedObjects, MirroredEndpoints } from './k8s/index.js'

// iptables: a parser for iptables-save and a linear evaluator (the rest: 'svcplane/iptables').
export { parseIptablesSave, type ParseOptions } from './iptables/save/parser.js'
export { serializeIptables, serializeRule, serializeRuleArgs } from './iptables/save/serialize.js'
export { IptablesParseError } from './iptables/save/errors.js'
export type * from './iptables/save/types.js'
export {
  IptablesEvaluator,
  type EvalPacket,
  type EvalResult,
  type EvaluatorOptions,
  type RuleRef,
  type RuleVisit,
  type RuleCounter,
  type ChainCounter,
} from './iptables/netfilter/evaluator.js'
export { seededRandom, type RandomSource } from './util/random.js'

// kube-proxy's --config file: a KubeProxyConfiguration read into Proxier options and run settings.
export { loadKubeProxyConfiguration, kubeProxyConfigurationOptions, nodePortAddressList, KUBE_PROXY_CONFIG_API_VERSION } from './config/index.js'
export type { KubeProxyConfigurationOptions, KubeProxyConfigurationReadOptions, KubeProxyRunSettings } from './config/index.js'

// nftables: a parser for `nft -f` input and `nft list ruleset` output, and an evaluator that
// runs packets through the hooks as netfilter does (sets and verdict maps hashed).
export { parseNftRuleset, applyNftCommands, emptyRuleset as emptyNftRuleset } from './nftables/nft/apply.js'
export { parseNftCommands } from './nftables/nft/parser.js'
export { serializeNftCommands, serializeNftRuleset, ruleText as nftRuleText } from './nftables/nft/serialize.js'
export { canonicalNftRuleset } from './nftables/nft/canonical.js'
export { findUnknownNft, type NftUnknownItem } from './nftables/nft/unknown.js'
export { NftParseError } from './nftables/nft/errors.js'
export { NftEvaluator, NftEvalError } from './nftables/nft/evaluator.js'
export type { NftPacket, NftPacketHook, NftCtState, NftEvalResult, NftEvaluatorOptions, NftRuleRef, NftTraceEntry, NftCounter } from './nftables/nft/evaluator.js'
export { formatNftTrace } from './nftables/nft/trace.js'
export type * from './nftables/nft/types.js'

// The packet path: raw IPv4/IPv6 frames parsed and rewritten in batches; pcap in and out.
export {
  PacketReplies,
  PACKET_VERDICT,
  PACKET_VERDICTS,
  PACKET_REASONS,
  MASQUERADE_POLICIES,
  PACKET_COUNT_NAMES,
} from './dataplane/packets.js'
export type {
  PacketDirection,
  LinkType,
  MasqueradePolicy,
  RejectWith,
  PacketReason,
  ProcessOptions,
  PacketConfig,
  ResolvedPacketConfig,
  PacketCounters,
  PacketCountName,
} from './dataplane/packets.js'
export { runPcap, PcapFileError, readCapture, PcapWriter, CaptureError, LINKTYPE_ETHERNET, LINKTYPE_RAW } from './pcap/index.js'
export type { RunPcapOptions, PcapSummary, PcapProxier, Capture, CaptureLink } from './pcap/index.js'
export type { IptablesRestoreRequest } from './iptables/kube-proxy/restore-writer.js'

// Watching a live cluster, and kube-proxy's metrics and health endpoints.
export {
  ClusterWatcher,
  ProxierSyncLoop,
  SyncRunner,
  Backoff,
  loadKubeConfig,
  KubeConfigError,
  describeApiError,
  KUBE_PROXY_LABEL_SELECTOR,
  TRIGGER_TIME_ANNOTATION,
} from './watch/index.js'
export type {
  WatchHandlers,
  WatcherOptions,
  ResourceStats,
  ObjectEvent,
  SyncHooks,
  SyncInfo,
  SyncLoopOptions,
  SyncRunnerOptions,
  SyncTrigger,
  LoadedKubeConfig,
} from './watch/index.js'
export {
  ProxyMetrics,
  ProxierHealth,
  ServiceHealthServers,
  serviceHealthBody,
  startMetricsServer,
  startHealthzServer,
  parseBindAddress,
  NETWORK_PROGRAMMING_BUCKETS,
} from './metrics/index.js'
export type { ProxyMetricsOptions, RunningServer, ServiceHealthOptions, BindAddress } from './metrics/index.js'

// A userspace TCP/UDP service proxy on the Proxier.
export { ServiceProxy, runProxyFromFile, emptyCounters } from './service-proxy/index.js'
export type {
  ServiceProxyOptions,
  ListenerSpec,
  ListenerInfo,
  ProxySyncResult,
  RunProxyOptions,
  RunningProxy,
  ReloadResult,
  ServiceCounters,
} from './service-proxy/index.js'

// Two proxy modes on one cluster: every probe they decide differently.
export { compareModes, formatComparison, probesFor, PROBE_CLASSES } from './compare/index.js'
export type { CompareOptions, ModeComparison, ModeDifference, ModeAnswer, Probe, ProbeClass } from './compare/index.js'

// svcplane doctor: findings per Service from the model, stale flows, performance at this size.
export {
  diagnose,
  doctorObjects,
  diagnoseProxier,
  staleFlows,
  clearStaleFlows,
  parseConntrackList,
  conntrackDeleteCommands,
  measurePerf,
  formatReport,
  formatPerf,
  parseNode,
  splitNodesAndPods,
  checkNftRuleset,
} from './doctor/index.js'
export type {
  Finding,
  FindingCode,
  Severity,
  DoctorObjects,
  DoctorOptions,
  DoctorReport,
  StaleFlow,
  TrackedFlow,
  PerfReport,
  ClusterNode,
  NftRulesetReport,
} from './doctor/index.js'
