// svcplane doctor: finds why Services do not route, from the cluster's objects or a running Proxier.
export { diagnose, diagnoseProxier, doctorObjects, loadNode, nodesToCheck, proxierOptionsFor, type DoctorObjects, type DoctorOptions, type DoctorReport, type LiveOptions } from './diagnose.js'
export { checkServicePort, checkTarget, DEFAULT_NODE_PORT_RANGE, type CheckContext, type NodeView, type Target } from './checks.js'
export { mergeFindings, type Finding, type FindingCode, type Probe, type Severity } from './findings.js'
export { parseNode, parsePod, splitNodesAndPods, nodeAddresses, ZONE_LABEL, type ClusterNode, type PodRef } from './nodes.js'
export { ownedProber, tracingProber, describeProbe, DEFAULT_EXTERNAL_CLIENT, type Prober } from './probe.js'
export {
  staleFlows,
  clearStaleFlows,
  trackedFlows,
  classifyFlow,
  conntrackDeleteCommands,
  parseConntrackList,
  type StaleFlow,
  type StaleWhy,
  type TrackedFlow,
  type ClearResult,
} from './stale.js'
export { measurePerf, type PerfReport, type PerfOptions, type ModePerf, type RuleCounts } from './perf.js'
export { formatReport, formatFinding, formatPerf } from './format.js'
export { checkNftRuleset, type NftRulesetReport } from './nft-ruleset.js'
