// svcplane/iptables: the iptables side in full — the iptables-save format, kube-proxy's iptables
// renderer and chain names, and the netfilter evaluator with its conntrack. The main entry point
// keeps only what a user of the iptables mode needs (parse, serialize, evaluate).
export { parseIptablesSave, type ParseOptions } from './save/parser.js'
export { serializeIptables, serializeRule, serializeRuleArgs } from './save/serialize.js'
export { IptablesParseError } from './save/errors.js'
export type * from './save/types.js'
export {
  IptablesEvaluator,
  type EvalPacket,
  type EvalResult,
  type EvaluatorOptions,
  type RuleRef,
  type RuleVisit,
  type RuleCounter,
  type ChainCounter,
} from './netfilter/evaluator.js'
export { Conntrack, flowKey, type CtFlow } from './netfilter/conntrack.js'
export { renderIptablesRestore, renderJumpRules, renderNodeRuleset, computeProbability, formatMasqueradeMark } from './kube-proxy/render.js'
export type { RenderServicePort, RenderEndpoint, RenderOptions } from './kube-proxy/render-types.js'
export { renderOptionsFor, renderServicePorts, type IptablesExtraOptions } from './kube-proxy/from-model.js'
export type { IptablesRestoreRequest } from './kube-proxy/restore-writer.js'
export {
  serviceClusterChainName,
  serviceLocalChainName,
  serviceExternalChainName,
  serviceFirewallChainName,
  endpointChainName,
} from './kube-proxy/chain-names.js'
