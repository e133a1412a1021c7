// Turns the arguments of one rule (everything after `-A CHAIN`) into its
// pieces: IP-header options, `-m` modules with the options they own, and the
// target with its options. Which module owns an option is decided like
// iptables does: the most recent loaded module that defines it.

import { IptablesParseError } from './errors.js'
import { BASE_OPTIONS, MATCH_OPTIONS, TARGET_OPTIONS } from './extensions.js'
import type { Token } from './tokenize.js'
import type { RuleOption } from './types.js'

export interface RawMatch {
  module: string
  pos: number
  implicit: boolean
  options: RuleOption[]
}

export interface RawTarget {
  name: string
  goto: boolean
  pos: number
  options: RuleOption[]
}

export interface RawRule {
  base: RuleOption[]
  matches: RawMatch[]
  target?: RawTarget
}

const IMPLICIT_PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite', 'dccp', 'icmp', 'icmpv6', 'ipv6-icmp'])

function isOptionWord(t: Token): boolean {
  return !t.quoted && t.text.length > 1 && t.text[0] === '-' && !/^-\d/.test(t.text)
}

function isBang(t: Token | undefined): boolean {
  return t !== undefined && !t.quoted && t.text === '!'
}

export function parseRuleArgs(tokens: Token[], line: number): RawRule {
  const base: RuleOption[] = []
  const matches: RawMatch[] = []
  let target: RawTarget | undefined
  let pos = 0
  let negate = false
  let i = 0
  const fail = (msg: string): never => { throw new IptablesParseError(line, msg) }

  while (i < tokens.length) {
    const t = tokens[i]!
    if (isBang(t)) {
      if (negate) fail('multiple "!" in a row')
      negate = true
      i++
      continue
    }
    if (!isOptionWord(t)) fail(`unexpected argument ${JSON.stringify(t.text)}`)
    const word = t.text
    if (word === '-m' || word === '--match') {
      if (negate) fail(`"!" cannot negate ${word}`)
      const name = tokens[i + 1]
      if (!name || isOptionWord(name)) fail(`${word} requires a module name`)
      matches.push({ module: name!.text, pos: pos++, implicit: false, options: [] })
      i += 2
      continue
    }
    if (word === '-j' || word === '--jump' || word === '-g' || word === '--goto') {
      if (negate) fail(`"!" cannot negate ${word}`)
      if (target) fail('more than one target (-j/-g) in a rule')
      const name = tokens[i + 1]
      if (!name || isOptionWord(name)) fail(`${word} requires a target name`)
      target = { name: name!.text, goto: word === '-g' || word === '--goto', pos: pos++, options: [] }
      i += 2
      continue
    }

    // Find the owner of this option and how many values it takes.
    let owner: RuleOption[] | undefined
    let arity: number | undefined
    const targetOpts = target ? TARGET_OPTIONS[target.name] : undefined
    if (target && targetOpts && targetOpts[word] !== undefined) {
      owner = target.options
      arity = targetOpts[word]
    } else if (BASE_OPTIONS[word]) {
      owner = base
      arity = BASE_OPTIONS[word]!.arity
    } else {
      for (let k = matches.length - 1; k >= 0; k--) {
        const opts = MATCH_OPTIONS[matches[k]!.module]
        if (opts && opts[word] !== undefined) {
          owner = matches[k]!.options
          arity = opts[word]
          break
        }
      }
      if (!owner && target && !targetOpts) {
        owner = target.options // unknown target extension: keep its options verbatim
      } else if (!owner && matches.length > 0 && !MATCH_OPTIONS[matches[matches.length - 1]!.module]) {
        owner = matches[matches.length - 1]!.options // unknown match module
      } else if (!owner) {
        // Old syntax: `-p tcp --dport 80` loads the protocol match implicitly.
        const proto = base.find((o) => o.name === '-p' || o.name === '--protocol')
        const protoName = proto?.values[0]?.toLowerCase()
        const implicitOpts = protoName && IMPLICIT_PORT_PROTOCOLS.has(protoName)
          ? MATCH_OPTIONS[protoName === 'ipv6-icmp' ? 'icmp6' : protoName === 'icmpv6' ? 'icmp6' : protoName]
          : undefined
        if (implicitOpts && implicitOpts[word] !== undefined) {
          const m: RawMatch = { module: protoName === 'ipv6-icmp' || protoName === 'icmpv6' ? 'icmp6' : protoName!, pos: -1, implicit: true, options: [] }
          matches.push(m)
          owner = m.options
          arity = implicitOpts[word]
        } else {
          fail(`unknown option ${JSON.stringify(word)}${target ? ` for target ${target.name}` : ''}`)
        }
      }
    }

    i++
    let bangAfterName = false
    if (isBang(tokens[i]) && arity !== 0) {
      // Legacy spelling `--dport ! 80`.
      if (negate) fail('multiple "!" for one option')
      bangAfterName = true
      negate = true
      i++
    }
    const values: string[] = []
    const quoted: boolean[] = []
    if (arity === undefined) {
      while (i < tokens.length && !isOptionWord(tokens[i]!) && !isBang(tokens[i])) {
        values.push(tokens[i]!.text)
        quoted.push(tokens[i]!.quoted)
        i++
      }
    } else {
      for (let k = 0; k < arity; k++) {
        const v = tokens[i]
        if (!v || isBang(v) || (isOptionWord(v) && !/^-\d/.test(v.text))) {
          fail(`option ${word} requires ${arity} argument${arity === 1 ? '' : 's'}`)
        }
        values.push(v!.text)
        quoted.push(v!.quoted)
        i++
      }
    }
    const opt: RuleOption = { name: word, negated: negate, values, pos: pos++ }
    if (bangAfterName) opt.bangAfterName = true
    if (quoted.some(Boolean)) opt.quoted = quoted
    owner!.push(opt)
    negate = false
  }
  if (negate) fail('"!" at end of rule')
  return { base, matches, target }
}
