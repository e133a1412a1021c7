// Applies nft commands to a ruleset the way one `nft -f` transaction does: all or nothing
// (the input ruleset is never changed; a failing command leaves no trace), with nft's checks:
// objects must exist before they are referenced, a jump needs its chain, a chain still jumped
// to cannot be deleted.

import { NftParseError } from './errors.js'
import { newTable, parseNftCommands } from './parser.js'
import { exprText } from './serialize.js'
import type { NftChain, NftCommand, NftElement, NftExpr, NftFamily, NftRule, NftRuleset, NftSet, NftStatement, NftTable } from './types.js'

export function emptyRuleset(): NftRuleset {
  return { tables: new Map() }
}

/** The identity of an element inside its set: its key's canonical text. */
export function elementKeyText(e: NftElement): string {
  return exprText(e.key)
}

/** Chains a rule's verdicts can reach (jump/goto, also through inline and named verdict maps are not included). */
function* chainTargets(e: NftExpr | NftStatement): Generator<string> {
  if (e.kind === 'verdict' && e.chain !== undefined) yield e.chain
  else if (e.kind === 'vmap') yield* chainTargets(e.map)
  else if (e.kind === 'set') for (const x of e.elements) if (x.data) yield* chainTargets(x.data)
}

function* setRefs(e: NftExpr | NftStatement): Generator<string> {
  switch (e.kind) {
    case 'setref': yield e.name; break
    case 'match': yield* setRefs(e.left); yield* setRefs(e.right); break
    case 'vmap': yield* setRefs(e.key); yield* setRefs(e.map); break
    case 'map': yield* setRefs(e.key); yield* setRefs(e.map); break
    case 'dynset': yield e.set; yield* setRefs(e.key); break
    case 'nat': if (e.addr) yield* setRefs(e.addr); break
    case 'assign': yield* setRefs(e.value); break
    case 'concat': for (const p of e.parts) yield* setRefs(p); break
    case 'binop': yield* setRefs(e.left); yield* setRefs(e.right); break
  }
}

class Transaction {
  constructor(readonly rs: NftRuleset) {}

  private table(family: NftFamily, name: string, line: number): NftTable {
    const t = this.rs.tables.get(`${family} ${name}`)
    if (!t) throw new NftParseError(line, `table ${family} ${name} does not exist`)
    return t
  }

  private chain(t: NftTable, name: string, line: number): NftChain {
    const c = t.chains.get(name)
    if (!c) throw new NftParseError(line, `chain ${name} does not exist in table ${t.family} ${t.name}`)
    return c
  }

  private set(t: NftTable, name: string, line: number): NftSet {
    const s = t.sets.get(name)
    if (!s) throw new NftParseError(line, `set ${name} does not exist in table ${t.family} ${t.name}`)
    return s
  }

  private checkRule(t: NftTable, rule: NftRule, line: number): void {
    for (const s of rule.statements) {
      for (const c of chainTargets(s)) this.chain(t, c, line)
      for (const name of setRefs(s)) this.set(t, name, line)
    }
  }

  private addElements(t: NftTable, set: NftSet, elements: NftElement[], line: number, create: boolean): void {
    const index = new Map(set.elements.map((e, i) => [elementKeyText(e), i]))
    for (const e of elements) {
      if (set.kind === 'map' && e.data === undefined) throw new NftParseError(line, `map ${set.name}: element ${elementKeyText(e)} has no data (KEY : VALUE)`)
      if (set.kind === 'set' && e.data !== undefined) throw new NftParseError(line, `set ${set.name}: element ${elementKeyText(e)} has data but ${set.name} is a set, not a map`)
      if (e.data) for (const c of chainTargets(e.data)) this.chain(t, c, line)
      const key = elementKeyText(e)
      const at = index.get(key)
      if (at !== undefined) {
        if (create) throw new NftParseError(line, `element ${key} already exists in ${set.name}`)
        set.elements[at] = e
      } else {
        index.set(key, set.elements.length)
        set.elements.push(e)
      }
    }
  }

  private referenced(t: NftTable, chain: string): boolean {
    for (const c of t.chains.values()) for (const r of c.rules) for (const s of r.statements) for (const x of chainTargets(s)) if (x === chain) return true
    for (const s of t.sets.values()) for (const e of s.elements) if (e.data) for (const x of chainTargets(e.data)) if (x === chain) return true
    return false
  }

  private mergeChain(t: NftTable, chain: NftChain, create: boolean, line: number): NftChain {
    const old = t.chains.get(chain.name)
    if (!old) {
      const fresh: NftChain = { ...chain, rules: [] }
      t.chains.set(chain.name, fresh)
      return fresh
    }
    if (create) throw new NftParseError(line, `chain ${chain.name} already exists`)
    if (chain.base) {
      if (old.base && (old.base.type !== chain.base.type || old.base.hook !== chain.base.hook)) {
        throw new NftParseError(line, `chain ${chain.name} is already a ${old.base.type} chain on hook ${old.base.hook}`)
      }
      old.base = { ...chain.base, policy: chain.base.policy ?? old.base?.policy }
      if (old.base.policy === undefined) delete old.base.policy
    }
    if (chain.comment !== undefined) old.comment = chain.comment
    if (chain.handle !== undefined) old.handle = chain.handle
    return old
  }

  private mergeSet(t: NftTable, set: NftSet, create: boolean, line: number): NftSet {
    const old = t.sets.get(set.name)
    if (!old) {
      const fresh: NftSet = { ...set, elements: [] }
      t.sets.set(set.name, fresh)
      return fresh
    }
    if (create) throw new NftParseError(line, `${set.kind} ${set.name} already exists`)
    if (old.kind !== set.kind || old.keyType.join('.') !== set.keyType.join('.') || old.dataType !== set.dataType) {
      throw new NftParseError(line, `${set.kind} ${set.name} already exists with another type`)
    }
    return old
  }

  apply(cmd: NftCommand): void {
    const line = cmd.line
    switch (cmd.object) {
      case 'ruleset':
        for (const [k, t] of this.rs.tables) if (cmd.family === undefined || t.family === cmd.family) this.rs.tables.delete(k)
        return
      case 'table': {
        if ('name' in cmd) {
          const t = this.table(cmd.family, cmd.name, line)
          if (cmd.op === 'delete') this.rs.tables.delete(`${t.family} ${t.name}`)
          else for (const c of t.chains.values()) c.rules = []
          return
        }
        const key = `${cmd.table.family} ${cmd.table.name}`
        let t = this.rs.tables.get(key)
        if (t && cmd.op === 'create') throw new NftParseError(line, `table ${key} already exists`)
        if (!t) {
          t = newTable(cmd.table.family, cmd.table.name, cmd.table.line)
          this.rs.tables.set(key, t)
        }
        if (cmd.table.comment !== undefined) t.comment = cmd.table.comment
        if (cmd.table.flags !== undefined) t.flags = cmd.table.flags
        if (cmd.table.handle !== undefined) t.handle = cmd.table.handle
        if (cmd.op === 'block') this.mergeBlock(t, cmd.table)
        return
      }
      case 'chain': {
        const t = this.table(cmd.family, cmd.table, line)
        if ('chain' in cmd) {
          this.mergeChain(t, cmd.chain, cmd.op === 'create', line)
          return
        }
        const c = this.chain(t, cmd.name, line)
        if (cmd.op === 'flush') {
          c.rules = []
          return
        }
        if (c.rules.length) throw new NftParseError(line, `chain ${c.name} is not empty (flush it first)`)
        if (this.referenced(t, c.name)) throw new NftParseError(line, `chain ${c.name} is still jumped to`)
        t.chains.delete(c.name)
        return
      }
      case 'set':
      case 'map': {
        const t = this.table(cmd.family, cmd.table, line)
        if ('set' in cmd) {
          const s = this.mergeSet(t, cmd.set, cmd.op === 'create', line)
          this.addElements(t, s, cmd.set.elements, line, false)
          return
        }
        const s = this.set(t, cmd.name, line)
        if (cmd.object !== s.kind) throw new NftParseError(line, `${s.name} is a ${s.kind}, not a ${cmd.object}`)
        if (cmd.op === 'flush') {
          s.elements = []
          return
        }
        for (const c of t.chains.values()) {
          for (const r of c.rules) for (const st of r.statements) for (const n of setRefs(st)) {
            if (n === s.name) throw new NftParseError(line, `${s.kind} ${s.name} is still used by chain ${c.name}`)
          }
        }
        t.sets.delete(s.name)
        return
      }
      case 'rule': {
        const t = this.table(cmd.family, cmd.table, line)
        const c = this.chain(t, cmd.chain, line)
        if (cmd.op === 'delete') {
          const i = c.rules.findIndex((r) => r.handle === cmd.handle)
          if (i === -1) throw new NftParseError(line, `no rule with handle ${cmd.handle} in chain ${c.name}`)
          c.rules.splice(i, 1)
          return
        }
        this.checkRule(t, cmd.rule, line)
        let at: number
        if (cmd.at === undefined) at = cmd.op === 'insert' ? 0 : c.rules.length
        else {
          const pos = cmd.at.by === 'index' ? cmd.at.value : c.rules.findIndex((r) => r.handle === cmd.at!.value)
          if (pos < 0 || pos >= c.rules.length) throw new NftParseError(line, `no rule at ${cmd.at.by} ${cmd.at.value} in chain ${c.name}`)
          at = cmd.op === 'add' ? pos + 1 : pos
        }
        if (cmd.op === 'replace') {
          // the kernel keeps the handle of a replaced rule
          const old = c.rules[at]!
          c.rules[at] = old.handle !== undefined ? { ...cmd.rule, handle: old.handle } : cmd.rule
          return
        }
        c.rules.splice(at, 0, cmd.rule)
        return
      }
      case 'element': {
        const t = this.table(cmd.family, cmd.table, line)
        const s = this.set(t, cmd.set, line)
        if (cmd.op !== 'delete') {
          this.addElements(t, s, cmd.elements, line, cmd.op === 'create')
          return
        }
        const drop = new Set<string>()
        const have = new Set(s.elements.map(elementKeyText))
        for (const e of cmd.elements) {
          const k = elementKeyText(e)
          if (!have.has(k)) throw new NftParseError(line, `element ${k} does not exist in ${s.name}`)
          drop.add(k)
        }
        s.elements = s.elements.filter((e) => !drop.has(elementKeyText(e)))
        return
      }
    }
  }

  /** A `table { ... }` block: declares every chain and set first, so rules may refer forward. */
  private mergeBlock(t: NftTable, block: NftTable): void {
    const chains = [...block.chains.values()].map((c) => [this.mergeChain(t, c, false, c.line), c] as const)
    const sets = [...block.sets.values()].map((s) => [this.mergeSet(t, s, false, s.line), s] as const)
    for (const [target, src] of sets) this.addElements(t, target, src.elements, src.line, false)
    for (const [target, src] of chains) {
      for (const r of src.rules) {
        this.checkRule(t, r, r.line)
        target.rules.push(r)
      }
    }
  }
}

/** Applies a transaction to a copy of `ruleset`; the input is left untouched. Throws NftParseError. */
export function applyNftCommands(ruleset: NftRuleset, commands: NftCommand[] | string): NftRuleset {
  const cmds = typeof commands === 'string' ? parseNftCommands(commands) : commands
  const tx = new Transaction(structuredClone(ruleset))
  for (const c of cmds) tx.apply(c)
  return tx.rs
}

/** Parses nft text (the `add ...` form, `nft list ruleset` output, or both) into a ruleset. */
export function parseNftRuleset(text: string): NftRuleset {
  return applyNftCommands(emptyRuleset(), parseNftCommands(text))
}
