// Writes parsed statements back to iptables-save / iptables-restore text.
// Pieces are emitted in their source order (`pos`), with the source's quoting,
// so text that came from iptables-save (or from kube-proxy) comes back
// byte-for-byte.

import { quoteArg } from './tokenize.js'
import type { Counters, IptablesDocument, Rule, RuleOption, Statement } from './types.js'

function optionText(o: RuleOption): string {
  const parts: string[] = []
  if (o.negated && !o.bangAfterName) parts.push('!')
  parts.push(o.name)
  if (o.negated && o.bangAfterName) parts.push('!')
  o.values.forEach((v, i) => parts.push(quoteArg(v, o.quoted?.[i] ?? false)))
  return parts.join(' ')
}

/** The rule's arguments after `-A CHAIN` (matches and target). */
export function serializeRuleArgs(rule: Rule): string {
  const pieces: Array<{ pos: number; text: string }> = []
  for (const o of rule.ip.options) pieces.push({ pos: o.pos, text: optionText(o) })
  for (const m of rule.matches) {
    if (!m.implicit) pieces.push({ pos: m.pos, text: `-m ${m.module}` })
    for (const o of m.options) pieces.push({ pos: o.pos, text: optionText(o) })
  }
  const t = rule.target
  if (t) {
    pieces.push({ pos: t.pos, text: `${t.goto ? '-g' : '-j'} ${t.name}` })
    for (const o of t.options) pieces.push({ pos: o.pos, text: optionText(o) })
  }
  pieces.sort((a, b) => a.pos - b.pos)
  return pieces.map((p) => p.text).join(' ')
}

function countersText(c: Counters): string {
  return `[${c.packets}:${c.bytes}]`
}

/** One rule line, e.g. `-A KUBE-SERVICES -d 10.0.0.1/32 ... -j KUBE-SVC-X`. */
export function serializeRule(rule: Rule): string {
  const head: string[] = []
  if (rule.counters) head.push(countersText(rule.counters))
  head.push(`-${rule.command}`, rule.chain)
  if (rule.index !== undefined) head.push(String(rule.index))
  const args = serializeRuleArgs(rule)
  return args === '' ? head.join(' ') : `${head.join(' ')} ${args}`
}

export function serializeStatement(s: Statement): string {
  switch (s.type) {
    case 'comment': case 'blank': return s.text
    case 'table': return `*${s.name}`
    case 'chain': return `:${s.name} ${s.policy}${s.counters ? ` ${countersText(s.counters)}` : ''}`
    case 'rule': return serializeRule(s.rule)
    case 'command': return [`-${s.command}`, ...s.args].join(' ')
    case 'commit': return 'COMMIT'
  }
}

/** The whole document as text; equal to the input for iptables-save output. */
export function serializeIptables(doc: IptablesDocument): string {
  const body = doc.statements.map(serializeStatement).join('\n')
  return doc.trailingNewline ? `${body}\n` : body
}
