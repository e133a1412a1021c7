// Parses iptables-save output and iptables-restore input into statements (for
// exact round-trip) and into the effective tables/chains/rules the evaluator
// walks. Restore semantics are applied line by line: a `*table` header starts
// from empty built-in chains (unless noflush), `:CHAIN` creates or flushes a
// chain, -A/-I/-D/-R/-N/-X/-F/-P/-E edit it.

import { decodeIpSpec, decodeMatch, decodeTarget } from './decode.js'
import { IptablesParseError } from './errors.js'
import { BUILTIN_CHAINS, KNOWN_TARGETS } from './extensions.js'
import { parseRuleArgs } from './rule-args.js'
import { serializeRuleArgs } from './serialize.js'
import { tokenizeLine } from './tokenize.js'
import type {
  Chain, Counters, IptablesDocument, Rule, RuleCommand, Statement, Table, UnsupportedItem,
} from './types.js'
import { SvcplaneTypeError } from '../../errors.js'

export interface ParseOptions {
  /**
   * Like `iptables-restore --noflush`: table headers keep what earlier blocks
   * created, and rules may append to or jump to chains the text never
   * declares (they are assumed to exist in the kernel and are created empty).
   */
  noflush?: boolean
  /** Require every table block to end with COMMIT (default true, as iptables-restore does). */
  requireCommit?: boolean
}

const COUNTERS_RE = /^\[(\d+):(\d+)\]$/

function parseCounters(text: string, line: number): Counters {
  const m = COUNTERS_RE.exec(text)
  if (!m) throw new IptablesParseError(line, `invalid counters ${JSON.stringify(text)} (expected [packets:bytes])`)
  return { packets: Number(m[1]), bytes: Number(m[2]) }
}

const COMMAND_ALIASES: Record<string, string> = {
  '-A': 'A', '--append': 'A', '-I': 'I', '--insert': 'I', '-D': 'D', '--delete': 'D',
  '-R': 'R', '--replace': 'R', '-N': 'N', '--new-chain': 'N', '-X': 'X', '--delete-chain': 'X',
  '-F': 'F', '--flush': 'F', '-Z': 'Z', '--zero': 'Z', '-P': 'P', '--policy': 'P',
  '-E': 'E', '--rename-chain': 'E',
}

function newTable(name: string, line: number): Table {
  const chains = new Map<string, Chain>()
  for (const c of BUILTIN_CHAINS[name] ?? []) {
    chains.set(c, { name: c, table: name, builtin: true, policy: 'ACCEPT', line: 0, rules: [] })
  }
  return { name, line, chains }
}

/** Parses iptables-save / iptables-restore text. Throws IptablesParseError with the line number. */
export function parseIptablesSave(text: string, options: ParseOptions = {}): IptablesDocument {
  if (typeof text !== 'string') throw new SvcplaneTypeError(`iptables text must be a string, got ${typeof text}`)
  const requireCommit = options.requireCommit ?? true
  const statements: Statement[] = []
  const tables = new Map<string, Table>()
  const unsupported: UnsupportedItem[] = []
  let family: 4 | 6 = 4
  let current: Table | undefined
  const lines = text.split('\n')
  const trailingNewline = text.endsWith('\n')
  if (trailingNewline) lines.pop()

  const requireTable = (lineNo: number, what: string): Table => {
    if (!current) throw new IptablesParseError(lineNo, `${what} outside a table (missing *table line)`)
    return current
  }
  const getChain = (t: Table, name: string, lineNo: number): Chain => {
    let c = t.chains.get(name)
    if (!c) {
      if (!options.noflush) throw new IptablesParseError(lineNo, `chain ${name} does not exist in table ${t.name}`)
      c = { name, table: t.name, builtin: false, line: lineNo, rules: [] }
      t.chains.set(name, c)
    }
    return c
  }

  for (let idx = 0; idx < lines.length; idx++) {
    const lineNo = idx + 1
    const raw = lines[idx]!
    const trimmed = raw.trim()
    if (trimmed === '') { statements.push({ type: 'blank', line: lineNo, text: raw }); continue }
    if (trimmed.startsWith('#')) { statements.push({ type: 'comment', line: lineNo, text: raw }); continue }

    if (trimmed.startsWith('*')) {
      if (current) throw new IptablesParseError(lineNo, `table ${trimmed.slice(1)} starts before COMMIT of table ${current.name}`)
      const name = trimmed.slice(1)
      if (!/^[a-z_]+$/.test(name)) throw new IptablesParseError(lineNo, `invalid table name ${JSON.stringify(name)}`)
      const existing = tables.get(name)
      current = options.noflush && existing ? existing : newTable(name, lineNo)
      tables.set(name, current)
      statements.push({ type: 'table', line: lineNo, name })
      continue
    }
    if (trimmed === 'COMMIT') {
      const t = requireTable(lineNo, 'COMMIT')
      statements.push({ type: 'commit', line: lineNo, table: t.name })
      current = undefined
      continue
    }
    if (trimmed.startsWith(':')) {
      const t = requireTable(lineNo, 'chain declaration')
      const parts = trimmed.slice(1).split(/\s+/)
      const [name, policy, counterText, ...extra] = parts
      if (!name || !/^[^\s!]{1,28}$/.test(name)) throw new IptablesParseError(lineNo, `invalid chain name ${JSON.stringify(name ?? '')}`)
      if (!policy) throw new IptablesParseError(lineNo, `chain ${name} has no policy (use "-" for a user chain)`)
      if (extra.length > 0) throw new IptablesParseError(lineNo, `unexpected ${JSON.stringify(extra.join(' '))} after chain ${name}`)
      const counters = counterText !== undefined ? parseCounters(counterText, lineNo) : undefined
      const builtin = (BUILTIN_CHAINS[t.name] ?? []).includes(name)
      if (builtin && policy !== 'ACCEPT' && policy !== 'DROP' && policy !== '-') {
        throw new IptablesParseError(lineNo, `invalid policy ${JSON.stringify(policy)} for built-in chain ${name}`)
      }
      if (!builtin && policy !== '-') {
        throw new IptablesParseError(lineNo, `user chain ${name} cannot have policy ${policy} (use "-")`)
      }
      const existing = t.chains.get(name)
      if (existing) {
        existing.rules = [] // a chain line flushes the chain, as iptables-restore does
        existing.line = lineNo
        if (builtin && policy !== '-') existing.policy = policy
        if (counters) existing.counters = counters
      } else {
        t.chains.set(name, { name, table: t.name, builtin, line: lineNo, rules: [], ...(counters ? { counters } : {}) })
      }
      statements.push({ type: 'chain', line: lineNo, table: t.name, name, policy, ...(counters ? { counters } : {}) })
      continue
    }

    // A rule or command line, optionally prefixed by [pkts:bytes].
    const t = requireTable(lineNo, 'rule')
    const tokens = tokenizeLine(trimmed, lineNo)
    let counters: Counters | undefined
    if (tokens[0] && !tokens[0].quoted && tokens[0].text.startsWith('[')) {
      counters = parseCounters(tokens[0].text, lineNo)
      tokens.shift()
    }
    const cmdWord = tokens[0]?.text ?? ''
    const command = COMMAND_ALIASES[cmdWord]
    if (!command) throw new IptablesParseError(lineNo, `unknown command ${JSON.stringify(cmdWord)}`)

    if (command === 'A' || command === 'I' || command === 'D' || command === 'R') {
      const chainName = tokens[1]?.text
      if (!chainName) throw new IptablesParseError(lineNo, `${cmdWord} requires a chain name`)
      const chain = getChain(t, chainName, lineNo)
      let argStart = 2
      let index: number | undefined
      if (command !== 'A' && tokens[2] && /^\d+$/.test(tokens[2].text) && !tokens[2].quoted) {
        index = Number(tokens[2].text)
        argStart = 3
        if (index < 1) throw new IptablesParseError(lineNo, `rule number must be at least 1, got ${index}`)
      }
      if (command === 'R' && index === undefined) throw new IptablesParseError(lineNo, '-R requires a rule number')
      const raw = parseRuleArgs(tokens.slice(argStart), lineNo)
      const rule: Rule = {
        line: lineNo, table: t.name, chain: chainName, command: command as RuleCommand,
        ...(index !== undefined ? { index } : {}),
        ...(counters ? { counters } : {}),
        ip: decodeIpSpec(raw.base, lineNo),
        matches: raw.matches.map((m) => decodeMatch(m, lineNo)),
      }
      if (raw.target) {
        rule.target = decodeTarget(raw.target, lineNo, (name) => {
          const c = t.chains.get(name)
          if (c) return !c.builtin
          // With --noflush the chain may already exist in the kernel: a name
          // that is no known target extension is taken to be such a chain.
          if (options.noflush && !KNOWN_TARGETS.has(name)) {
            t.chains.set(name, { name, table: t.name, builtin: false, line: lineNo, rules: [] })
            return true
          }
          return false
        })
      }
      const comment = rule.matches.find((m) => m.kind === 'comment')
      if (comment && comment.kind === 'comment') rule.comment = comment.comment
      if ([rule.ip.src, rule.ip.dst].some((a) => a?.cidrs.some((c) => c.family === 6))) family = 6
      statements.push({ type: 'rule', line: lineNo, rule })
      applyRuleCommand(chain, rule, lineNo)
      if (command !== 'D') reportUnsupported(rule, unsupported)
      continue
    }

    const args = tokens.slice(1).map((x) => x.text)
    statements.push({ type: 'command', line: lineNo, table: t.name, command: command as 'N' | 'X' | 'F' | 'Z' | 'P' | 'E', args })
    applyChainCommand(t, command, args, lineNo)
  }
  if (current && requireCommit) {
    throw new IptablesParseError(lines.length + 1, `COMMIT expected for table ${current.name}`)
  }
  return { statements, tables, unsupported, family, trailingNewline }
}

function sameRuleText(a: Rule, b: Rule): boolean {
  return serializeRuleArgs(a) === serializeRuleArgs(b)
}

function applyRuleCommand(chain: Chain, rule: Rule, line: number): void {
  switch (rule.command) {
    case 'A':
      chain.rules.push(rule)
      return
    case 'I': {
      const at = (rule.index ?? 1) - 1
      if (at > chain.rules.length) throw new IptablesParseError(line, `index of insertion too big for chain ${chain.name} (${chain.rules.length} rules)`)
      chain.rules.splice(at, 0, rule)
      return
    }
    case 'R': {
      const at = rule.index! - 1
      if (at >= chain.rules.length) throw new IptablesParseError(line, `no rule ${rule.index} in chain ${chain.name}`)
      chain.rules[at] = rule
      return
    }
    case 'D': {
      const at = rule.index !== undefined ? rule.index - 1 : chain.rules.findIndex((r) => sameRuleText(r, rule))
      if (at < 0 || at >= chain.rules.length) throw new IptablesParseError(line, `no such rule to delete in chain ${chain.name}`)
      chain.rules.splice(at, 1)
      return
    }
  }
}

function isReferenced(t: Table, name: string): boolean {
  for (const c of t.chains.values()) {
    for (const r of c.rules) if (r.target?.kind === 'jump' && r.target.chain === name) return true
  }
  return false
}

function applyChainCommand(t: Table, command: string, args: string[], line: number): void {
  const fail = (msg: string): never => { throw new IptablesParseError(line, msg) }
  const chainArg = args[0]
  switch (command) {
    case 'N':
      if (!chainArg) fail('-N requires a chain name')
      if (t.chains.has(chainArg!)) fail(`chain ${chainArg} already exists`)
      t.chains.set(chainArg!, { name: chainArg!, table: t.name, builtin: false, line, rules: [] })
      return
    case 'X': {
      const names = chainArg ? [chainArg] : [...t.chains.values()].filter((c) => !c.builtin).map((c) => c.name)
      for (const n of names) {
        const c = t.chains.get(n)
        if (!c) fail(`chain ${n} does not exist`)
        if (c!.builtin) fail(`cannot delete built-in chain ${n}`)
        if (chainArg && c!.rules.length > 0) fail(`chain ${n} is not empty`)
        if (chainArg && isReferenced(t, n)) fail(`chain ${n} is still referenced`)
        t.chains.delete(n)
      }
      return
    }
    case 'F':
      if (chainArg) {
        const c = t.chains.get(chainArg)
        if (!c) fail(`chain ${chainArg} does not exist`)
        c!.rules = []
      } else {
        for (const c of t.chains.values()) c.rules = []
      }
      return
    case 'Z':
      return // counters are not modelled per kernel object here
    case 'P': {
      const c = chainArg ? t.chains.get(chainArg) : undefined
      if (!c || !c.builtin) fail(`-P needs a built-in chain, got ${JSON.stringify(chainArg ?? '')}`)
      if (args[1] !== 'ACCEPT' && args[1] !== 'DROP') fail(`invalid policy ${JSON.stringify(args[1] ?? '')}`)
      c!.policy = args[1]
      return
    }
    case 'E': {
      const c = chainArg ? t.chains.get(chainArg) : undefined
      const to = args[1]
      if (!c || c.builtin) fail(`-E needs a user chain, got ${JSON.stringify(chainArg ?? '')}`)
      if (!to || t.chains.has(to)) fail(`cannot rename ${chainArg} to ${JSON.stringify(to ?? '')}`)
      t.chains.delete(c!.name)
      c!.name = to!
      for (const r of c!.rules) r.chain = to!
      t.chains.set(to!, c!)
      // the kernel links jumps by reference, so existing jumps follow the rename
      for (const other of t.chains.values()) {
        for (const r of other.rules) if (r.target?.kind === 'jump' && r.target.chain === chainArg) r.target.chain = to!
      }
      return
    }
  }
}

const PORT_OPTIONS_EVALUATED = new Set(['--dport', '--destination-port', '--sport', '--source-port', '--tcp-flags', '--syn'])
const CONNTRACK_OPTIONS_EVALUATED = new Set(['--ctstate'])

/** Records what in `rule` the evaluator cannot interpret. The rule itself is kept. */
function reportUnsupported(rule: Rule, out: UnsupportedItem[]): void {
  const at = { line: rule.line, table: rule.table, chain: rule.chain }
  for (const m of rule.matches) {
    if (m.kind === 'opaque') {
      out.push({ ...at, what: 'match', name: m.module, reason: `match module "${m.module}" is not evaluated` })
    } else if (m.kind === 'port') {
      for (const o of m.options) {
        if (!PORT_OPTIONS_EVALUATED.has(o.name)) out.push({ ...at, what: 'option', name: `${m.module} ${o.name}`, reason: `option ${o.name} of "${m.module}" is not evaluated` })
      }
    } else if (m.kind === 'conntrack') {
      for (const o of m.options) {
        if (!CONNTRACK_OPTIONS_EVALUATED.has(o.name)) out.push({ ...at, what: 'option', name: `conntrack ${o.name}`, reason: `option ${o.name} of "conntrack" is not evaluated` })
      }
    }
  }
  const tgt = rule.target
  if (tgt && tgt.kind === 'opaque') {
    const reason = tgt.goto ? `goto target ${tgt.name} is not a user chain` : `target ${tgt.name} is not evaluated`
    out.push({ ...at, what: 'target', name: tgt.name, reason })
  }
}
