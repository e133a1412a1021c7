// Applies nft commands to a ruleset the way one `nft -f` transaction does: all or nothing
// (the input ruleset is never changed; a failing command leaves no trace), with nft's checks:
// objects must exist before they are referenced, a jump needs its chain, a chain still jumped
// to cannot be deleted.

import { NftParseError } from './errors.js'
import { newTable, parseNftCommands } from './parser.js'
import { exprText } from './serialize.js'
import type { NftChain, NftCommand, NftElement, NftExpr, NftFamily, NftRule, NftRuleset, NftSet, NftStatement, NftTable, NftTableObject } from './types.js'

export function emptyRuleset(): NftRuleset {
  return { tables: new Map() }
}

/** The identity of an element inside its set: its key's canonical text. */
export function elementKeyText(e: NftElement): string {
  return exprText(e.key)
}

/** Chains a rule's verdicts can reach (jump/goto, also through inline and named verdict maps are not included). */
export function* chainTargets(e: NftExpr | NftStatement): Generator<string> {
  if (e.kind === 'verdict' && e.chain !== undefined) yield e.chain
  else if (e.kind === 'vmap') yield* chainTargets(e.map)
  else if (e.kind === 'set') for (const x of e.elements) if (x.data) yield* chainTargets(x.data)
}

/** The named sets and maps a statement or expression uses. */
export function* setRefs(e: NftExpr | NftStatement): Generator<string> {
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

/** a set's elements during a transaction (keyed by their key text) */
type ElementsOf = (set: NftSet) => Map<string, NftElement>

function mapTargets(set: NftSet, elementsOf: ElementsOf): string[] {
  const out: string[] = []
  for (const e of elementsOf(set).values()) if (e.data) out.push(...chainTargets(e.data))
  return out
}

/** per named verdict map, the chains with a rule doing `... vmap @name` */
function vmapUsers(t: NftTable): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const c of t.chains.values()) for (const r of c.rules) noteVmapUses(out, c.name, r)
  return out
}

function noteVmapUses(users: Map<string, Set<string>>, chain: string, r: NftRule): void {
  for (const s of r.statements) {
    if (s.kind !== 'vmap' || s.map.kind !== 'setref') continue
    let u = users.get(s.map.name)
    if (!u) users.set(s.map.name, (u = new Set()))
    u.add(chain)
  }
}

/** whether `from` is, or can jump or goto (through verdict maps too) into, one of `targets` */
function reaches(t: NftTable, from: string, targets: Set<string>, elementsOf: ElementsOf): boolean {
  const seen = new Set<string>()
  const stack = [from]
  while (stack.length) {
    const name = stack.pop()!
    if (targets.has(name)) return true
    if (seen.has(name)) continue
    seen.add(name)
    const c = t.chains.get(name)
    if (!c) continue
    for (const r of c.rules) {
      for (const s of r.statements) {
        stack.push(...chainTargets(s))
        if (s.kind === 'vmap' && s.map.kind === 'setref') {
          const m = t.sets.get(s.map.name)
          if (m) stack.push(...mapTargets(m, elementsOf))
        }
      }
    }
  }
  return false
}

class Transaction {
  /** vmap users per table, kept up to date as rules are added; dropped when rules go away */
  private readonly users = new Map<NftTable, Map<string, Set<string>>>()

  /**
   * elements of the sets this transaction touches, by key: adding or deleting one element costs
   * one hash operation, not a scan (kube-proxy writes one `add element` line per element)
   */
  private readonly elems = new Map<NftSet, Map<string, NftElement>>()
  private readonly elementsOf: ElementsOf = (set) => {
    let m = this.elems.get(set)
    if (!m) {
      m = new Map(set.elements.map((e) => [elementKeyText(e), e]))
      this.elems.set(set, m)
    }
    return m
  }

  /**
   * Copy on write: the input ruleset is never changed. A table, chain or set is copied (shallow,
   * its rules and elements shared) the first time this transaction changes it, so a partial
   * sync of one service costs what it touches, not the size of the ruleset.
   */
  private readonly own = new WeakSet<object>()
  readonly rs: NftRuleset

  constructor(input: NftRuleset) {
    this.rs = { tables: new Map(input.tables) }
  }

  /** writes the element maps of the changed sets back */
  finish(): NftRuleset {
    for (const [set, m] of this.elems) if (this.own.has(set)) set.elements = [...m.values()]
    this.elems.clear()
    return this.rs
  }

  private tableW(t: NftTable): NftTable {
    if (this.own.has(t)) return t
    const copy: NftTable = { ...t, chains: new Map(t.chains), sets: new Map(t.sets) }
    if (t.objects) copy.objects = [...t.objects]
    this.own.add(copy)
    this.rs.tables.set(`${t.family} ${t.name}`, copy)
    return copy
  }

  private chainW(t: NftTable, c: NftChain): NftChain {
    if (this.own.has(c)) return c
    const copy: NftChain = { ...c, rules: [...c.rules] }
    if (c.base) copy.base = { ...c.base }
    this.own.add(copy)
    t.chains.set(c.name, copy)
    return copy
  }

  private setW(t: NftTable, s: NftSet): NftSet {
    if (this.own.has(s)) return s
    const copy: NftSet = { ...s }
    this.own.add(copy)
    t.sets.set(s.name, copy)
    return copy
  }

  private usersOf(t: NftTable, set: string): Set<string> | undefined {
    let u = this.users.get(t)
    if (!u) this.users.set(t, (u = vmapUsers(t)))
    return u.get(set)
  }

  private ruleAdded(t: NftTable, chain: string, r: NftRule): void {
    const u = this.users.get(t)
    if (u) noteVmapUses(u, chain, r)
  }

  /** the table, ready to be changed */
  private table(family: NftFamily, name: string, line: number): NftTable {
    const t = this.rs.tables.get(`${family} ${name}`)
    if (!t) throw new NftParseError(line, `table ${family} ${name} does not exist`)
    return this.tableW(t)
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

  private checkRule(t: NftTable, chain: string, rule: NftRule, line: number): void {
    for (const s of rule.statements) {
      for (const c of chainTargets(s)) this.chain(t, c, line)
      for (const name of setRefs(s)) this.set(t, name, line)
    }
    for (const s of rule.statements) {
      const targets = [...chainTargets(s)]
      if (s.kind === 'vmap' && s.map.kind === 'setref') targets.push(...mapTargets(t.sets.get(s.map.name)!, this.elementsOf))
      for (const c of targets) if (reaches(t, c, new Set([chain]), this.elementsOf)) throw new NftParseError(line, `a jump from ${chain} to ${c} would loop`)
    }
  }

  private addElements(t: NftTable, set: NftSet, elements: NftElement[], line: number, create: boolean): void {
    const index = this.elementsOf(set)
    for (const e of elements) {
      if (set.kind === 'map' && e.data === undefined) throw new NftParseError(line, `map ${set.name}: element ${elementKeyText(e)} has no data (KEY : VALUE)`)
      if (set.kind === 'set' && e.data !== undefined) throw new NftParseError(line, `set ${set.name}: element ${elementKeyText(e)} has data but ${set.name} is a set, not a map`)
      if (e.data) {
        for (const c of chainTargets(e.data)) {
          this.chain(t, c, line)
          const users = this.usersOf(t, set.name)
          if (users && reaches(t, c, users, this.elementsOf)) throw new NftParseError(line, `${set.name}: element ${elementKeyText(e)} jumps to ${c}, which leads back to a chain using ${set.name} (a loop)`)
        }
      }
      const key = elementKeyText(e)
      if (create && index.has(key)) throw new NftParseError(line, `element ${key} already exists in ${set.name}`)
      index.set(key, e)
    }
  }

  private referenced(t: NftTable, chain: string): boolean {
    for (const c of t.chains.values()) for (const r of c.rules) for (const s of r.statements) for (const x of chainTargets(s)) if (x === chain) return true
    for (const s of t.sets.values()) for (const e of this.elementsOf(s).values()) if (e.data) for (const x of chainTargets(e.data)) if (x === chain) return true
    return false
  }

  private mergeChain(t: NftTable, chain: NftChain, create: boolean, line: number): NftChain {
    const existing = t.chains.get(chain.name)
    if (!existing) {
      const fresh: NftChain = { ...chain, rules: [] }
      this.own.add(fresh)
      t.chains.set(chain.name, fresh)
      return fresh
    }
    if (create) throw new NftParseError(line, `chain ${chain.name} already exists`)
    const old = this.chainW(t, existing)
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
      this.own.add(fresh)
      t.sets.set(set.name, fresh)
      return fresh
    }
    if (create) throw new NftParseError(line, `${set.kind} ${set.name} already exists`)
    if (old.kind !== set.kind || old.keyType.join('.') !== set.keyType.join('.') || old.dataType !== set.dataType) {
      throw new NftParseError(line, `${set.kind} ${set.name} already exists with another type`)
    }
    return this.setW(t, old)
  }

  apply(cmd: NftCommand): void {
    const line = cmd.line
    // rules going away make the vmap-user cache stale (element and set changes do not)
    const removesRules = cmd.op === 'replace' || ((cmd.op === 'flush' || cmd.op === 'delete') && (cmd.object === 'rule' || cmd.object === 'chain' || cmd.object === 'table' || cmd.object === 'ruleset'))
    if (removesRules) this.users.clear()
    switch (cmd.object) {
      case 'object': {
        const t = this.table(cmd.family, cmd.table, line)
        this.putObject(t, cmd.value, cmd.op === 'create', line)
        return
      }
      case 'ruleset':
        for (const [k, t] of this.rs.tables) if (cmd.family === undefined || t.family === cmd.family) this.rs.tables.delete(k)
        return
      case 'table': {
        if ('name' in cmd) {
          const t = this.table(cmd.family, cmd.name, line)
          if (cmd.op === 'delete') this.rs.tables.delete(`${t.family} ${t.name}`)
          else for (const c of [...t.chains.values()]) this.chainW(t, c).rules = []
          return
        }
        const key = `${cmd.table.family} ${cmd.table.name}`
        const found = this.rs.tables.get(key)
        if (found && cmd.op === 'create') throw new NftParseError(line, `table ${key} already exists`)
        let t: NftTable
        if (found) t = this.tableW(found)
        else {
          t = newTable(cmd.table.family, cmd.table.name, cmd.table.line)
          this.own.add(t)
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
          this.chainW(t, c).rules = []
          return
        }
        // the kernel deletes a chain with its rules, but not while something jumps to it
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
          this.elementsOf(this.setW(t, s)).clear()
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
        const c = this.chainW(t, this.chain(t, cmd.chain, line))
        if (cmd.op === 'delete') {
          const i = c.rules.findIndex((r) => r.handle === cmd.handle)
          if (i === -1) throw new NftParseError(line, `no rule with handle ${cmd.handle} in chain ${c.name}`)
          c.rules.splice(i, 1)
          return
        }
        this.checkRule(t, c.name, cmd.rule, line)
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
        this.ruleAdded(t, c.name, cmd.rule)
        return
      }
      case 'element': {
        const t = this.table(cmd.family, cmd.table, line)
        const s = this.setW(t, this.set(t, cmd.set, line))
        if (cmd.op !== 'delete') {
          this.addElements(t, s, cmd.elements, line, cmd.op === 'create')
          return
        }
        const have = this.elementsOf(s)
        for (const e of cmd.elements) {
          const k = elementKeyText(e)
          if (!have.delete(k)) throw new NftParseError(line, `element ${k} does not exist in ${s.name}`)
        }
        return
      }
    }
  }

  private putObject(t: NftTable, value: NftTableObject, create: boolean, line: number): void {
    const list = (t.objects ??= [])  // t is this transaction's copy, and so is its list
    const i = list.findIndex((x) => x.kind === value.kind && x.name === value.name)
    if (i !== -1 && create) throw new NftParseError(line, `${value.kind} ${value.name} already exists`)
    if (i === -1) list.push(value)
    else list[i] = value
  }

  /** A `table { ... }` block: declares every chain and set first, so rules may refer forward. */
  private mergeBlock(t: NftTable, block: NftTable): void {
    for (const x of block.objects ?? []) this.putObject(t, x, false, x.line)
    const chains = [...block.chains.values()].map((c) => [this.mergeChain(t, c, false, c.line), c] as const)
    const sets = [...block.sets.values()].map((s) => [this.mergeSet(t, s, false, s.line), s] as const)
    for (const [target, src] of sets) this.addElements(t, target, src.elements, src.line, false)
    for (const [target, src] of chains) {
      for (const r of src.rules) {
        this.checkRule(t, target.name, r, r.line)
        target.rules.push(r)
        this.ruleAdded(t, target.name, r)
      }
    }
  }
}

/**
 * Applies a transaction to `ruleset` and returns the result; the input is left untouched (what
 * the transaction changes is copied, the rest shared). Throws NftParseError.
 */
export function applyNftCommands(ruleset: NftRuleset, commands: NftCommand[] | string): NftRuleset {
  const cmds = typeof commands === 'string' ? parseNftCommands(commands) : commands
  const tx = new Transaction(ruleset)
  for (const c of cmds) tx.apply(c)
  return tx.finish()
}

/** Parses nft text (the `add ...` form, `nft list ruleset` output, or both) into a ruleset. */
export function parseNftRuleset(text: string): NftRuleset {
  return applyNftCommands(emptyRuleset(), parseNftCommands(text))
}
