// svcplane explain --nft-ruleset FILE: one packet through a node's `nft list ruleset` (or an
// `nft -f` file), walked by the nft evaluator hook by hook, with the rules it visited as
// `nft monitor trace` prints them. No cluster dump needed: the ruleset is the state.
import { NftEvaluator, type NftEvalResult } from '../../nftables/nft/evaluator.js'
import { formatNftTrace } from '../../nftables/nft/trace.js'
import type { Packet } from '../../proxy/packet.js'
import { readInputText } from '../cluster-file.js'
import { CliError } from '../errors.js'
import { describePacket } from '../format/explain.js'
import type { CliIO } from '../io.js'

export interface NftRulesetExplainInput {
  file: string
  packet: Packet
  /** the node's addresses (`fib daddr type local`, the routing decision); loopback is always local */
  nodeIPs: string[]
  seed?: number
  maxBytes?: number
  json: boolean
}

function decisionText(r: NftEvalResult): string {
  const sp = r.servicePort !== undefined ? ` (${r.servicePort})` : ''
  switch (r.action) {
    case 'dnat': return `DNAT to ${r.endpoint}${sp}, ${r.masquerade ? 'masqueraded' : 'not masqueraded'}`
    case 'accept': return `ACCEPT, not NATed${r.masquerade ? ', masqueraded' : ''}: not service traffic for this ruleset`
    default: return `${r.action.toUpperCase()}${sp}${r.reason !== undefined ? `: ${r.reason}` : ''}`
  }
}

export async function explainNftRuleset(input: NftRulesetExplainInput, io: CliIO): Promise<number> {
  const text = await readInputText(input.file, io, 'nft ruleset', { maxBytes: input.maxBytes })
  let ev: NftEvaluator
  try {
    ev = new NftEvaluator(text, { localAddresses: input.nodeIPs, seed: input.seed })
  } catch (err) {
    throw new CliError(`nft ruleset ${input.file}: ${(err as Error).message}`, { cause: err })
  }
  const p = input.packet
  let r: NftEvalResult
  try {
    r = ev.evaluate({ src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, hook: p.hook ?? 'prerouting', now: p.now })
  } catch (err) {
    throw new CliError(`cannot explain ${describePacket(p)}`, { cause: err })
  }
  const trace = formatNftTrace(r.visited, { handles: true })
  const unsupported = r.unsupported.map((u) => `line ${u.line}: ${u.table} ${u.chain} rule ${u.index + 1}`)
  if (input.json) {
    const { visited: _visited, unsupported: _unsupported, ...result } = r
    io.stdout.write(JSON.stringify({ packet: { ...p, hook: p.hook ?? 'prerouting' }, ruleset: input.file, nodeIPs: input.nodeIPs, result, trace, unsupported }, null, 2) + '\n')
    return 0
  }
  const lines = [
    describePacket(p),
    `through the nft ruleset ${input.file}, node addresses ${input.nodeIPs.length > 0 ? input.nodeIPs.join(', ') : 'none given (only loopback is local; --node-ip)'}`,
    '',
    `${decisionText(r)}; the packet is ${r.path === 'output' ? 'sent from the node' : r.path === 'input' ? 'delivered to the node' : 'forwarded'}`,
    'rules visited (as `nft monitor trace` prints them):',
    ...trace.map((l) => `  ${l}`),
  ]
  if (unsupported.length > 0) lines.push('rules with statements the evaluator does not interpret (they did not match):', ...unsupported.map((l) => `  ${l}`))
  io.stdout.write(lines.join('\n') + '\n')
  return 0
}
