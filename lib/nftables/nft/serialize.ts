// Writes a ruleset back as text, in either form: the `add ...` commands `nft -f` loads into an
// empty namespace (knftables' dump form: tables, sets and maps, chains, rules, then elements,
// so every reference points at something already there), or the block form `nft list ruleset`
// prints. Both parse back to the same tree.

import { formatDuration, formatPriority } from './values.js'
import type { NftChain, NftElement, NftExpr, NftRule, NftRuleset, NftSet, NftStatement, NftTable } from './types.js'

/** mark-typed values print as 32-bit hex, as nft does (`meta mark & 0x00004000`) */
function isMarkish(e: NftExpr): boolean {
  if (e.kind === 'meta' || e.kind === 'ct') return e.key === 'mark'
  return e.kind === 'binop' && isMarkish(e.left)
}

function hexMark(text: string): string {
  return /^\d+$/.test(text) ? `0x${Number(text).toString(16).padStart(8, '0')}` : text
}

export function exprText(e: NftExpr, hex = false): string {
  switch (e.kind) {
    case 'payload': return `${e.protocol} ${e.field}`
    case 'meta': return `meta ${e.key}`
    case 'ct': return `ct ${e.key}`
    case 'fib': return `fib ${e.flags.join(' . ')} ${e.result}`
    case 'numgen': return `numgen ${e.mode} mod ${e.mod}${e.offset !== undefined ? ` offset ${e.offset}` : ''}`
    case 'concat': return e.parts.map((p) => exprText(p, hex)).join(' . ')
    case 'binop': return `${exprText(e.left)} ${e.op} ${exprText(e.right, isMarkish(e.left))}`
    case 'value': return e.quoted ? `"${e.text}"` : hex ? hexMark(e.text) : e.text
    case 'list': return e.values.map((v) => exprText(v, hex)).join(',')
    case 'set': return `{ ${e.elements.map((x) => elementText(x, hex)).join(', ')} }`
    case 'setref': return `@${e.name}`
    case 'map': return `${exprText(e.key)} map ${exprText(e.map)}`
    case 'verdict': return e.chain !== undefined ? `${e.verdict} ${e.chain}` : e.verdict
    case 'unknown': return e.text
  }
}

export function elementText(e: NftElement, hex = false): string {
  let s = exprText(e.key, hex)
  if (e.timeout !== undefined) s += ` timeout ${formatDuration(e.timeout)}`
  if (e.expires !== undefined) s += ` expires ${formatDuration(e.expires)}`
  if (e.comment !== undefined) s += ` comment "${e.comment}"`
  if (e.counter) s += ` counter packets ${e.counter.packets} bytes ${e.counter.bytes}`
  if (e.data) s += ` : ${exprText(e.data)}`
  return s
}

function hostPort(addr: NftExpr | undefined, port: NftExpr | undefined): string {
  const a = addr ? exprText(addr) : ''
  if (!port) return a
  const bracket = addr?.kind === 'value' && a.includes(':')
  return `${bracket ? `[${a}]` : a}:${exprText(port)}`
}

export function statementText(s: NftStatement): string {
  switch (s.kind) {
    case 'match': {
      const hex = isMarkish(s.left)
      const op = s.op === '==' ? (s.left.kind === 'binop' ? ' == ' : ' ') : ` ${s.op} `
      return `${exprText(s.left)}${op}${exprText(s.right, hex)}`
    }
    case 'vmap': return `${exprText(s.key)} vmap ${exprText(s.map)}`
    case 'verdict': return exprText(s)
    case 'counter': return `counter packets ${s.packets} bytes ${s.bytes}`
    case 'assign': return `${exprText(s.target)} set ${exprText(s.value, isMarkish(s.target))}`
    case 'nat': {
      let t: string = s.type
      if (s.family) t += ` ${s.family}`
      if (s.addr || s.port) t += ` to ${hostPort(s.addr, s.port)}`
      if (s.flags.length) t += ` ${s.flags.join(',')}`
      return t
    }
    case 'reject': return s.with !== undefined ? `reject with ${s.with}` : 'reject'
    case 'dynset': return `${s.op} @${s.set} { ${exprText(s.key)}${s.timeout !== undefined ? ` timeout ${formatDuration(s.timeout)}` : ''} }`
    case 'unknown': return s.text
  }
}

export interface RuleTextOptions {
  /** append ` # handle N` when the rule has one */
  handles?: boolean
  /** counter values to print instead of the parsed ones (an evaluator's live counters) */
  counterOf?: (rule: NftRule) => { packets: number; bytes: number } | undefined
}

export function ruleText(rule: NftRule, options: RuleTextOptions = {}): string {
  const live = options.counterOf?.(rule)
  const parts = rule.statements.map((s) => (s.kind === 'counter' && live ? `counter packets ${live.packets} bytes ${live.bytes}` : statementText(s)))
  if (rule.comment !== undefined) parts.push(`comment "${rule.comment}"`)
  let text = parts.join(' ')
  if (options.handles && rule.handle !== undefined) text += ` # handle ${rule.handle}`
  return text
}

function setTypeText(set: NftSet): string {
  return `${set.keyType.join(' . ')}${set.dataType !== undefined ? ` : ${set.dataType}` : ''}`
}

// ---- command form ----

function setDeclaration(set: NftSet): string {
  const parts = [`type ${setTypeText(set)}`]
  if (set.flags.length) parts.push(`flags ${set.flags.join(',')}`)
  if (set.timeout !== undefined) parts.push(`timeout ${set.timeout}s`)
  if (set.size !== undefined) parts.push(`size ${set.size}`)
  if (set.comment !== undefined) parts.push(`comment "${set.comment}"`)
  for (const x of set.extra ?? []) parts.push(x)
  return `{ ${parts.map((p) => `${p} ;`).join(' ')} }`
}

function chainDeclaration(chain: NftChain): string {
  const parts: string[] = []
  if (chain.base) {
    const b = chain.base
    parts.push(`type ${b.type} hook ${b.hook}${b.device !== undefined ? ` device "${b.device}"` : ''} priority ${b.priority}`)
    if (b.policy) parts.push(`policy ${b.policy}`)
  }
  if (chain.comment !== undefined) parts.push(`comment "${chain.comment}"`)
  return parts.length ? ` { ${parts.map((p) => `${p} ;`).join(' ')} }` : ''
}

/** The ruleset as `add ...` commands, one object a line, loadable with `nft -f` into an empty namespace. */
export function serializeNftCommands(ruleset: NftRuleset): string {
  const lines: string[] = []
  for (const t of ruleset.tables.values()) {
    const id = `${t.family} ${t.name}`
    const tparts: string[] = []
    if (t.comment !== undefined) tparts.push(`comment "${t.comment}" ;`)
    if (t.flags?.length) tparts.push(`flags ${t.flags.join(',')} ;`)
    lines.push(`add table ${id}${tparts.length ? ` { ${tparts.join(' ')} }` : ''}`)
    for (const s of t.sets.values()) lines.push(`add ${s.kind} ${id} ${s.name} ${setDeclaration(s)}`)
    for (const c of t.chains.values()) lines.push(`add chain ${id} ${c.name}${chainDeclaration(c)}`)
    for (const c of t.chains.values()) for (const r of c.rules) lines.push(`add rule ${id} ${c.name} ${ruleText(r)}`)
    for (const s of t.sets.values()) for (const e of s.elements) lines.push(`add element ${id} ${s.name} { ${elementText(e)} }`)
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}

// ---- block form ----

export type BlockOptions = RuleTextOptions

function setBlock(set: NftSet, o: BlockOptions): string[] {
  const h = o.handles && set.handle !== undefined ? ` # handle ${set.handle}` : ''
  const out = [`\t${set.kind} ${set.name} {${h}`, `\t\ttype ${setTypeText(set)}`]
  if (set.size !== undefined) out.push(`\t\tsize ${set.size}`)
  if (set.flags.length) out.push(`\t\tflags ${set.flags.join(',')}`)
  if (set.timeout !== undefined) out.push(`\t\ttimeout ${formatDuration(set.timeout)}`)
  for (const x of set.extra ?? []) out.push(`\t\t${x}`)
  if (set.comment !== undefined) out.push(`\t\tcomment "${set.comment}"`)
  if (set.elements.length) out.push(`\t\telements = { ${set.elements.map((e) => elementText(e)).join(',\n\t\t\t     ')} }`)
  out.push('\t}')
  return out
}

function chainBlock(chain: NftChain, o: BlockOptions): string[] {
  const h = o.handles && chain.handle !== undefined ? ` # handle ${chain.handle}` : ''
  const out = [`\tchain ${chain.name} {${h}`]
  if (chain.base) {
    const b = chain.base
    const prio = b.priorityText ?? formatPriority(b.priority, b.hook)
    out.push(`\t\ttype ${b.type} hook ${b.hook}${b.device !== undefined ? ` device "${b.device}"` : ''} priority ${prio}; policy ${b.policy ?? 'accept'};`)
  }
  if (chain.comment !== undefined) out.push(`\t\tcomment "${chain.comment}"`)
  for (const r of chain.rules) out.push(`\t\t${ruleText(r, o)}`)
  out.push('\t}')
  return out
}

function tableBlock(t: NftTable, o: BlockOptions): string {
  const h = o.handles && t.handle !== undefined ? ` # handle ${t.handle}` : ''
  const out = [`table ${t.family} ${t.name} {${h}`]
  if (t.comment !== undefined) out.push(`\tcomment "${t.comment}"`)
  if (t.flags?.length) out.push(`\tflags ${t.flags.join(',')}`)
  const objects = [...[...t.sets.values()].map((s) => setBlock(s, o)), ...[...t.chains.values()].map((c) => chainBlock(c, o))]
  objects.forEach((lines, i) => {
    if (i > 0) out.push('')
    out.push(...lines)
  })
  out.push('}')
  return out.join('\n')
}

/** The ruleset in `nft list ruleset` form (with `# handle N` when `handles` is set). */
export function serializeNftRuleset(ruleset: NftRuleset, options: BlockOptions = {}): string {
  const tables = [...ruleset.tables.values()].map((t) => tableBlock(t, options))
  return tables.length ? `${tables.join('\n')}\n` : ''
}
