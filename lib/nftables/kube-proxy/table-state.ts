// One nftables table as the kernel holds it, changed only by whole transactions: every
// operation of a transaction applies or none does (an error undoes the ones before it), and
// the checks are the kernel's (a rule's chains and sets must exist, a chain something still
// jumps to cannot be deleted, an element that is not there cannot be deleted).
import {
  chainsReferenced, elementKey, operationText, setsReferenced,
  type NftChainObject, type NftElementObject, type NftFamily, type NftOperation, type NftRuleObject, type NftSetObject,
} from './objects.js'

export class NftTransactionError extends Error {
  constructor(
    message: string,
    readonly code: 'NOT_FOUND' | 'IN_USE' | 'CONFLICT',
    /** 0-based index of the failing operation in its transaction. */
    readonly operation: number,
  ) {
    super(message)
    this.name = 'NftTransactionError'
  }
}

interface ChainState {
  object: NftChainObject
  rules: NftRuleObject[]
}

interface SetState {
  object: NftSetObject
  elements: Map<string, NftElementObject>
}

const byName = <T>(m: Map<string, T>) => [...m.keys()].sort()

function count(m: Map<string, number>, key: string, delta: number): void {
  const n = (m.get(key) ?? 0) + delta
  if (n === 0) m.delete(key)
  else m.set(key, n)
}

export class NftTableState {
  private comment: string | undefined
  private exists = false
  private readonly chains = new Map<string, ChainState>()
  private readonly sets = new Map<string, SetState>()
  /** How many rules and map elements jump or go to each chain. */
  private readonly chainRefs = new Map<string, number>()
  /** How many rules use each named set or map. */
  private readonly setRefs = new Map<string, number>()

  /** Bumped by every applied transaction (readers cache what they derive from the table). */
  version = 0

  /** Told every transaction the table applied, after it did (a follower replays them). */
  onApplied: ((ops: readonly NftOperation[]) => void) | undefined

  constructor(readonly family: NftFamily, readonly name: string) {}

  get present(): boolean {
    return this.exists
  }

  chainNames(): string[] {
    return [...this.chains.keys()]
  }

  setNames(kind: 'set' | 'map' = 'set'): string[] {
    return [...this.sets.values()].filter((s) => s.object.kind === kind).map((s) => s.object.name)
  }

  rules(chain: string): readonly NftRuleObject[] | undefined {
    return this.chains.get(chain)?.rules
  }

  chain(name: string): NftChainObject | undefined {
    return this.chains.get(name)?.object
  }

  set(name: string): { object: NftSetObject; elements: ReadonlyMap<string, NftElementObject> } | undefined {
    return this.sets.get(name)
  }

  /** Applies a whole transaction, or throws NftTransactionError leaving the table as it was. */
  apply(ops: readonly NftOperation[]): void {
    const undo: (() => void)[] = []
    try {
      ops.forEach((op, i) => this.applyOne(op, i, undo))
      this.version++
    } catch (error) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!()
      throw error
    }
    if (ops.length > 0) this.onApplied?.(ops)
  }

  private ref(text: string, delta: number): void {
    for (const c of chainsReferenced(text)) count(this.chainRefs, c, delta)
  }

  private ruleRef(rule: string, delta: number): void {
    this.ref(rule, delta)
    for (const s of setsReferenced(rule)) count(this.setRefs, s, delta)
  }

  private fail(op: NftOperation, i: number, why: string, code: NftTransactionError['code']): never {
    throw new NftTransactionError(`nft: operation ${i + 1} "${operationText(op, this.family, this.name)}": ${why}`, code, i)
  }

  private requireTable(op: NftOperation, i: number): void {
    if (!this.exists) this.fail(op, i, `no such table ${this.family} ${this.name}`, 'NOT_FOUND')
  }

  private applyOne(op: NftOperation, i: number, undo: (() => void)[]): void {
    const o = op.object
    if (o.kind === 'table') {
      if (op.verb === 'add') {
        const [was, wasComment] = [this.exists, this.comment]
        this.exists = true
        if (o.comment !== undefined) this.comment = o.comment
        undo.push(() => { this.exists = was; this.comment = wasComment })
        return
      }
      this.fail(op, i, `${op.verb} table is not supported here`, 'CONFLICT')
    }
    this.requireTable(op, i)
    if (o.kind === 'chain') return this.applyChain(op, o, i, undo)
    if (o.kind === 'set' || o.kind === 'map') return this.applySet(op, o, i, undo)
    if (o.kind === 'rule') return this.applyRule(op, o, i, undo)
    if (o.kind === 'element') return this.applyElement(op, o, i, undo)
  }

  private flushRules(c: ChainState, undo: (() => void)[]): void {
    const old = c.rules
    for (const r of old) this.ruleRef(r.rule, -1)
    c.rules = []
    undo.push(() => { c.rules = old; for (const r of old) this.ruleRef(r.rule, +1) })
  }

  private applyChain(op: NftOperation, o: NftChainObject, i: number, undo: (() => void)[]): void {
    const c = this.chains.get(o.name)
    if (op.verb === 'add') {
      if (c === undefined) {
        this.chains.set(o.name, { object: o, rules: [] })
        undo.push(() => this.chains.delete(o.name))
      } else if (o.base !== undefined && JSON.stringify(o.base) !== JSON.stringify(c.object.base)) {
        this.fail(op, i, 'chain exists with another type, hook or priority', 'CONFLICT')
      }
      return
    }
    if (c === undefined) this.fail(op, i, `no such chain ${o.name}`, 'NOT_FOUND')
    if (op.verb === 'flush') return this.flushRules(c, undo)
    if (c.rules.length > 0 || this.chainRefs.has(o.name)) this.fail(op, i, 'chain is in use (Device or resource busy)', 'IN_USE')
    this.chains.delete(o.name)
    undo.push(() => this.chains.set(o.name, c))
  }

  private applySet(op: NftOperation, o: NftSetObject, i: number, undo: (() => void)[]): void {
    const s = this.sets.get(o.name)
    if (op.verb === 'add') {
      if (s === undefined) {
        if (o.type === undefined) this.fail(op, i, `a new ${o.kind} needs a type`, 'CONFLICT')
        this.sets.set(o.name, { object: o, elements: new Map() })
        undo.push(() => this.sets.delete(o.name))
      } else if (s.object.kind !== o.kind || (o.type !== undefined && o.type !== s.object.type)) {
        this.fail(op, i, `${s.object.kind} ${o.name} exists with another type`, 'CONFLICT')
      }
      return
    }
    if (s === undefined || s.object.kind !== o.kind) this.fail(op, i, `no such ${o.kind} ${o.name}`, 'NOT_FOUND')
    if (op.verb === 'delete' && this.setRefs.has(o.name)) this.fail(op, i, `${o.kind} is in use by a rule (Device or resource busy)`, 'IN_USE')
    const old = s.elements
    const values = [...old.values()].flatMap((e) => (e.value === undefined ? [] : [e.value.join(' ')]))
    for (const v of values) this.ref(v, -1)
    if (op.verb === 'flush') s.elements = new Map()
    else this.sets.delete(o.name)
    undo.push(() => {
      s.elements = old
      this.sets.set(o.name, s)
      for (const v of values) this.ref(v, +1)
    })
  }

  private applyRule(op: NftOperation, o: NftRuleObject, i: number, undo: (() => void)[]): void {
    if (op.verb !== 'add') this.fail(op, i, `${op.verb} rule needs a handle; kube-proxy only adds rules`, 'CONFLICT')
    const c = this.chains.get(o.chain)
    if (c === undefined) this.fail(op, i, `no such chain ${o.chain}`, 'NOT_FOUND')
    for (const target of chainsReferenced(o.rule)) {
      if (!this.chains.has(target)) this.fail(op, i, `no such chain ${target}`, 'NOT_FOUND')
    }
    for (const set of setsReferenced(o.rule)) {
      if (!this.sets.has(set)) this.fail(op, i, `no such set ${set}`, 'NOT_FOUND')
    }
    c.rules.push(o)
    this.ruleRef(o.rule, +1)
    undo.push(() => { c.rules.pop(); this.ruleRef(o.rule, -1) })
  }

  private applyElement(op: NftOperation, o: NftElementObject, i: number, undo: (() => void)[]): void {
    if (op.verb === 'flush') this.fail(op, i, 'flush element is not an operation', 'CONFLICT')
    const s = this.sets.get(o.name)
    if (s === undefined) this.fail(op, i, `no such set or map ${o.name}`, 'NOT_FOUND')
    const k = elementKey(o.key)
    const had = s.elements.get(k)
    if (op.verb === 'add') {
      const isMap = s.object.kind === 'map'
      if (isMap !== (o.value !== undefined)) this.fail(op, i, isMap ? 'a map element needs a value' : 'a set element has no value', 'CONFLICT')
      if (had !== undefined) {
        if (elementKey(had.value ?? []) !== elementKey(o.value ?? [])) this.fail(op, i, 'element exists with another value (File exists)', 'CONFLICT')
        return
      }
      for (const target of chainsReferenced((o.value ?? []).join(' '))) {
        if (!this.chains.has(target)) this.fail(op, i, `no such chain ${target}`, 'NOT_FOUND')
      }
      s.elements.set(k, o)
      if (o.value !== undefined) this.ref(o.value.join(' '), +1)
      undo.push(() => { s.elements.delete(k); if (o.value !== undefined) this.ref(o.value.join(' '), -1) })
      return
    }
    if (had === undefined) this.fail(op, i, 'no such element (No such file or directory)', 'NOT_FOUND')
    s.elements.delete(k)
    if (had.value !== undefined) this.ref(had.value.join(' '), -1)
    undo.push(() => { s.elements.set(k, had); if (had.value !== undefined) this.ref(had.value.join(' '), +1) })
  }

  /**
   * The table in knftables' dump form, loadable by `nft -f` into an empty namespace: the
   * table, its chains, sets and maps (by name), then every chain's rules in order, then the
   * elements (by key).
   */
  dump(): string {
    if (!this.exists) return ''
    const ops: NftOperation[] = [{ verb: 'add', object: { kind: 'table', ...(this.comment !== undefined ? { comment: this.comment } : {}) } }]
    const chains = byName(this.chains)
    const sets = byName(this.sets)
    for (const c of chains) ops.push({ verb: 'add', object: this.chains.get(c)!.object })
    for (const kind of ['set', 'map'] as const) {
      for (const s of sets) if (this.sets.get(s)!.object.kind === kind) ops.push({ verb: 'add', object: this.sets.get(s)!.object })
    }
    for (const c of chains) for (const r of this.chains.get(c)!.rules) ops.push({ verb: 'add', object: r })
    for (const s of sets) {
      const elements = this.sets.get(s)!.elements
      for (const k of byName(elements)) ops.push({ verb: 'add', object: elements.get(k)! })
    }
    return ops.map((op) => operationText(op, this.family, this.name)).join('\n') + '\n'
  }
}
