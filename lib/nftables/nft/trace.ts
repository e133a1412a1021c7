// The walk of one packet as `nft monitor trace` prints it: one line per rule that matched,
// with the verdict it issued, and the policy of each base chain the packet fell off.

import type { NftTraceEntry } from './evaluator.js'
import { ruleText } from './serialize.js'

/** handles: end each rule's line with its `# handle N` (as `nft -a` lists it), when the ruleset has handles. */
export function formatNftTrace(visited: readonly NftTraceEntry[], options: { handles?: boolean } = {}): string[] {
  return visited.map((v) => {
    if (v.kind === 'policy') return `${v.table} ${v.chain} policy ${v.verdict}`
    const text = v.rule ? ruleText(v.rule.rule) : ''
    const handle = options.handles === true && v.rule?.handle !== undefined ? ` # handle ${v.rule.handle}` : ''
    return `${v.table} ${v.chain} rule ${text} (verdict ${v.verdict})${handle}`
  })
}
