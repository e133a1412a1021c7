// Evaluates a packet against an nftables ruleset the way netfilter runs it: at each hook the
// packet passes, every base chain registered there (across tables of its family and inet) in
// priority order; accept ends one base chain, drop and reject end the packet. nat chains run
// only for the first packet of a connection (ct state new) and, per hook, only until one has
// set up a binding, as nf_nat does. Rules are compiled once into closures; sets and verdict maps
// are hash maps (set-index.ts), so a lookup costs the same at 10 or 10,000 services.
//
// Hooks, in kernel order:
//   prerouting packet: prerouting -> route -> local:  input
//                                          -> remote: forward -> postrouting
//   output packet:     output -> postrouting -> (to a local address, back in on lo:
//                                                prerouting and input, nat chains skipped)

import { rejectUnknownKeys } from '../../util/known-keys.js'
import { show } from '../../util/show.js'
import { seededRandom, type RandomSource } from '../../util/random.js'
import { addrKey, formatAddr, parseAddr, type Addr, LOOPBACK_V4, LOOPBACK_V6, cidrContains, MULTICAST_V4, MULTICAST_V6 } from '../../util/address-words.js'
import { PROTOCOLS } from '../../iptables/save/extensions.js'
import { applyNftCommands, chainTargets, elementKeyText, parseNftRuleset, setRefs } from './apply.js'
import { NftParseError } from './errors.js'
import { newTable, parseNftCommands } from './parser.js'
import { servicePortFromNftChain } from './kube-proxy-names.js'
import { serializeNftRuleset } from './serialize.js'
import { KEY_TYPE_KINDS, LiteralError, SetIndex, type PartKind, type PartValue } from './set-index.js'
import type { NftChain, NftCommand, NftElement, NftExpr, NftFamily, NftHook, NftRule, NftRuleset, NftSet, NftSetExpr, NftSetRef, NftStatement, NftTable } from './types.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export type NftPacketHook = 'output' | 'prerouting'
export type NftCtState = 'new' | 'established' | 'related' | 'invalid' | 'untracked'

export interface NftPacket {
  src: string
  dst: string
  sport?: number
  dport?: number
  /** 'tcp' / 'UDP' / 'sctp' / 'icmp' or an IP protocol number */
  protocol: string | number
  /** where the packet enters: sent by a local process (output) or arriving (prerouting) */
  hook: NftPacketHook
  /** seconds on the caller's virtual clock (dynamic set timeouts); default 0 */
  now?: number
  mark?: number
  /** conntrack state (default new: nat chains run; anything else skips them, as the kernel does) */
  ctstate?: NftCtState
  ctmark?: number
  iifname?: string
  oifname?: string
  /** bytes, for counters (default 60) */
  length?: number
}

/** A rule's identity in the loaded ruleset. */
export interface NftRuleRef {
  /** "ip kube-proxy" */
  readonly table: string
  readonly chain: string
  /** 0-based position in the chain */
  readonly index: number
  readonly handle?: number
  readonly line: number
  readonly rule: NftRule
}

/** One line of the walk, as `nft monitor trace` prints them. */
export interface NftTraceEntry {
  hook: NftHook
  table: string
  chain: string
  /** rule: a rule that matched (with the verdict it issued, or continue); policy: a base chain's end */
  kind: 'rule' | 'policy'
  rule?: NftRuleRef
  /** accept, drop, reject, jump X, goto X, return, continue, dnat, masquerade */
  verdict: string
}

export interface NftEvalResult {
  action: 'dnat' | 'reject' | 'drop' | 'accept'
  /** "ip:port" ("[ip]:port" for IPv6) when action is dnat */
  endpoint?: string
  masquerade: boolean
  /** masquerade / snat flags (fully-random, ...) */
  natFlags?: string[]
  snat?: string
  /** "ns/name:port" from kube-proxy's chain names or element comments */
  servicePort?: string
  /** for drop / reject: the element comment, rule comment or position that decided */
  reason?: string
  /** the packet mark at the end */
  mark: number
  /** the routing decision: sent from this node, delivered to it, or forwarded */
  path: 'output' | 'input' | 'forward'
  visited: NftTraceEntry[]
  /** rules on the walk with statements the evaluator does not interpret */
  unsupported: NftRuleRef[]
}

export interface NftCounter {
  ref: NftRuleRef
  packets: number
  bytes: number
}

export interface NftEvaluatorOptions {
  /** the node's own addresses: `fib ... type local` and the routing decision (loopback is always local) */
  localAddresses?: string[]
  random?: RandomSource
  /** seed of the built-in PRNG (numgen random) when `random` is not given; default 1 */
  seed?: number
  /** the clock reading at load: element timeouts in the ruleset count from here (default 0) */
  now?: number
  /** 'matched' (default) records the trace; 'none' skips it */
  trace?: 'matched' | 'none'
  /** what a statement the evaluator cannot interpret does: break the rule (default) or pass */
  unknown?: 'nomatch' | 'match'
  /** jump depth limit (the kernel's is 16 for jumps; default 64) */
  maxDepth?: number
}

const OPTION_KEYS = ['localAddresses', 'random', 'seed', 'now', 'trace', 'unknown', 'maxDepth'] as const satisfies ReadonlyArray<keyof NftEvaluatorOptions>

/** Thrown for a ruleset the evaluator cannot load (a literal that does not fit its set's type). */
export class NftEvalError extends Error {
  readonly code = 'INVALID'
  constructor(message: string) {
    super(message)
    this.name = 'NftEvalError'
  }
}

// ---- the packet as rules see it ----

interface PacketState {
  family: 4 | 6
  src: Addr
  dst: Addr
  proto: number
  sport: number
  dport: number
  mark: number
  ctstate: NftCtState
  ctmark: number
  iifname: string
  oifname: string
  length: number
  now: number
  hook: NftHook
  /** nat bindings set up: dst (prerouting/output) and src (input/postrouting) */
  natDst: boolean
  natSrc: boolean
  dnat?: string
  masquerade: boolean
  natFlags?: string[]
  snat?: string
}

const PORT_PROTOS = new Set([6, 17, 132, 136])
const L4_BY_NAME: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, udplite: 136, icmp: 1, icmpv6: 58 }

type Getter = (p: PacketState) => PartValue | undefined

// ---- compiled form ----

const BREAK = 0
const NEXT = 1
type StepResult = typeof BREAK | typeof NEXT | Verdict

interface Verdict {
  v: 'accept' | 'drop' | 'reject' | 'return' | 'jump' | 'goto' | 'continue'
  chain?: CompiledChain
  /** what the trace shows: "goto service-...", "dnat" */
  text: string
  /** the element comment of a verdict map hit (kube-proxy's "ns/svc:port") */
  comment?: string
}

type Step = (p: PacketState, w: Walk) => StepResult

interface CompiledRule {
  ref: NftRuleRef
  steps: Step[]
  unsupported: boolean
  /** every match of the rule */
  packets: number
  bytes: number
  /** what its `counter` statement counted */
  counterPackets: number
  counterBytes: number
}

interface CompiledChain {
  table: CompiledTable
  name: string
  chain: NftChain
  rules: CompiledRule[]
  servicePort: string | undefined
}

interface CompiledSet {
  set: NftSet
  index: SetIndex
  /** the literal elements by key text (what the ruleset lists; dynamic ones live in the index only) */
  elements: Map<string, NftElement>
}

interface CompiledTable {
  key: string
  family: NftFamily
  /** the table's own fields; its chains and sets are the maps below */
  table: NftTable
  chains: Map<string, CompiledChain>
  sets: Map<string, CompiledSet>
  /** how many rules and map elements jump or go to each chain */
  chainRefs: Map<string, number>
  /** how many rules use each named set or map */
  setRefs: Map<string, number>
}

function count(m: Map<string, number>, key: string, delta: number): void {
  const n = (m.get(key) ?? 0) + delta
  if (n === 0) m.delete(key)
  else m.set(key, n)
}

/** The commands apply() changes the compiled state with in place; any other makes it recompile (applyNftCommands). */
function incremental(c: NftCommand): boolean {
  switch (c.object) {
    case 'table': return (c.op === 'add' || c.op === 'create') && !('name' in c)
    case 'chain': return 'chain' in c ? c.chain.rules.length === 0 : true
    case 'set':
    case 'map': return true
    case 'rule': return c.op === 'add' && c.at === undefined
    case 'element': return true
    default: return false
  }
}

interface BaseChain {
  chain: CompiledChain
  type: 'filter' | 'nat' | 'route'
  priority: number
  policy: 'accept' | 'drop'
  order: number
}

interface Walk {
  visited: NftTraceEntry[]
  unsupported: NftRuleRef[]
  servicePort: string | undefined
  reason: string | undefined
  trace: boolean
}

function fail(msg: string): never {
  throw new NftEvalError(msg)
}

function formatEndpoint(a: Addr, port: number): string {
  return a.family === 6 ? `[${formatAddr(a)}]:${port}` : `${formatAddr(a)}:${port}`
}

export class NftEvaluator {
  /** The ruleset as loaded and changed by apply() (rebuilt from the compiled state when read after a change). */
  private view: NftRuleset | undefined
  private tables = new Map<string, CompiledTable>()
  private hooks = new Map<string, BaseChain[]>()
  /** registration order of base chains: equal priorities run in it */
  private hookOrder = 0
  private readonly local = new Set<string>()
  private readonly localList: Addr[] = []
  private readonly random: RandomSource
  private readonly traceOn: boolean
  private readonly unknownPasses: boolean
  private readonly maxDepth: number
  private readonly loadedAt: number

  constructor(input: NftRuleset | string, options: NftEvaluatorOptions = {}) {
    if (options === null || typeof options !== 'object') throw new SvcplaneTypeError(`options must be an object, got ${show(options)}`)
    rejectUnknownKeys('NftEvaluator options', options, OPTION_KEYS)
    const ruleset = typeof input === 'string' ? parseNftRuleset(input) : input
    if (!ruleset || !(ruleset.tables instanceof Map)) throw new SvcplaneTypeError(`ruleset must be nft text or a parsed NftRuleset, got ${show(input)}`)
    for (const a of options.localAddresses ?? []) {
      const addr = typeof a === 'string' ? parseAddr(a) : undefined
      if (!addr) throw new SvcplaneTypeError(`options.localAddresses: invalid address ${show(a)}`)
      this.local.add(addrKey(addr))
      this.localList.push(addr)
    }
    const random = options.random ?? seededRandom(options.seed ?? 1)
    if (typeof random !== 'function') throw new SvcplaneTypeError(`options.random must be a function returning numbers in [0, 1), got ${show(random)}`)
    this.random = random
    if (options.trace !== undefined && options.trace !== 'matched' && options.trace !== 'none') throw new SvcplaneTypeError(`options.trace must be "matched" or "none", got ${show(options.trace)}`)
    if (options.unknown !== undefined && options.unknown !== 'nomatch' && options.unknown !== 'match') throw new SvcplaneTypeError(`options.unknown must be "nomatch" or "match", got ${show(options.unknown)}`)
    if (options.maxDepth !== undefined && (!Number.isInteger(options.maxDepth) || options.maxDepth < 1)) throw new SvcplaneRangeError(`options.maxDepth must be an integer >= 1, got ${show(options.maxDepth)}`)
    this.traceOn = (options.trace ?? 'matched') !== 'none'
    this.unknownPasses = options.unknown === 'match'
    this.maxDepth = options.maxDepth ?? 64
    this.loadedAt = options.now ?? 0
    if (!Number.isFinite(this.loadedAt)) throw new SvcplaneRangeError(`options.now must be a finite number of seconds, got ${show(options.now)}`)

    for (const [key, t] of ruleset.tables) this.compileTable(key, t)
    this.view = ruleset
  }

  /** The ruleset as loaded and as apply() changed it since. */
  get ruleset(): NftRuleset {
    if (this.view === undefined) {
      const tables = new Map<string, NftTable>()
      for (const [key, ct] of this.tables) {
        const chains = new Map<string, NftChain>()
        for (const [name, cc] of ct.chains) chains.set(name, { ...cc.chain, rules: cc.rules.map((r) => r.ref.rule) })
        const sets = new Map<string, NftSet>()
        for (const [name, s] of ct.sets) sets.set(name, { ...s.set, elements: [...s.elements.values()] })
        tables.set(key, { ...ct.table, chains, sets })
      }
      this.view = { tables }
    }
    return this.view
  }

  // ---- compile ----

  private compileTable(key: string, t: NftTable): void {
    const ct: CompiledTable = { key, family: t.family, table: t, chains: new Map(), sets: new Map(), chainRefs: new Map(), setRefs: new Map() }
    this.tables.set(key, ct)
    for (const s of t.sets.values()) {
      const cs = this.newSet(s)
      for (const e of s.elements) {
        try {
          this.putElement(ct, cs, e)
        } catch (err) {
          if (err instanceof LiteralError) fail(`${key}: ${s.kind} ${s.name}: ${err.message}`)
          throw err
        }
      }
      ct.sets.set(s.name, cs)
    }
    for (const c of t.chains.values()) ct.chains.set(c.name, this.newChain(ct, c))
    for (const cc of ct.chains.values()) {
      cc.chain.rules.forEach((r, index) => {
        cc.rules.push(this.compileRule(ct, cc, r, index))
        this.noteRule(ct, r, +1)
      })
      this.registerBase(cc)
    }
  }

  private newSet(s: NftSet): CompiledSet {
    const kinds = s.keyType.map((k) => KEY_TYPE_KINDS[k] ?? 'str')
    const index = new SetIndex(kinds, s.flags.includes('dynamic') || s.flags.includes('timeout') ? s.size ?? 65535 : undefined)
    return { set: s, index, elements: new Map() }
  }

  private newChain(ct: CompiledTable, c: NftChain): CompiledChain {
    return { table: ct, name: c.name, chain: c, rules: [], servicePort: servicePortFromNftChain(c.name) }
  }

  /** Adds (or replaces) one literal element; throws LiteralError when it does not fit the set's type. */
  private putElement(ct: CompiledTable, cs: CompiledSet, e: NftElement): NftElement | undefined {
    const k = elementKeyText(e)
    const had = cs.elements.get(k)
    if (had !== undefined) {
      cs.index.removeElement(had)
      this.noteElement(ct, had, -1)
    }
    try {
      cs.index.addElement(e, this.loadedAt)
    } catch (err) {
      if (had !== undefined) {
        cs.index.addElement(had, this.loadedAt)
        this.noteElement(ct, had, +1)
      }
      throw err
    }
    cs.elements.set(k, e)
    this.noteElement(ct, e, +1)
    return had
  }

  private dropElement(ct: CompiledTable, cs: CompiledSet, e: NftElement): void {
    cs.index.removeElement(e)
    cs.elements.delete(elementKeyText(e))
    this.noteElement(ct, e, -1)
  }

  private noteRule(ct: CompiledTable, rule: NftRule, delta: number): void {
    for (const s of rule.statements) {
      for (const c of chainTargets(s)) count(ct.chainRefs, c, delta)
      for (const n of setRefs(s)) count(ct.setRefs, n, delta)
    }
  }

  private noteElement(ct: CompiledTable, e: NftElement, delta: number): void {
    if (e.data !== undefined) for (const c of chainTargets(e.data)) count(ct.chainRefs, c, delta)
  }

  /** Hooks a base chain in at its priority (kept sorted; equal priorities in registration order). */
  private registerBase(cc: CompiledChain): void {
    const b = cc.chain.base
    const family = cc.table.family
    if (!b || !(family === 'ip' || family === 'ip6' || family === 'inet') || b.hook === 'ingress' || b.hook === 'egress') return
    for (const fam of family === 'inet' ? [4, 6] : [family === 'ip' ? 4 : 6]) {
      const hk = `${fam} ${b.hook}`
      const list = this.hooks.get(hk) ?? []
      list.push({ chain: cc, type: b.type, priority: b.priority, policy: b.policy ?? 'accept', order: this.hookOrder++ })
      list.sort((x, y) => x.priority - y.priority || x.order - y.order)
      this.hooks.set(hk, list)
    }
  }

  private unregisterBase(cc: CompiledChain): void {
    for (const [hk, list] of this.hooks) {
      const i = list.findIndex((b) => b.chain === cc)
      if (i === -1) continue
      list.splice(i, 1)
      if (list.length === 0) this.hooks.delete(hk)
    }
  }

  private compileRule(t: CompiledTable, c: CompiledChain, rule: NftRule, index: number): CompiledRule {
    const ref: NftRuleRef = Object.freeze({ table: t.key, chain: c.name, index, ...(rule.handle !== undefined ? { handle: rule.handle } : {}), line: rule.line, rule })
    const cr: CompiledRule = { ref, steps: [], unsupported: false, packets: 0, bytes: 0, counterPackets: 0, counterBytes: 0 }
    for (const s of rule.statements) {
      let step: Step | undefined
      try {
        step = this.compileStatement(t, cr, s)
      } catch (err) {
        if (!(err instanceof LiteralError)) throw err
        step = undefined
      }
      if (!step) {
        cr.unsupported = true
        step = this.unknownPasses ? () => NEXT : () => BREAK
      }
      cr.steps.push(step)
    }
    return cr
  }

  private setOf(t: CompiledTable, name: string): CompiledSet {
    const s = t.sets.get(name)
    if (!s) fail(`${t.key}: set ${name} does not exist`)
    return s
  }

  private chainOf(t: CompiledTable, name: string): CompiledChain {
    const c = t.chains.get(name)
    if (!c) fail(`${t.key}: chain ${name} does not exist`)
    return c
  }

  /** kinds of the parts of a key expression (undefined: not interpretable) */
  private kindsOf(e: NftExpr): PartKind[] | undefined {
    if (e.kind === 'concat') {
      const out: PartKind[] = []
      for (const p of e.parts) {
        const k = this.kindsOf(p)
        if (!k || k.length !== 1) return undefined
        out.push(k[0]!)
      }
      return out
    }
    switch (e.kind) {
      case 'payload':
        if (e.field === 'saddr' || e.field === 'daddr') return ['addr']
        if (e.field === 'protocol' || e.field === 'nexthdr') return ['proto']
        return ['int']
      case 'meta':
        if (e.key === 'l4proto') return ['proto']
        if (e.key === 'mark' || e.key === 'length' || e.key === 'random') return ['int']
        return ['str']
      case 'ct': return e.key === 'mark' ? ['int'] : ['str']
      case 'fib': return ['str']
      case 'numgen': return ['int']
      case 'binop': return ['int']
      default: return undefined
    }
  }

  /** a function reading the expression's value from the packet (undefined when absent: the rule breaks) */
  private getter(e: NftExpr): Getter | undefined {
    switch (e.kind) {
      case 'payload': {
        const { protocol: proto, field } = e
        if (proto === 'ip' || proto === 'ip6') {
          const fam = proto === 'ip' ? 4 : 6
          if (field === 'saddr') return (p) => (p.family === fam ? p.src : undefined)
          if (field === 'daddr') return (p) => (p.family === fam ? p.dst : undefined)
          if (field === 'protocol' || field === 'nexthdr') return (p) => (p.family === fam ? p.proto : undefined)
          return undefined
        }
        const need = L4_BY_NAME[proto]
        if (proto !== 'th' && need === undefined) return undefined
        if (field === 'sport') return (p) => (PORT_PROTOS.has(p.proto) && (need === undefined || p.proto === need) ? p.sport : undefined)
        if (field === 'dport') return (p) => (PORT_PROTOS.has(p.proto) && (need === undefined || p.proto === need) ? p.dport : undefined)
        return undefined
      }
      case 'meta':
        switch (e.key) {
          case 'l4proto': return (p) => p.proto
          case 'mark': return (p) => p.mark
          case 'nfproto': return (p) => (p.family === 4 ? 'ipv4' : 'ipv6')
          // interfaces by name (iif / oif compare indexes in the kernel; names stand in for them here)
          case 'iifname':
          case 'iif': return (p) => p.iifname
          case 'oifname':
          case 'oif': return (p) => p.oifname
          case 'length': return (p) => p.length
          // what iptables-nft writes for -m statistic --mode random
          case 'random': return () => Math.min(0xffffffff, Math.floor(this.random() * 4294967296))
          default: return undefined
        }
      case 'ct':
        if (e.key === 'state') return (p) => p.ctstate
        if (e.key === 'mark') return (p) => p.ctmark
        // the NAT bits of the connection so far (iptables-nft writes `ct status dnat` for --ctstatus DNAT)
        if (e.key === 'status') return (p) => (p.dnat !== undefined ? 'dnat' : p.masquerade || p.snat !== undefined ? 'snat' : '')
        return undefined
      case 'fib': {
        if (e.result !== 'type') return undefined
        const useSrc = e.flags.includes('saddr')
        if (!useSrc && !e.flags.includes('daddr')) return undefined
        return (p) => this.addrType(useSrc ? p.src : p.dst)
      }
      case 'numgen': {
        const { mod, offset = 0 } = e
        if (e.mode === 'random') return () => Math.min(mod - 1, Math.floor(this.random() * mod)) + offset
        let n = 0
        return () => (n++ % mod) + offset
      }
      case 'binop': {
        const left = this.getter(e.left)
        const right = e.right.kind === 'value' ? Number(e.right.text) : NaN
        if (!left || !Number.isInteger(right)) return undefined
        switch (e.op) {
          case '&': return (p) => { const v = left(p); return v === undefined ? undefined : ((v as number) & right) >>> 0 }
          case '|': return (p) => { const v = left(p); return v === undefined ? undefined : ((v as number) | right) >>> 0 }
          case '^': return (p) => { const v = left(p); return v === undefined ? undefined : ((v as number) ^ right) >>> 0 }
          case '<<': return (p) => { const v = left(p); return v === undefined ? undefined : ((v as number) << right) >>> 0 }
          case '>>': return (p) => { const v = left(p); return v === undefined ? undefined : (v as number) >>> right }
        }
        return undefined
      }
      case 'value': {
        const n = Number(e.text)
        if (!e.quoted && Number.isInteger(n)) return () => n
        const a = parseAddr(e.text)
        if (a) return () => a
        return () => e.text
      }
      default:
        return undefined
    }
  }

  private addrType(a: Addr): string {
    if (this.isLocal(a)) return 'local'
    if (cidrContains(a.family === 4 ? MULTICAST_V4 : MULTICAST_V6, a)) return 'multicast'
    return 'unicast'
  }

  private isLocal(a: Addr): boolean {
    return this.local.has(addrKey(a)) || cidrContains(a.family === 4 ? LOOPBACK_V4 : LOOPBACK_V6, a)
  }

  /** a key reader for a (possibly concatenated) expression */
  private keyReader(e: NftExpr): ((p: PacketState) => PartValue[] | undefined) | undefined {
    const parts = e.kind === 'concat' ? e.parts : [e]
    const getters = parts.map((x) => this.getter(x))
    if (getters.some((g) => g === undefined)) return undefined
    const gs = getters as Getter[]
    // one scratch array per reader: the caller consumes the key before the next read
    const out: PartValue[] = new Array<PartValue>(gs.length)
    return (p) => {
      for (let i = 0; i < gs.length; i++) {
        const v = gs[i]!(p)
        if (v === undefined) return undefined
        out[i] = v
      }
      return out
    }
  }

  /** the index behind a set expression: named, or built now for an anonymous set / a literal */
  private indexFor(t: CompiledTable, target: NftExpr, kinds: PartKind[]): SetIndex | undefined {
    if (target.kind === 'setref') {
      const s = this.setOf(t, target.name)
      return s.index.kinds.length === kinds.length ? s.index : undefined
    }
    const index = new SetIndex(kinds)
    const elements: NftElement[] = target.kind === 'set' ? target.elements : [{ key: target }]
    for (const el of elements) index.addElement(el, this.loadedAt)
    return index
  }

  private verdictOf(t: CompiledTable, data: NftExpr | undefined, comment?: string): Verdict | undefined {
    if (!data || data.kind !== 'verdict') return undefined
    const v: Verdict = { v: data.verdict, text: data.chain !== undefined ? `${data.verdict} ${data.chain}` : data.verdict }
    if (data.chain !== undefined) v.chain = this.chainOf(t, data.chain)
    if (comment !== undefined) v.comment = comment
    return v
  }

  private compileStatement(t: CompiledTable, cr: CompiledRule, s: NftStatement): Step | undefined {
    switch (s.kind) {
      case 'verdict': {
        const v = this.verdictOf(t, s)!
        return () => v
      }
      case 'counter':
        return (p) => {
          cr.counterPackets += 1
          cr.counterBytes += p.length
          return NEXT
        }
      case 'match': {
        const kinds = this.kindsOf(s.left)
        const read = this.keyReader(s.left)
        if (!kinds || !read) return undefined
        if (s.op === '==' || s.op === '!=') {
          const index = this.indexFor(t, s.right, kinds)
          if (!index) return undefined
          const want = s.op === '=='
          return (p) => {
            const k = read(p)
            if (k === undefined) return BREAK
            return (index.lookup(k, p.now) !== undefined) === want ? NEXT : BREAK
          }
        }
        if (kinds.length !== 1 || s.right.kind !== 'value') return undefined
        const bound = kinds[0] === 'proto' ? PROTOCOLS[s.right.text] ?? Number(s.right.text) : Number(s.right.text)
        if (!Number.isInteger(bound) || kinds[0] === 'addr' || kinds[0] === 'str') return undefined
        const op = s.op
        return (p) => {
          const k = read(p)
          if (k === undefined) return BREAK
          const v = k[0] as number
          const ok = op === '<' ? v < bound : op === '>' ? v > bound : op === '<=' ? v <= bound : v >= bound
          return ok ? NEXT : BREAK
        }
      }
      case 'vmap': {
        const kinds = this.kindsOf(s.key)
        const read = this.keyReader(s.key)
        if (!kinds || !read) return undefined
        const index = this.indexFor(t, s.map, kinds)
        if (!index) return undefined
        // verdicts resolved once per element, on first use
        const verdicts = new WeakMap<NftElement, Verdict | null>()
        return (p) => {
          const k = read(p)
          if (k === undefined) return BREAK
          const e = index.lookup(k, p.now)
          if (!e) return BREAK
          let v = verdicts.get(e.element)
          if (v === undefined) {
            v = this.verdictOf(t, e.element.data, e.element.comment) ?? null
            verdicts.set(e.element, v)
          }
          return v ?? BREAK
        }
      }
      case 'assign': {
        // tracing and helpers do not change a verdict
        if ((s.target.kind === 'meta' && s.target.key === 'nftrace') || (s.target.kind === 'ct' && s.target.key === 'helper')) return () => NEXT
        const value = this.getter(s.value)
        if (!value) return undefined
        if (s.target.kind === 'meta' && s.target.key === 'mark') {
          return (p) => {
            const v = value(p)
            if (typeof v !== 'number') return BREAK
            p.mark = v >>> 0
            return NEXT
          }
        }
        if (s.target.kind === 'ct' && s.target.key === 'mark') {
          return (p) => {
            const v = value(p)
            if (typeof v !== 'number') return BREAK
            p.ctmark = v >>> 0
            return NEXT
          }
        }
        return undefined
      }
      case 'nat': return this.compileNat(t, s)
      case 'reject': {
        const v: Verdict = { v: 'reject', text: s.with !== undefined ? `reject with ${s.with}` : 'reject' }
        return () => v
      }
      case 'dynset': {
        const target = this.setOf(t, s.set)
        const read = this.keyReader(s.key)
        if (!read) return undefined
        const timeout = s.timeout ?? target.set.timeout
        const op = s.op
        return (p) => {
          const k = read(p)
          if (k === undefined) return BREAK
          return target.index.dynamicUpdate(op, k, p.now, timeout, () => ({ key: keyExpr(k) })) ? NEXT : BREAK
        }
      }
      case 'unknown': return undefined
    }
  }

  private compileNat(t: CompiledTable, s: Extract<NftStatement, { kind: 'nat' }>): Step | undefined {
    const flags = s.flags
    if (s.type === 'masquerade') {
      const v: Verdict = { v: 'accept', text: 'masquerade' }
      return (p) => {
        p.masquerade = true
        p.natSrc = true
        if (flags.length) p.natFlags = flags
        return v
      }
    }
    let port: number | undefined
    if (s.port) {
      if (s.port.kind !== 'value') return undefined
      const lo = Number(s.port.text.split('-')[0])
      if (!Number.isInteger(lo)) return undefined
      port = lo
    }
    let addr: ((p: PacketState) => Addr | undefined) | undefined
    if (s.addr) {
      if (s.addr.kind === 'value') {
        const a = parseAddr(s.addr.text)
        if (!a) return undefined
        addr = () => a
      } else if (s.addr.kind === 'map') {
        const kinds = this.kindsOf(s.addr.key)
        const read = this.keyReader(s.addr.key)
        if (!kinds || !read) return undefined
        const index = this.indexFor(t, s.addr.map as NftSetExpr | NftSetRef, kinds)
        if (!index) return undefined
        addr = (p) => {
          const k = read(p)
          const e = k && index.lookup(k, p.now)
          const d = e?.element.data
          return d?.kind === 'value' ? parseAddr(d.text) : undefined
        }
      } else {
        return undefined
      }
    }
    if (s.type === 'snat') {
      const v: Verdict = { v: 'accept', text: 'snat' }
      return (p) => {
        const a = addr?.(p)
        if (addr && !a) return BREAK
        p.snat = a ? (port !== undefined ? formatEndpoint(a, port) : formatAddr(a)) : undefined
        p.natSrc = true
        if (flags.length) p.natFlags = flags
        return v
      }
    }
    const v: Verdict = { v: 'accept', text: s.type }
    const redirect = s.type === 'redirect'
    return (p) => {
      let a = addr?.(p)
      if (addr && !a) return BREAK
      // redirect: to the node itself (loopback for locally sent packets)
      if (redirect) a = p.hook === 'output' ? (p.family === 4 ? LOOPBACK_ADDR4 : LOOPBACK_ADDR6) : this.firstLocal(p.family) ?? p.dst
      const dst = a ?? p.dst
      const dport = port ?? p.dport
      p.dst = dst
      p.dport = dport
      p.dnat = formatEndpoint(dst, dport)
      p.natDst = true
      return v
    }
  }

  private firstLocal(family: 4 | 6): Addr | undefined {
    return this.localList.find((a) => a.family === family)
  }

  // ---- evaluate ----

  /** Runs one packet through every hook it passes. */
  evaluate(packet: NftPacket): NftEvalResult {
    const p = this.packetState(packet)
    const w: Walk = { visited: [], unsupported: [], servicePort: undefined, reason: undefined, trace: this.traceOn }
    const natAllowed = p.ctstate === 'new'
    if (!natAllowed) {
      p.natDst = true
      p.natSrc = true
    }
    let verdict: 'accept' | 'drop' | 'reject' = 'accept'
    let path: NftEvalResult['path']
    const run = (hook: NftHook, skipNat = false) => {
      if (verdict === 'accept') verdict = this.runHook(hook, p, w, skipNat)
    }
    if (packet.hook === 'output') {
      path = 'output'
      run('output')
      run('postrouting')
      // delivered to this node: back in through lo (the nat bindings are already made)
      if (this.isLocal(p.dst)) {
        run('prerouting', true)
        run('input', true)
      }
    } else {
      run('prerouting')
      const local = this.isLocal(p.dst)
      path = local ? 'input' : 'forward'
      if (local) run('input')
      else {
        run('forward')
        run('postrouting')
      }
    }
    const result: NftEvalResult = { action: 'accept', masquerade: p.masquerade, mark: p.mark, path, visited: w.visited, unsupported: w.unsupported }
    if (p.natFlags) result.natFlags = p.natFlags
    if (p.snat !== undefined) result.snat = p.snat
    if (w.servicePort !== undefined) result.servicePort = w.servicePort
    if (verdict === 'accept') {
      if (p.dnat !== undefined) {
        result.action = 'dnat'
        result.endpoint = p.dnat
      }
    } else {
      result.action = verdict
      if (w.reason !== undefined) result.reason = w.reason
    }
    return result
  }

  private packetState(packet: NftPacket): PacketState {
    if (packet === null || typeof packet !== 'object') throw new SvcplaneTypeError(`packet must be an object, got ${show(packet)}`)
    for (const f of ['src', 'dst'] as const) if (typeof packet[f] !== 'string') throw new SvcplaneTypeError(`packet.${f} must be an IP address string, got ${show(packet[f])}`)
    const src = parseAddr(packet.src)
    if (!src) throw new SvcplaneTypeError(`packet.src: invalid address ${show(packet.src)}`)
    const dst = parseAddr(packet.dst)
    if (!dst) throw new SvcplaneTypeError(`packet.dst: invalid address ${show(packet.dst)}`)
    if (src.family !== dst.family) throw new SvcplaneTypeError(`packet.src ${packet.src} and packet.dst ${packet.dst} are of different families`)
    let proto: number
    if (typeof packet.protocol === 'number') {
      if (!Number.isInteger(packet.protocol) || packet.protocol < 0 || packet.protocol > 255) throw new SvcplaneRangeError(`packet.protocol must be 0-255, got ${show(packet.protocol)}`)
      proto = packet.protocol
    } else if (typeof packet.protocol === 'string') {
      const n = PROTOCOLS[packet.protocol.toLowerCase()]
      if (n === undefined) throw new SvcplaneTypeError(`packet.protocol: unknown protocol ${show(packet.protocol)}`)
      proto = n
    } else {
      throw new SvcplaneTypeError(`packet.protocol must be a name or an IP protocol number, got ${show(packet.protocol)}`)
    }
    if (packet.hook !== 'output' && packet.hook !== 'prerouting') throw new SvcplaneTypeError(`packet.hook must be "output" or "prerouting", got ${show(packet.hook)}`)
    const int = (name: string, v: unknown, max: number, dflt: number): number => {
      if (v === undefined) return dflt
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new SvcplaneTypeError(`packet.${name} must be an integer, got ${show(v)}`)
      if (v < 0 || v > max) throw new SvcplaneRangeError(`packet.${name} must be 0-${max}, got ${v}`)
      return v
    }
    const now = packet.now ?? 0
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new SvcplaneRangeError(`packet.now must be a finite number of seconds, got ${show(packet.now)}`)
    const ctstate = packet.ctstate ?? 'new'
    if (!['new', 'established', 'related', 'invalid', 'untracked'].includes(ctstate)) throw new SvcplaneTypeError(`packet.ctstate must be new, established, related, invalid or untracked, got ${show(ctstate)}`)
    for (const f of ['iifname', 'oifname'] as const) if (packet[f] !== undefined && typeof packet[f] !== 'string') throw new SvcplaneTypeError(`packet.${f} must be a string, got ${show(packet[f])}`)
    return {
      family: src.family, src, dst, proto,
      sport: int('sport', packet.sport, 65535, 0), dport: int('dport', packet.dport, 65535, 0),
      mark: int('mark', packet.mark, 0xffffffff, 0), ctmark: int('ctmark', packet.ctmark, 0xffffffff, 0),
      ctstate, iifname: packet.iifname ?? '', oifname: packet.oifname ?? '', length: int('length', packet.length, 65535, 60),
      now, hook: packet.hook, natDst: false, natSrc: false, masquerade: false,
    }
  }

  /** Runs the base chains of one hook in priority order; returns the packet's fate there. */
  private runHook(hook: NftHook, p: PacketState, w: Walk, skipNat: boolean): 'accept' | 'drop' | 'reject' {
    const list = this.hooks.get(`${p.family} ${hook}`)
    if (!list) return 'accept'
    p.hook = hook
    const dstManip = hook === 'prerouting' || hook === 'output'
    let sawNat = false
    for (const base of list) {
      if (base.type === 'nat') {
        if (skipNat || (dstManip ? p.natDst : p.natSrc)) continue
        sawNat = true
      }
      const v = this.runChain(base, hook, p, w)
      if (v !== 'accept') return v
    }
    // the null binding: later nat chains for this manip type are not consulted
    if (sawNat) {
      if (dstManip) p.natDst = true
      else p.natSrc = true
    }
    return 'accept'
  }

  private runChain(base: BaseChain, hook: NftHook, p: PacketState, w: Walk): 'accept' | 'drop' | 'reject' {
    const stack: Array<{ chain: CompiledChain; i: number }> = []
    let chain = base.chain
    let i = 0
    const tableKey = chain.table.key
    const policy = (): 'accept' | 'drop' | 'reject' => {
      if (w.trace) w.visited.push({ hook, table: tableKey, chain: base.chain.name, kind: 'policy', verdict: base.policy })
      if (base.policy === 'drop') w.reason = `${tableKey} ${base.chain.name} policy drop`
      return base.policy
    }
    for (;;) {
      if (i >= chain.rules.length) {
        const top = stack.pop()
        if (!top) return policy()
        chain = top.chain
        i = top.i
        continue
      }
      const r = chain.rules[i++]!
      let res: StepResult = NEXT
      for (const step of r.steps) {
        res = step(p, w)
        if (res !== NEXT) break
      }
      if (r.unsupported) w.unsupported.push(r.ref)
      if (res === BREAK) continue
      r.packets += 1
      r.bytes += p.length
      if (res === NEXT) {
        if (w.trace) w.visited.push({ hook, table: tableKey, chain: chain.name, kind: 'rule', rule: r.ref, verdict: 'continue' })
        continue
      }
      if (w.trace) w.visited.push({ hook, table: tableKey, chain: chain.name, kind: 'rule', rule: r.ref, verdict: res.text })
      switch (res.v) {
        case 'continue':
          break
        case 'accept':
          return 'accept'
        case 'drop':
        case 'reject':
          w.reason = r.ref.rule.comment ?? (res.comment !== undefined ? `${chain.name}: verdict map element "${res.comment}"` : `${tableKey} ${chain.name} rule ${r.ref.index + 1}`)
          if (res.comment !== undefined) w.servicePort = res.comment
          return res.v
        case 'return': {
          const top = stack.pop()
          if (!top) return policy()
          chain = top.chain
          i = top.i
          break
        }
        case 'jump':
        case 'goto': {
          const target = res.chain!
          if (res.v === 'jump') {
            if (stack.length >= this.maxDepth) throw new SvcplaneRangeError(`jump depth exceeds ${this.maxDepth} at ${tableKey} ${chain.name} rule ${r.ref.index + 1} (line ${r.ref.line})`)
            stack.push({ chain, i })
          }
          // a vmap element comment names the service port of a no-endpoints verdict
          if (res.comment !== undefined) w.servicePort = res.comment
          if (target.servicePort !== undefined) w.servicePort = target.servicePort
          chain = target
          i = 0
          break
        }
      }
    }
  }

  // ---- updates ----

  /**
   * Applies one `nft -f` transaction (its text, or parsed commands) to the loaded ruleset, all
   * or nothing, with nft's checks (objects exist before they are used, a chain or set still
   * referenced cannot be deleted). Tables, chains, sets, rules and elements are changed in place,
   * so a transaction costs what it touches, not the size of the ruleset: kube-proxy's commands
   * (add, flush, delete of chains and sets, add rule, element add and delete) all are; any other
   * command (insert or replace of a rule, flush ruleset, table blocks) recompiles the ruleset.
   * Counters and dynamic set elements stay. Jump loops are caught when a packet walks them
   * (the depth limit), not here. Throws NftParseError (with the command's line).
   */
  apply(commands: NftCommand[] | string): void {
    const cmds = typeof commands === 'string' ? parseNftCommands(commands) : commands
    if (!Array.isArray(cmds)) throw new SvcplaneTypeError(`commands must be nft text or parsed NftCommands, got ${show(commands)}`)
    if (!cmds.every(incremental)) return this.reload(applyNftCommands(this.ruleset, cmds))
    const undo: (() => void)[] = []
    let line = 0
    try {
      for (const c of cmds) {
        line = c.line
        this.applyOne(c, undo)
      }
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!()
      if (err instanceof NftEvalError) throw new NftParseError(line, err.message)
      throw err
    }
    if (undo.length > 0) this.view = undefined
  }

  /** Recompiles from a ruleset, keeping the counters of the rules it still has and the dynamic set elements. */
  private reload(next: NftRuleset): void {
    const [tables, hooks, order] = [this.tables, this.hooks, this.hookOrder]
    const old = new Map<NftRule, CompiledRule>()
    for (const r of this.allRules()) old.set(r.ref.rule, r)
    this.tables = new Map()
    this.hooks = new Map()
    try {
      for (const [key, t] of next.tables) this.compileTable(key, t)
    } catch (err) {
      ;[this.tables, this.hooks, this.hookOrder] = [tables, hooks, order]
      throw err
    }
    for (const r of this.allRules()) {
      const o = old.get(r.ref.rule)
      if (o) ({ packets: r.packets, bytes: r.bytes, counterPackets: r.counterPackets, counterBytes: r.counterBytes } = o)
    }
    for (const [key, t] of this.tables) {
      const was = tables.get(key)
      if (!was) continue
      for (const [name, s] of t.sets) {
        const o = was.sets.get(name)
        if (o && o.set.keyType.join('.') === s.set.keyType.join('.')) s.index.adoptDynamic(o.index, this.loadedAt)
      }
    }
    this.view = next
  }

  private tableOf(family: NftFamily, name: string, line: number): CompiledTable {
    const t = this.tables.get(`${family} ${name}`)
    if (!t) throw new NftParseError(line, `table ${family} ${name} does not exist`)
    return t
  }

  private chainIn(t: CompiledTable, name: string, line: number): CompiledChain {
    const c = t.chains.get(name)
    if (!c) throw new NftParseError(line, `chain ${name} does not exist in table ${t.key}`)
    return c
  }

  private setIn(t: CompiledTable, name: string, line: number): CompiledSet {
    const s = t.sets.get(name)
    if (!s) throw new NftParseError(line, `set ${name} does not exist in table ${t.key}`)
    return s
  }

  private applyOne(cmd: NftCommand, undo: (() => void)[]): void {
    const line = cmd.line
    switch (cmd.object) {
      case 'table': {
        if (!('table' in cmd)) return
        const key = `${cmd.table.family} ${cmd.table.name}`
        const found = this.tables.get(key)
        const fields = (t: NftTable): NftTable => ({
          ...t,
          ...(cmd.table.comment !== undefined ? { comment: cmd.table.comment } : {}),
          ...(cmd.table.flags !== undefined ? { flags: cmd.table.flags } : {}),
          ...(cmd.table.handle !== undefined ? { handle: cmd.table.handle } : {}),
        })
        if (found) {
          if (cmd.op === 'create') throw new NftParseError(line, `table ${key} already exists`)
          const was = found.table
          found.table = fields(was)
          undo.push(() => { found.table = was })
          return
        }
        this.compileTable(key, fields(newTable(cmd.table.family, cmd.table.name, cmd.table.line)))
        undo.push(() => this.tables.delete(key))
        return
      }
      case 'chain': {
        const t = this.tableOf(cmd.family, cmd.table, line)
        if ('chain' in cmd) return this.addChain(t, cmd.chain, cmd.op === 'create', line, undo)
        const c = this.chainIn(t, cmd.name, line)
        const rules = c.rules
        for (const r of rules) this.noteRule(t, r.ref.rule, -1)
        c.rules = []
        undo.push(() => { c.rules = rules; for (const r of rules) this.noteRule(t, r.ref.rule, +1) })
        if (cmd.op === 'flush') return
        // the kernel deletes a chain with its rules, but not while something jumps to it
        if (t.chainRefs.has(c.name)) throw new NftParseError(line, `chain ${c.name} is still jumped to`)
        t.chains.delete(c.name)
        this.unregisterBase(c)
        undo.push(() => { t.chains.set(c.name, c); this.registerBase(c) })
        return
      }
      case 'set':
      case 'map': {
        const t = this.tableOf(cmd.family, cmd.table, line)
        if ('set' in cmd) return this.addSet(t, cmd.set, cmd.op === 'create', line, undo)
        const s = this.setIn(t, cmd.name, line)
        if (cmd.object !== s.set.kind) throw new NftParseError(line, `${s.set.name} is a ${s.set.kind}, not a ${cmd.object}`)
        if (cmd.op === 'delete' && t.setRefs.has(s.set.name)) throw new NftParseError(line, `${s.set.kind} ${s.set.name} is still used by a rule`)
        const elements = s.elements
        for (const e of elements.values()) this.noteElement(t, e, -1)
        const held = s.index.takeAll()
        s.elements = new Map()
        undo.push(() => { s.index.restore(held); s.elements = elements; for (const e of elements.values()) this.noteElement(t, e, +1) })
        if (cmd.op === 'delete') {
          t.sets.delete(s.set.name)
          undo.push(() => t.sets.set(s.set.name, s))
        }
        return
      }
      case 'rule': {
        if (cmd.op !== 'add' || !('rule' in cmd)) return
        const t = this.tableOf(cmd.family, cmd.table, line)
        const c = this.chainIn(t, cmd.chain, line)
        for (const s of cmd.rule.statements) {
          for (const target of chainTargets(s)) this.chainIn(t, target, line)
          for (const name of setRefs(s)) this.setIn(t, name, line)
        }
        const cr = this.compileRule(t, c, cmd.rule, c.rules.length)
        c.rules.push(cr)
        this.noteRule(t, cmd.rule, +1)
        undo.push(() => { c.rules.pop(); this.noteRule(t, cmd.rule, -1) })
        return
      }
      case 'element': {
        const t = this.tableOf(cmd.family, cmd.table, line)
        const s = this.setIn(t, cmd.set, line)
        for (const e of cmd.elements) {
          const k = elementKeyText(e)
          const had = s.elements.get(k)
          if (cmd.op === 'delete') {
            if (had === undefined) throw new NftParseError(line, `element ${k} does not exist in ${s.set.name}`)
            this.dropElement(t, s, had)
            undo.push(() => this.putElement(t, s, had))
            continue
          }
          if (s.set.kind === 'map' && e.data === undefined) throw new NftParseError(line, `map ${s.set.name}: element ${k} has no data (KEY : VALUE)`)
          if (s.set.kind === 'set' && e.data !== undefined) throw new NftParseError(line, `set ${s.set.name}: element ${k} has data but ${s.set.name} is a set, not a map`)
          if (had !== undefined && cmd.op === 'create') throw new NftParseError(line, `element ${k} already exists in ${s.set.name}`)
          if (e.data !== undefined) for (const target of chainTargets(e.data)) this.chainIn(t, target, line)
          this.putLiteral(t, s, e, line)
          undo.push(() => {
            this.dropElement(t, s, e)
            if (had !== undefined) this.putElement(t, s, had)
          })
        }
        return
      }
    }
  }

  private putLiteral(t: CompiledTable, s: CompiledSet, e: NftElement, line: number): void {
    try {
      this.putElement(t, s, e)
    } catch (err) {
      if (err instanceof LiteralError) throw new NftParseError(line, `${t.key}: ${s.set.kind} ${s.set.name}: ${err.message}`)
      throw err
    }
  }

  private addChain(t: CompiledTable, chain: NftChain, create: boolean, line: number, undo: (() => void)[]): void {
    const c = t.chains.get(chain.name)
    if (!c) {
      const cc = this.newChain(t, { ...chain, rules: [] })
      t.chains.set(chain.name, cc)
      this.registerBase(cc)
      undo.push(() => { t.chains.delete(chain.name); this.unregisterBase(cc) })
      return
    }
    if (create) throw new NftParseError(line, `chain ${chain.name} already exists`)
    const was = c.chain
    if (chain.base && was.base && (was.base.type !== chain.base.type || was.base.hook !== chain.base.hook)) {
      throw new NftParseError(line, `chain ${chain.name} is already a ${was.base.type} chain on hook ${was.base.hook}`)
    }
    const next: NftChain = { ...was }
    if (chain.base) {
      next.base = { ...chain.base, policy: chain.base.policy ?? was.base?.policy }
      if (next.base.policy === undefined) delete next.base.policy
    }
    if (chain.comment !== undefined) next.comment = chain.comment
    if (chain.handle !== undefined) next.handle = chain.handle
    const rehook = JSON.stringify(next.base) !== JSON.stringify(was.base)
    const set = (x: NftChain) => {
      if (rehook) this.unregisterBase(c)
      c.chain = x
      if (rehook) this.registerBase(c)
    }
    set(next)
    undo.push(() => set(was))
  }

  private addSet(t: CompiledTable, set: NftSet, create: boolean, line: number, undo: (() => void)[]): void {
    let s = t.sets.get(set.name)
    if (!s) {
      const fresh = this.newSet({ ...set, elements: [] })
      t.sets.set(set.name, fresh)
      undo.push(() => t.sets.delete(set.name))
      s = fresh
    } else {
      if (create) throw new NftParseError(line, `${set.kind} ${set.name} already exists`)
      if (s.set.kind !== set.kind || s.set.keyType.join('.') !== set.keyType.join('.') || s.set.dataType !== set.dataType) {
        throw new NftParseError(line, `${set.kind} ${set.name} already exists with another type`)
      }
    }
    const target = s
    for (const e of set.elements) {
      const had = target.elements.get(elementKeyText(e))
      this.putLiteral(t, target, e, line)
      undo.push(() => {
        this.dropElement(t, target, e)
        if (had !== undefined) this.putElement(t, target, had)
      })
    }
  }

  // ---- inspection ----

  /** Every compiled rule: tables, their chains and each chain's rules, in order. */
  private *allRules(): Generator<CompiledRule> {
    for (const t of this.tables.values()) for (const c of t.chains.values()) yield* c.rules
  }

  /** Counters of the rules that have a `counter` statement, like `nft list ruleset` shows them. */
  counters(): NftCounter[] {
    return [...this.allRules()].filter((r) => r.ref.rule.statements.some((s) => s.kind === 'counter')).map((r) => ({ ref: r.ref, packets: r.counterPackets, bytes: r.counterBytes }))
  }

  /** How many packets matched each rule (every rule, counter statement or not). */
  hits(): NftCounter[] {
    return [...this.allRules()].map((r) => ({ ref: r.ref, packets: r.packets, bytes: r.bytes }))
  }

  /** The rules of a chain, in order. */
  chainRules(table: string, chain: string): NftRuleRef[] {
    const c = this.tables.get(table)?.chains.get(chain)
    if (!c) throw new SvcplaneRangeError(`no chain ${chain} in table ${table}`)
    return c.rules.map((r) => r.ref)
  }

  /** The live elements of a set (dynamic ones included) with seconds left, at `now`. */
  setElements(table: string, set: string, now = 0): Array<{ key: string; expiresIn?: number; comment?: string }> {
    const s = this.tables.get(table)?.sets.get(set)
    if (!s) throw new SvcplaneRangeError(`no set ${set} in table ${table}`)
    return s.index.entries(now).map((e) => {
      const out: { key: string; expiresIn?: number; comment?: string } = { key: keyText(e.element) }
      if (e.expires !== undefined) out.expiresIn = e.expires - now
      if (e.element.comment !== undefined) out.comment = e.element.comment
      return out
    })
  }

  /** The ruleset as `nft list ruleset` prints it, with this evaluator's live counters. */
  listRuleset(options: { handles?: boolean } = {}): string {
    const byRule = new Map([...this.allRules()].map((r) => [r.ref.rule, r]))
    return serializeNftRuleset(this.ruleset, {
      handles: options.handles,
      counterOf: (rule) => {
        const r = byRule.get(rule)
        return r === undefined ? undefined : { packets: r.counterPackets, bytes: r.counterBytes }
      },
    })
  }

  /**
   * Takes over what the data path wrote into an earlier evaluator's dynamic sets (affinity
   * entries), for the sets both rulesets have with the same type, as the kernel keeps a set's
   * elements across transactions that do not touch it.
   */
  adoptDynamicState(from: NftEvaluator, now = 0): void {
    for (const [key, t] of this.tables) {
      const old = from.tables.get(key)
      if (!old) continue
      for (const [name, s] of t.sets) {
        const o = old.sets.get(name)
        if (o && o.set.keyType.join('.') === s.set.keyType.join('.')) s.index.adoptDynamic(o.index, now)
      }
    }
  }

  resetCounters(): void {
    for (const r of this.allRules()) r.packets = r.bytes = r.counterPackets = r.counterBytes = 0
  }
}

const LOOPBACK_ADDR4: Addr = { family: 4, w: [0x7f000001] }
const LOOPBACK_ADDR6: Addr = { family: 6, w: [0, 0, 0, 1] }

function partText(v: PartValue): string {
  return typeof v === 'object' ? formatAddr(v) : String(v)
}

function keyExpr(values: PartValue[]): NftExpr {
  if (values.length === 1) return { kind: 'value', text: partText(values[0]!) }
  return { kind: 'concat', parts: values.map((v) => ({ kind: 'value', text: partText(v) })) }
}

function keyText(e: NftElement): string {
  const k = e.key
  const one = (x: NftExpr) => (x.kind === 'value' ? x.text : '?')
  return k.kind === 'concat' ? k.parts.map(one).join(' . ') : one(k)
}
