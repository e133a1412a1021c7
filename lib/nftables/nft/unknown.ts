// What the parser kept without interpreting (log, limit, queue, jhash, typeof, ...): a
// ruleset read from a node may use more of nft than kube-proxy does, and a caller should see
// which rules the evaluator cannot judge instead of getting a silent answer.

import type { NftExpr, NftRuleset, NftStatement } from './types.js'

export interface NftUnknownItem {
  table: string
  chain: string
  /** 0-based position of the rule in its chain */
  index: number
  line: number
  text: string
}

function unknownTexts(e: NftExpr | NftStatement, out: string[]): void {
  switch (e.kind) {
    case 'unknown': out.push(e.text); break
    case 'match': unknownTexts(e.left, out); unknownTexts(e.right, out); break
    case 'vmap': unknownTexts(e.key, out); break
    case 'map': unknownTexts(e.key, out); break
    case 'concat': for (const p of e.parts) unknownTexts(p, out); break
    case 'binop': unknownTexts(e.left, out); unknownTexts(e.right, out); break
    case 'assign': unknownTexts(e.value, out); break
    case 'dynset': unknownTexts(e.key, out); break
    case 'nat': if (e.addr) unknownTexts(e.addr, out); break
  }
}

/** Every statement or expression of the ruleset that the parser kept as text. */
export function findUnknownNft(rs: NftRuleset): NftUnknownItem[] {
  const out: NftUnknownItem[] = []
  for (const [key, t] of rs.tables) {
    for (const c of t.chains.values()) {
      c.rules.forEach((r, index) => {
        const texts: string[] = []
        for (const s of r.statements) unknownTexts(s, texts)
        for (const text of texts) out.push({ table: key, chain: c.name, index, line: r.line, text })
      })
    }
  }
  return out
}
