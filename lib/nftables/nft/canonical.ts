// A ruleset reduced to what the kernel keeps, for comparing a loaded ruleset with the kernel's
// listing of it: no handles, source lines, counter values or element expiry; base chains
// without a policy have nft's default (accept); priorities as numbers; a set's elements in key
// order (the kernel lists them in hash order); an anonymous set of one element is that element
// (nft prints `ip daddr { 10.0.0.0/8 }` back as `ip daddr 10.0.0.0/8`); size 65535 is the
// kernel's default for dynamic sets.

import { elementKeyText } from './apply.js'
import type { NftElement, NftExpr, NftRuleset, NftStatement } from './types.js'

const DEFAULT_SET_SIZE = 65535

function canonicalExpr(e: NftExpr): NftExpr {
  switch (e.kind) {
    case 'set': {
      const elements = canonicalElements(e.elements)
      if (elements.length === 1 && elements[0]!.data === undefined && Object.keys(elements[0]!).length === 1) return elements[0]!.key
      return { kind: 'set', elements }
    }
    case 'concat': return { kind: 'concat', parts: e.parts.map(canonicalExpr) }
    case 'binop': return { ...e, left: canonicalExpr(e.left), right: canonicalExpr(e.right) }
    case 'map': return { kind: 'map', key: canonicalExpr(e.key), map: canonicalExpr(e.map) as typeof e.map }
    default: return e
  }
}

function canonicalElements(elements: NftElement[]): NftElement[] {
  return elements
    .map((x) => {
      const c: NftElement = { key: canonicalExpr(x.key) }
      if (x.data) c.data = canonicalExpr(x.data)
      if (x.comment !== undefined) c.comment = x.comment
      if (x.timeout !== undefined) c.timeout = x.timeout
      return c
    })
    .sort((a, b) => (elementKeyText(a) < elementKeyText(b) ? -1 : elementKeyText(a) > elementKeyText(b) ? 1 : 0))
}

function canonicalStatement(s: NftStatement): NftStatement {
  switch (s.kind) {
    case 'match': return { ...s, left: canonicalExpr(s.left), right: canonicalExpr(s.right) }
    case 'vmap': return { ...s, key: canonicalExpr(s.key), map: canonicalExpr(s.map) as typeof s.map }
    case 'counter': return { kind: 'counter', packets: 0, bytes: 0 }
    case 'assign': return { ...s, value: canonicalExpr(s.value) }
    case 'nat': return s.addr ? { ...s, addr: canonicalExpr(s.addr) } : s
    default: return s
  }
}

/** A plain, ordered, JSON-comparable view of the ruleset (tables, chains and sets sorted by name). */
export function canonicalNftRuleset(rs: NftRuleset): unknown {
  const byName = <T>(m: Map<string, T>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return byName(rs.tables).map(([key, t]) => ({
    table: key,
    comment: t.comment,
    flags: t.flags,
    sets: byName(t.sets).map(([, s]) => ({
      kind: s.kind, name: s.name, keyType: s.keyType, dataType: s.dataType, flags: [...s.flags].sort(), timeout: s.timeout,
      size: s.size === DEFAULT_SET_SIZE ? undefined : s.size, comment: s.comment, extra: s.extra, elements: canonicalElements(s.elements),
    })),
    chains: byName(t.chains).map(([, c]) => ({
      name: c.name, comment: c.comment,
      base: c.base && { type: c.base.type, hook: c.base.hook, priority: c.base.priority, policy: c.base.policy ?? 'accept', device: c.base.device },
      rules: c.rules.map((r) => ({ statements: r.statements.map(canonicalStatement), comment: r.comment })),
    })),
  }))
}
