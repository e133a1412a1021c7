// Parses nft text in both shapes a node has it in: the command form `nft -f` loads (`add table`,
// `add chain`, `add rule`, `add element`, `flush`, `delete`: knftables' dump form) and the block
// form `nft list ruleset` prints (`table ip t { chain c { type ...; policy accept; rules } }`,
// with counters and `# handle N`). Both give a list of commands; apply.ts turns them into a ruleset.

import { NftParseError } from './errors.js'
import { tokenize, type Token } from './tokenize.js'
import { canonicalLiteral, NAMED_PRIORITIES, parseDuration, parseInteger } from './values.js'
import { exprText } from './serialize.js'
import type {
  NftBaseChain, NftChain, NftChainType, NftCommand, NftElement, NftExpr, NftFamily, NftHook, NftNatStatement,
  NftRelOp, NftRule, NftSet, NftSetExpr, NftSetRef, NftStatement, NftTable, NftValue, NftVerdict,
} from './types.js'
import { SvcplaneTypeError } from '../../errors.js'

/** table objects kept as written: the evaluator does not need them to judge a packet */
const TABLE_OBJECTS = new Set(['flowtable', 'counter', 'quota', 'limit', 'ct', 'secmark', 'synproxy'])
const COMMANDS = new Set(['add', 'create', 'insert', 'replace', 'delete', 'flush', 'destroy'])
const FAMILIES = new Set<NftFamily>(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'])
const HOOKS = new Set<NftHook>(['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'])
const CHAIN_TYPES = new Set<NftChainType>(['filter', 'nat', 'route'])
const VERDICTS = new Set(['accept', 'drop', 'continue', 'return'])
const REL_OPS: Record<string, NftRelOp> = { '==': '==', eq: '==', '!=': '!=', ne: '!=', '<': '<', lt: '<', '>': '>', gt: '>', '<=': '<=', le: '<=', '>=': '>=', ge: '>=' }
const BINOPS: Record<string, '&' | '|' | '^' | '<<' | '>>'> = { '&': '&', and: '&', '|': '|', or: '|', '^': '^', xor: '^', '<<': '<<', lshift: '<<', '>>': '>>', rshift: '>>' }
const PAYLOAD_FIELDS: Record<string, Set<string>> = {
  ip: new Set(['saddr', 'daddr', 'protocol', 'version', 'ttl', 'length', 'id', 'dscp', 'ecn', 'checksum', 'hdrlength', 'frag-off']),
  ip6: new Set(['saddr', 'daddr', 'nexthdr', 'version', 'hoplimit', 'length', 'flowlabel', 'dscp', 'ecn']),
  th: new Set(['sport', 'dport']),
  tcp: new Set(['sport', 'dport', 'flags', 'sequence', 'ackseq', 'window', 'checksum', 'urgptr', 'doff']),
  udp: new Set(['sport', 'dport', 'length', 'checksum']),
  udplite: new Set(['sport', 'dport', 'checksum']),
  sctp: new Set(['sport', 'dport', 'vtag', 'checksum']),
  icmp: new Set(['type', 'code', 'checksum', 'id', 'sequence', 'mtu', 'gateway']),
  icmpv6: new Set(['type', 'code', 'checksum', 'id', 'sequence', 'mtu']),
}
/** meta keys that may be written without `meta` */
const BARE_META = new Set(['mark', 'iif', 'iifname', 'iiftype', 'oif', 'oifname', 'oiftype', 'skuid', 'skgid', 'priority', 'nftrace', 'rtclassid', 'cpu', 'iifgroup', 'oifgroup', 'cgroup'])
const NAT_FLAGS = new Set(['random', 'fully-random', 'persistent'])
/** words that start a statement, so an uninterpreted statement ends before them */
const STATEMENT_STARTS = new Set([
  'accept', 'drop', 'continue', 'return', 'jump', 'goto', 'counter', 'comment', 'reject', 'dnat', 'snat', 'masquerade', 'redirect',
  'meta', 'ct', 'ip', 'ip6', 'th', 'tcp', 'udp', 'sctp', 'udplite', 'icmp', 'icmpv6', 'fib', 'numgen', 'log', 'limit', 'update', 'notrack', 'queue',
  ...BARE_META,
])

class Parser {
  private i = 0
  constructor(private readonly toks: Token[], private readonly lastLine: number) {}

  private peek(k = 0): Token | undefined {
    return this.toks[this.i + k]
  }

  private line(): number {
    return this.peek()?.line ?? this.lastLine
  }

  private fail(message: string, tok = this.peek()): never {
    throw new NftParseError(tok?.line ?? this.lastLine, message)
  }

  private isWord(value?: string, k = 0): boolean {
    const t = this.peek(k)
    return t !== undefined && t.type === 'word' && (value === undefined || t.value === value)
  }

  private isPunct(value: string, k = 0): boolean {
    const t = this.peek(k)
    return t !== undefined && t.type === 'punct' && t.value === value
  }

  private word(what: string): string {
    const t = this.peek()
    if (!t || t.type !== 'word') this.fail(`expected ${what}, got ${describe(t)}`)
    this.i++
    return t.value
  }

  private string(what: string): string {
    const t = this.peek()
    if (!t || t.type !== 'string') this.fail(`expected ${what} (a quoted string), got ${describe(t)}`)
    this.i++
    return t.value
  }

  private integer(what: string): number {
    const t = this.peek()
    const v = t?.type === 'word' ? parseInteger(t.value) : undefined
    if (v === undefined) this.fail(`expected ${what} (an integer), got ${describe(t)}`)
    this.i++
    return v
  }

  private duration(what: string): number {
    const t = this.peek()
    const v = t?.type === 'word' ? parseDuration(t.value) : undefined
    if (v === undefined) this.fail(`expected ${what} (a duration like 10800s or 3h), got ${describe(t)}`)
    this.i++
    return v
  }

  private expectPunct(value: string): void {
    if (!this.isPunct(value)) this.fail(`expected "${value}", got ${describe(this.peek())}`)
    this.i++
  }

  private skipNewlines(): void {
    while (this.peek()?.type === 'nl') this.i++
  }

  private skipSeparators(): void {
    while (this.peek()?.type === 'nl' || this.isPunct(';')) this.i++
  }

  /** a `# handle N` token, if one is next */
  private handle(): number | undefined {
    const t = this.peek()
    if (t?.type !== 'handle') return undefined
    this.i++
    return Number(t.value)
  }

  private atStatementEnd(): boolean {
    const t = this.peek()
    return t === undefined || t.type === 'nl' || t.type === 'handle' || (t.type === 'punct' && (t.value === ';' || t.value === '}'))
  }

  /** the end of a command line: newline, `;` or the end of the text */
  private endCommand(): void {
    const t = this.peek()
    if (t === undefined) return
    if (t.type === 'nl' || (t.type === 'punct' && t.value === ';')) {
      this.i++
      return
    }
    this.fail(`unexpected ${describe(t)} at the end of the command`)
  }

  parseFile(): NftCommand[] {
    const out: NftCommand[] = []
    for (;;) {
      this.skipSeparators()
      const t = this.peek()
      if (!t) return out
      if (t.type !== 'word') this.fail(`expected a command, got ${describe(t)}`)
      if (t.value === 'table') {
        this.i++
        out.push({ op: 'block', object: 'table', table: this.tableBlock(t.line), line: t.line })
        continue
      }
      out.push(this.command())
    }
  }

  private familyAndName(what: string): { family: NftFamily; name: string } {
    // the family is optional (default ip): `add table t` and `add table ip t` are both valid
    if (this.isWord() && FAMILIES.has(this.peek()!.value as NftFamily) && this.isWord(undefined, 1)) {
      const family = this.word('family') as NftFamily
      return { family, name: this.word(`${what} name`) }
    }
    return { family: 'ip', name: this.word(`${what} name`) }
  }

  private command(): NftCommand {
    const start = this.peek()!
    const line = start.line
    const opWord = this.word('command')
    if (!COMMANDS.has(opWord)) this.fail(`unknown command "${opWord}"`, start)
    const op = opWord as 'add' | 'create' | 'insert' | 'replace' | 'delete' | 'flush' | 'destroy'
    const objTok = this.peek()
    const object = this.word('an object (table, chain, set, map, rule, element)')
    const bad = (): never => this.fail(`"${op} ${object}" is not a command`, objTok)
    if (object === 'ruleset') {
      if (op !== 'flush') bad()
      const family = this.isWord() ? this.word('family') as NftFamily : undefined
      if (family !== undefined && !FAMILIES.has(family)) this.fail(`unknown family "${family}"`)
      this.endCommand()
      return family === undefined ? { op: 'flush', object: 'ruleset', line } : { op: 'flush', object: 'ruleset', family, line }
    }
    if (TABLE_OBJECTS.has(object) && (op === 'add' || op === 'create')) {
      const kind = object === 'ct' ? `ct ${this.word('ct object kind')}` : object
      const { family, name: table } = this.familyAndName('table')
      const name = this.word(`${kind} name`)
      this.expectPunct('{')
      const value = { kind, name, body: this.rawBlock(objTok!), line }
      this.endCommand()
      return { op, object: 'object', family, table, value, line }
    }
    const { family, name: table } = this.familyAndName('table')
    if (object === 'table') {
      if (op === 'add' || op === 'create') {
        const t = newTable(family, table, line)
        if (this.isPunct('{')) {
          this.i++
          this.tableBody(t, true)
        }
        this.endCommand()
        return { op, object: 'table', table: t, line }
      }
      if (op !== 'flush' && op !== 'delete' && op !== 'destroy') bad()
      this.endCommand()
      return { op: op === 'flush' ? 'flush' : 'delete', object: 'table', family, name: table, line }
    }
    if (object === 'chain') {
      const name = this.word('chain name')
      if (op === 'add' || op === 'create') {
        const chain: NftChain = { name, rules: [], line }
        if (this.isPunct('{')) {
          this.i++
          this.chainBody(chain, false)
        }
        this.endCommand()
        return { op, object: 'chain', family, table, chain, line }
      }
      if (op !== 'flush' && op !== 'delete' && op !== 'destroy') bad()
      this.endCommand()
      return { op: op === 'flush' ? 'flush' : 'delete', object: 'chain', family, table, name, line }
    }
    if (object === 'set' || object === 'map') {
      const name = this.word(`${object} name`)
      if (op === 'add' || op === 'create') {
        this.expectPunct('{')
        const set = this.setBody(object, name, line)
        this.endCommand()
        return { op, object: 'set', family, table, set, line }
      }
      if (op !== 'flush' && op !== 'delete' && op !== 'destroy') bad()
      this.endCommand()
      return { op: op === 'flush' ? 'flush' : 'delete', object, family, table, name, line }
    }
    if (object === 'rule') {
      const chain = this.word('chain name')
      if (op === 'delete' || op === 'destroy') {
        if (!this.isWord('handle')) this.fail('expected "handle N" (rules are deleted by handle)')
        this.i++
        const handle = this.integer('rule handle')
        this.endCommand()
        return { op: 'delete', object: 'rule', family, table, chain, handle, line }
      }
      if (op !== 'add' && op !== 'insert' && op !== 'replace') return bad()
      let at: { by: 'index' | 'handle'; value: number } | undefined
      if (this.isWord('index')) {
        this.i++
        at = { by: 'index', value: this.integer('rule index') }
      } else if (this.isWord('handle') || this.isWord('position')) {
        this.i++
        at = { by: 'handle', value: this.integer('rule handle') }
      }
      if (op === 'replace' && at?.by !== 'handle') this.fail('"replace rule" needs "handle N"')
      const rule = this.rule(line)
      this.endCommand()
      return at ? { op, object: 'rule', family, table, chain, rule, at, line } : { op, object: 'rule', family, table, chain, rule, line }
    }
    if (object === 'element') {
      if (op !== 'add' && op !== 'create' && op !== 'delete' && op !== 'destroy') return bad()
      const set = this.word('set name')
      const elements = this.elementList()
      this.endCommand()
      return { op: op === 'destroy' ? 'delete' : op, object: 'element', family, table, set, elements, line }
    }
    return bad()
  }

  // ---- blocks ----

  private tableBlock(line: number): NftTable {
    const { family, name } = this.familyAndName('table')
    const t = newTable(family, name, line)
    this.expectPunct('{')
    this.tableBody(t, false)
    return t
  }

  /** after `{`: table declarations up to the closing `}` */
  private tableBody(t: NftTable, declarationsOnly: boolean): void {
    const h = this.handle()
    if (h !== undefined) t.handle = h
    for (;;) {
      this.skipSeparators()
      const tok = this.peek()
      if (!tok) this.fail(`table ${t.name}: missing "}"`)
      if (tok.type === 'punct' && tok.value === '}') {
        this.i++
        return
      }
      const kw = this.word('a table declaration')
      if (kw === 'comment') t.comment = this.string('table comment')
      else if (kw === 'flags') t.flags = this.commaList('table flags')
      else if (!declarationsOnly && kw === 'chain') {
        const chain: NftChain = { name: this.word('chain name'), rules: [], line: tok.line }
        this.expectPunct('{')
        this.chainBody(chain, true)
        if (t.chains.has(chain.name)) this.fail(`chain ${chain.name} is declared twice`, tok)
        t.chains.set(chain.name, chain)
      } else if (!declarationsOnly && (kw === 'set' || kw === 'map')) {
        const name = this.word(`${kw} name`)
        this.expectPunct('{')
        const set = this.setBody(kw, name, tok.line)
        if (t.sets.has(name)) this.fail(`set ${name} is declared twice`, tok)
        t.sets.set(name, set)
      } else if (!declarationsOnly && TABLE_OBJECTS.has(kw)) {
        // `ct helper NAME { ... }`, `ct timeout`, `ct expectation` carry a second keyword
        const kind = kw === 'ct' ? `ct ${this.word('ct object kind')}` : kw
        const name = this.word(`${kind} name`)
        this.expectPunct('{')
        this.handle()
        ;(t.objects ??= []).push({ kind, name, body: this.rawBlock(tok), line: tok.line })
      } else {
        this.fail(`unsupported table declaration "${kw}"`, tok)
      }
    }
  }

  /** after `{`: the text up to the matching `}`, statements joined with "; " */
  private rawBlock(start: Token): string {
    const parts: string[] = []
    let cur: string[] = []
    let depth = 0
    const flush = () => {
      if (cur.length) parts.push(cur.join(' ').replace(/ , /g, ', ').replace(/\{ /g, '{ ').replace(/ \}/g, ' }'))
      cur = []
    }
    for (;;) {
      const x = this.peek()
      if (!x) this.fail('missing "}"', start)
      this.i++
      if (x.type === 'punct' && x.value === '}') {
        if (depth === 0) break
        depth--
      }
      if (x.type === 'punct' && x.value === '{') depth++
      if (depth === 0 && (x.type === 'nl' || (x.type === 'punct' && x.value === ';'))) {
        flush()
        continue
      }
      if (x.type === 'nl' || x.type === 'handle') continue
      cur.push(x.type === 'string' ? `"${x.value}"` : x.value)
    }
    flush()
    return parts.map((p) => `${p};`).join(' ')
  }

  /** after `{`: a chain's spec (type/hook/priority/policy/comment) and, in a block, its rules */
  private chainBody(chain: NftChain, withRules: boolean): void {
    const h = this.handle()
    if (h !== undefined) chain.handle = h
    for (;;) {
      this.skipSeparators()
      const tok = this.peek()
      if (!tok) this.fail(`chain ${chain.name}: missing "}"`)
      if (tok.type === 'punct' && tok.value === '}') {
        this.i++
        return
      }
      if (tok.type === 'word' && tok.value === 'type') {
        this.i++
        chain.base = this.baseChain()
      } else if (tok.type === 'word' && tok.value === 'policy') {
        this.i++
        const p = this.word('policy')
        if (p !== 'accept' && p !== 'drop') this.fail(`policy must be accept or drop, got "${p}"`, tok)
        if (!chain.base) this.fail('a policy needs a base chain (type ... hook ...)', tok)
        chain.base.policy = p
      } else if (tok.type === 'word' && tok.value === 'comment' && this.peek(1)?.type === 'string') {
        this.i++
        chain.comment = this.string('chain comment')
      } else if (tok.type === 'word' && tok.value === 'devices' || tok.type === 'word' && tok.value === 'device') {
        this.i++
        if (this.isWord('=')) this.i++
        if (!chain.base) this.fail('a device needs a base chain', tok)
        chain.base.device = this.peek()?.type === 'string' ? this.string('device') : this.word('device')
      } else if (withRules) {
        chain.rules.push(this.rule(tok.line))
      } else {
        this.fail(`unexpected ${describe(tok)} in a chain declaration`, tok)
      }
    }
  }

  private baseChain(): NftBaseChain {
    const typeTok = this.peek()
    const type = this.word('chain type') as NftChainType
    if (!CHAIN_TYPES.has(type)) this.fail(`unknown chain type "${type}"`, typeTok)
    if (!this.isWord('hook')) this.fail(`expected "hook", got ${describe(this.peek())}`)
    this.i++
    const hookTok = this.peek()
    const hook = this.word('hook') as NftHook
    if (!HOOKS.has(hook)) this.fail(`unknown hook "${hook}"`, hookTok)
    const base: NftBaseChain = { type, hook, priority: 0 }
    if (this.isWord('device')) {
      this.i++
      base.device = this.peek()?.type === 'string' ? this.string('device') : this.word('device')
    }
    if (!this.isWord('priority')) this.fail(`expected "priority", got ${describe(this.peek())}`)
    this.i++
    const prioTok = this.peek()
    const parts: string[] = []
    while (!this.atStatementEnd() && !this.isWord('policy')) parts.push(this.word('priority'))
    const text = parts.join(' ')
    const m = /^(-?\d+|[a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(text)
    const baseValue = m ? (/^-?\d+$/.test(m[1]!) ? Number(m[1]) : NAMED_PRIORITIES[m[1]!]) : undefined
    if (!m || baseValue === undefined) this.fail(`invalid priority "${text}"`, prioTok)
    base.priority = baseValue + (m[2] ? (m[2] === '-' ? -1 : 1) * Number(m[3]) : 0)
    if (!/^-?\d+$/.test(m[1]!)) base.priorityText = m[2] ? `${m[1]} ${m[2]} ${m[3]}` : m[1]!
    return base
  }

  /** after `{`: a set or map declaration */
  private setBody(kind: 'set' | 'map', name: string, line: number): NftSet {
    const set: NftSet = { kind, name, keyType: [], flags: [], elements: [], line }
    const h = this.handle()
    if (h !== undefined) set.handle = h
    for (;;) {
      this.skipSeparators()
      const tok = this.peek()
      if (!tok) this.fail(`${kind} ${name}: missing "}"`)
      if (tok.type === 'punct' && tok.value === '}') {
        this.i++
        break
      }
      const kw = this.word(`a ${kind} declaration`)
      switch (kw) {
        case 'type': {
          set.keyType = [this.word('type')]
          while (this.isWord('.')) {
            this.i++
            set.keyType.push(this.word('type'))
          }
          if (this.isWord(':')) {
            this.i++
            set.dataType = this.word('data type')
          }
          break
        }
        case 'typeof': {
          // `typeof ip saddr . th dport : verdict`: the key types follow from the expressions
          const key = this.expr()
          const parts = key.kind === 'concat' ? key.parts : [key]
          set.keyType = parts.map(typeOfExpr)
          let text = exprText(key)
          if (this.isWord(':')) {
            this.i++
            const data = this.isExprStart() ? this.expr() : this.value()
            set.dataType = data.kind === 'value' ? data.text : typeOfExpr(data)
            text += ` : ${exprText(data)}`
          }
          set.typeof = text
          break
        }
        case 'flags': set.flags = this.commaList(`${kind} flags`); break
        case 'timeout': set.timeout = this.duration(`${kind} timeout`); break
        case 'size': set.size = this.integer(`${kind} size`); break
        case 'comment': set.comment = this.string(`${kind} comment`); break
        case 'elements': {
          if (!this.isWord('=')) this.fail(`expected "=" after elements, got ${describe(this.peek())}`)
          this.i++
          set.elements = this.elementList()
          break
        }
        default: {
          // typeof, policy, gc-interval, auto-merge, counter: kept as written
          const words = [kw]
          while (!this.atStatementEnd()) {
            const t = this.peek()!
            words.push(t.type === 'string' ? JSON.stringify(t.value) : t.value)
            this.i++
          }
          ;(set.extra ??= []).push(words.join(' '))
        }
      }
    }
    if (set.keyType.length === 0) this.fail(`${kind} ${name} has no type`, this.toks[this.i - 1])
    if (kind === 'map' && set.dataType === undefined) this.fail(`map ${name} has no data type (type KEY : DATA)`, this.toks[this.i - 1])
    return set
  }

  /** `a,b,c` (no spaces around the commas: a comma list outside braces) */
  private commaList(what: string): string[] {
    const out = [this.word(what)]
    while (this.isPunct(',') && this.isWord(undefined, 1) && !this.peek(1)!.space) {
      this.i++
      out.push(this.word(what))
    }
    return out
  }

  // ---- elements ----

  private elementList(): NftElement[] {
    this.expectPunct('{')
    const out: NftElement[] = []
    for (;;) {
      this.skipNewlines()
      if (this.isPunct('}')) {
        this.i++
        return out
      }
      out.push(this.element())
      this.skipNewlines()
      if (this.isPunct(',')) this.i++
      else if (!this.isPunct('}')) this.fail(`expected "," or "}" in an element list, got ${describe(this.peek())}`)
    }
  }

  private element(): NftElement {
    const e: NftElement = { key: this.valueConcat() }
    this.elementOptions(e)
    if (this.isWord(':')) {
      this.i++
      e.data = this.isVerdictStart() ? this.verdict() : this.valueConcat()
      this.elementOptions(e)
    }
    return e
  }

  private elementOptions(e: NftElement): void {
    for (;;) {
      if (this.isWord('timeout')) {
        this.i++
        e.timeout = this.duration('element timeout')
      } else if (this.isWord('expires')) {
        this.i++
        e.expires = this.duration('element expiry')
      } else if (this.isWord('comment')) {
        this.i++
        e.comment = this.string('element comment')
      } else if (this.isWord('counter')) {
        this.i++
        e.counter = this.counterValues()
      } else {
        return
      }
    }
  }

  private isVerdictStart(): boolean {
    const t = this.peek()
    return t?.type === 'word' && (VERDICTS.has(t.value) || t.value === 'jump' || t.value === 'goto')
  }

  private verdict(): NftVerdict {
    const v = this.word('verdict')
    if (v === 'jump' || v === 'goto') return { kind: 'verdict', verdict: v, chain: this.word(`${v} target chain`) }
    if (!VERDICTS.has(v)) this.fail(`unknown verdict "${v}"`, this.toks[this.i - 1])
    return { kind: 'verdict', verdict: v as NftVerdict['verdict'] }
  }

  private counterValues(): { packets: number; bytes: number } {
    let packets = 0
    let bytes = 0
    if (this.isWord('packets')) {
      this.i++
      packets = this.integer('packet count')
    }
    if (this.isWord('bytes')) {
      this.i++
      bytes = this.integer('byte count')
    }
    return { packets, bytes }
  }

  // ---- values and expressions ----

  /** one literal: a word (with a comma list `a,b`), a quoted string, `{ set }` or `@ref` */
  private value(): NftExpr {
    const t = this.peek()
    if (!t) this.fail('expected a value, got the end of the text')
    if (t.type === 'string') {
      this.i++
      return { kind: 'value', text: t.value, quoted: true }
    }
    if (t.type === 'punct' && t.value === '{') return this.anonymousSet()
    if (t.type !== 'word') this.fail(`expected a value, got ${describe(t)}`)
    this.i++
    if (t.value.startsWith('@') && t.value.length > 1) return { kind: 'setref', name: t.value.slice(1) }
    // `(fin|syn|rst|ack)`: the same flag list nft lists as `fin,syn,rst,ack`
    if (/^\([\w-]+(\|[\w-]+)+\)$/.test(t.value)) return { kind: 'list', values: t.value.slice(1, -1).split('|').map((text) => ({ kind: 'value', text })) }
    const first: NftValue = { kind: 'value', text: canonicalLiteral(t.value) }
    if (!(this.isPunct(',') && !this.peek()!.space && this.isWord(undefined, 1) && !this.peek(1)!.space)) return first
    const values = [first]
    while (this.isPunct(',') && !this.peek()!.space && this.isWord(undefined, 1) && !this.peek(1)!.space) {
      this.i++
      values.push({ kind: 'value', text: canonicalLiteral(this.word('value')) })
    }
    return { kind: 'list', values }
  }

  /** `a . b . c` of literals (element keys, right-hand sides) */
  private valueConcat(): NftExpr {
    const first = this.value()
    if (!this.isWord('.')) return first
    const parts = [first]
    while (this.isWord('.')) {
      this.i++
      parts.push(this.value())
    }
    return { kind: 'concat', parts }
  }

  private anonymousSet(): NftSetExpr {
    return { kind: 'set', elements: this.elementList() }
  }

  private isExprStart(k = 0): boolean {
    const t = this.peek(k)
    if (!t || t.type !== 'word') return false
    const w = t.value
    if (w === 'meta' || w === 'ct' || w === 'fib' || w === 'numgen' || w === 'jhash' || w === 'symhash') return true
    if (BARE_META.has(w)) return true
    const fields = PAYLOAD_FIELDS[w]
    const next = this.peek(k + 1)
    return fields !== undefined && next?.type === 'word' && fields.has(next.value)
  }

  /** a full expression: packet fields, meta, ct, fib, numgen, with binary operators and `.` */
  private expr(): NftExpr {
    const first = this.binop()
    if (!this.isWord('.')) return first
    const parts = [first]
    while (this.isWord('.')) {
      this.i++
      parts.push(this.binop())
    }
    return { kind: 'concat', parts }
  }

  private binop(): NftExpr {
    let left = this.primary()
    while (this.isWord() && BINOPS[this.peek()!.value] !== undefined) {
      const op = BINOPS[this.word('operator')]!
      left = { kind: 'binop', op, left, right: this.isExprStart() ? this.primary() : this.value() }
    }
    return left
  }

  private primary(): NftExpr {
    const tok = this.peek()
    if (!this.isExprStart()) return this.value()
    const w = this.word('expression')
    if (w === 'meta') return { kind: 'meta', key: this.word('meta key') }
    if (BARE_META.has(w)) return { kind: 'meta', key: w }
    if (w === 'ct') {
      let key = this.word('ct key')
      if (key === 'original' || key === 'reply') key = `${key} ${this.word('ct key')}`
      return { kind: 'ct', key }
    }
    if (w === 'fib') {
      const flags = [this.word('fib input')]
      while (this.isWord('.')) {
        this.i++
        flags.push(this.word('fib input'))
      }
      return { kind: 'fib', flags, result: this.word('fib result (type, oif, oifname)') }
    }
    if (w === 'numgen') {
      const mode = this.word('numgen mode')
      if (mode !== 'random' && mode !== 'inc') this.fail(`numgen mode must be random or inc, got "${mode}"`, tok)
      if (!this.isWord('mod')) this.fail(`expected "mod", got ${describe(this.peek())}`)
      this.i++
      const mod = this.integer('numgen modulus')
      if (mod < 1) this.fail('numgen modulus must be at least 1', tok)
      const e: NftExpr = { kind: 'numgen', mode, mod }
      if (this.isWord('offset')) {
        this.i++
        e.offset = this.integer('numgen offset')
      }
      return e
    }
    if (w === 'jhash' || w === 'symhash') {
      // kept as written: `jhash ip saddr . tcp sport mod 2 seed 0xdead offset 100`
      const words = [w]
      while (!this.atStatementEnd() && !this.isWord('mod')) words.push(this.word('hash input'))
      for (const kw of ['mod', 'seed', 'offset']) {
        if (this.isWord(kw)) {
          this.i++
          words.push(kw, this.word(kw))
        }
      }
      return { kind: 'unknown', text: words.join(' ') }
    }
    return { kind: 'payload', protocol: w, field: this.word('field') }
  }

  /** a value or, where nft allows an expression as the value, an expression (`meta mark | 0x4000`) */
  private valueExpr(): NftExpr {
    const e = this.isExprStart() ? this.expr() : this.valueConcat()
    return this.mapSuffix(e)
  }

  private mapSuffix(e: NftExpr): NftExpr {
    if (!this.isWord('map')) return e
    this.i++
    return { kind: 'map', key: e, map: this.mapTarget() }
  }

  private mapTarget(): NftSetExpr | NftSetRef {
    if (this.isPunct('{')) return this.anonymousSet()
    const v = this.value()
    if (v.kind !== 'setref') this.fail('expected "@name" or "{ ... }" after map / vmap', this.toks[this.i - 1])
    return v
  }

  // ---- rules and statements ----

  private rule(line: number): NftRule {
    const rule: NftRule = { statements: [], line }
    while (!this.atStatementEnd()) {
      if (this.isWord('comment') && this.peek(1)?.type === 'string') {
        this.i++
        rule.comment = this.string('rule comment')
        continue
      }
      rule.statements.push(this.statement())
    }
    const h = this.handle()
    if (h !== undefined) rule.handle = h
    if (rule.statements.length === 0) this.fail('empty rule')
    return rule
  }

  private statement(): NftStatement {
    const tok = this.peek()!
    if (tok.type !== 'word') this.fail(`unexpected ${describe(tok)} in a rule`)
    const w = tok.value
    if (VERDICTS.has(w) || w === 'jump' || w === 'goto') return this.verdict()
    switch (w) {
      case 'counter': {
        // a named counter object (`counter name "x"`) is kept as written
        if (this.isWord('name', 1)) return this.unknownFrom(tok)
        this.i++
        return { kind: 'counter', ...this.counterValues() }
      }
      case 'reject': {
        this.i++
        if (!this.isWord('with')) return { kind: 'reject' }
        this.i++
        const proto = this.word('reject type (icmp, icmpv6, icmpx, tcp)')
        if (proto === 'tcp') {
          if (!this.isWord('reset')) this.fail(`expected "reset" after "with tcp", got ${describe(this.peek())}`)
          this.i++
          return { kind: 'reject', with: 'tcp reset' }
        }
        if (proto !== 'icmp' && proto !== 'icmpv6' && proto !== 'icmpx') this.fail(`unknown reject type "${proto}"`, tok)
        if (this.isWord('type')) this.i++
        const words = [proto, this.word('icmp code')]
        return { kind: 'reject', with: words.join(' ') }
      }
      case 'dnat':
      case 'snat':
      case 'masquerade':
      case 'redirect':
        return this.nat()
      case 'update':
      case 'add':
      case 'delete': {
        const ref = this.peek(1)
        if (ref?.type !== 'word' || !ref.value.startsWith('@')) break
        this.i += 2
        this.expectPunct('{')
        const key = this.expr()
        let timeout: number | undefined
        if (this.isWord('timeout')) {
          this.i++
          timeout = this.duration('timeout')
        }
        this.skipNewlines()
        this.expectPunct('}')
        const s: NftStatement = { kind: 'dynset', op: w, set: ref.value.slice(1), key }
        if (timeout !== undefined) s.timeout = timeout
        return s
      }
      case 'log':
      case 'limit':
      case 'notrack':
      case 'queue':
        return this.unknownFrom(tok)
    }
    if (!this.isExprStart() || (w === 'ct' && this.isWord('count', 1))) return this.unknownFrom(tok)
    const left = this.expr()
    if (left.kind === 'unknown') return this.unknownFrom(tok)
    if (this.isWord('set') && (left.kind === 'meta' || left.kind === 'ct' || left.kind === 'payload')) {
      this.i++
      return { kind: 'assign', target: left, value: this.valueExpr() }
    }
    if (this.isWord('vmap')) {
      this.i++
      return { kind: 'vmap', key: left, map: this.mapTarget() }
    }
    let op: NftRelOp = '=='
    if (this.isWord() && REL_OPS[this.peek()!.value] !== undefined) op = REL_OPS[this.word('operator')]!
    if (this.atStatementEnd()) this.fail(`expected a value after ${describe(tok)} expression`)
    const right = this.valueExpr()
    if (this.isWord('/')) {
      // `tcp flags syn / fin,syn,rst,ack`: the flags under the mask equal the value
      this.i++
      return { kind: 'match', left: { kind: 'binop', op: '&', left, right: this.value() }, op, right }
    }
    return { kind: 'match', left, op, right }
  }

  private nat(): NftNatStatement {
    const type = this.word('nat statement') as NftNatStatement['type']
    const s: NftNatStatement = { kind: 'nat', type, flags: [] }
    if (this.isWord('ip') || this.isWord('ip6')) {
      if (this.isWord('to', 1)) s.family = this.word('family') as 'ip' | 'ip6'
    }
    if (this.isWord('to')) {
      this.i++
      if (this.isExprStart()) {
        s.addr = this.mapSuffix(this.expr())
        if (this.isWord() && this.peek()!.value.startsWith(':') && this.peek()!.value.length > 1) s.port = { kind: 'value', text: canonicalLiteral(this.word('port').slice(1)) }
      } else {
        const t = this.peek()
        const { addr, port } = splitHostPort(this.word('nat address'), () => this.fail(`invalid nat address ${describe(t)}`, t))
        if (addr !== undefined) s.addr = this.mapSuffix({ kind: 'value', text: canonicalLiteral(addr) })
        if (port !== undefined) s.port = { kind: 'value', text: canonicalLiteral(port) }
      }
    }
    while (this.isWord() && NAT_FLAGS.has(this.peek()!.value)) s.flags.push(...this.commaList('nat flag'))
    return s
  }

  /** a statement this parser does not interpret: its words up to the next known statement */
  private unknownFrom(tok: Token): NftStatement {
    const words: string[] = []
    while (!this.atStatementEnd()) {
      const t = this.peek()!
      if (words.length > 0 && t.type === 'word' && STATEMENT_STARTS.has(t.value)) break
      if (t.type === 'word' && t.value === 'comment' && this.peek(1)?.type === 'string' && words.length > 0) break
      if (t.type === 'punct' && t.value === '{') {
        // keep a braced argument whole
        let depth = 0
        do {
          const x = this.peek()
          if (!x) this.fail('missing "}"', tok)
          if (x.type === 'punct' && x.value === '{') depth++
          if (x.type === 'punct' && x.value === '}') depth--
          if (x.type !== 'nl') words.push(x.type === 'string' ? JSON.stringify(x.value) : x.value)
          this.i++
        } while (depth > 0)
        continue
      }
      words.push(t.type === 'string' ? JSON.stringify(t.value) : t.value)
      this.i++
    }
    return { kind: 'unknown', text: words.join(' ').replace(/ , /g, ', ') }
  }
}

/** the nft type name of an expression, for `typeof` declarations */
function typeOfExpr(e: NftExpr): string {
  if (e.kind === 'payload') {
    if (e.field === 'saddr' || e.field === 'daddr') return e.protocol === 'ip6' ? 'ipv6_addr' : 'ipv4_addr'
    if (e.field === 'protocol' || e.field === 'nexthdr') return 'inet_proto'
    if (e.field === 'sport' || e.field === 'dport') return 'inet_service'
    return 'integer'
  }
  if (e.kind === 'meta') return e.key === 'l4proto' ? 'inet_proto' : e.key === 'mark' ? 'mark' : e.key.endsWith('name') ? 'ifname' : e.key === 'nfproto' ? 'nf_proto' : 'integer'
  if (e.kind === 'ct') return e.key === 'state' ? 'ct_state' : e.key === 'status' ? 'ct_status' : e.key === 'mark' ? 'mark' : 'integer'
  if (e.kind === 'fib') return 'fib_addrtype'
  return 'integer'
}

/** "10.0.0.1:80", "[fd00::1]:80", "fd00::1", ":80", "10.0.0.1" */
function splitHostPort(text: string, fail: () => never): { addr?: string; port?: string } {
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close === -1) fail()
    const rest = text.slice(close + 1)
    if (rest !== '' && !rest.startsWith(':')) fail()
    return rest === '' ? { addr: text.slice(1, close) } : { addr: text.slice(1, close), port: rest.slice(1) }
  }
  if (text.startsWith(':')) return { port: text.slice(1) }
  const colons = text.split(':').length - 1
  if (colons === 1) {
    const [a, p] = text.split(':') as [string, string]
    return { addr: a, port: p }
  }
  return { addr: text }
}

function describe(t: Token | undefined): string {
  if (!t) return 'the end of the text'
  if (t.type === 'nl') return 'the end of the line'
  if (t.type === 'string') return JSON.stringify(t.value)
  if (t.type === 'handle') return `"# handle ${t.value}"`
  return `"${t.value}"`
}

export function newTable(family: NftFamily, name: string, line: number): NftTable {
  return { family, name, chains: new Map(), sets: new Map(), line }
}

/** Parses nft text (command form, block form, or a mix) into its commands, in order. */
export function parseNftCommands(text: string): NftCommand[] {
  if (typeof text !== 'string') throw new SvcplaneTypeError(`nft text must be a string, got ${typeof text}`)
  const lastLine = text.split('\n').length
  return new Parser(tokenize(text), lastLine).parseFile()
}
