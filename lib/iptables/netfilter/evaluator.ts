// A linear evaluator: walks the nat and filter chains for a new flow the way
// netfilter does, rule by rule, first match wins, with jumps, gotos, RETURN,
// policies, marks, DNAT/MASQUERADE and per-rule counters.
//
// Hooks, in kernel order (raw/mangle are not modelled):
//   output:     nat OUTPUT -> filter OUTPUT -> nat POSTROUTING
//   prerouting: nat PREROUTING -> route -> local:  filter INPUT -> nat INPUT
//                                        -> remote: filter FORWARD -> nat POSTROUTING
// The nat table is consulted only for the first packet of a connection
// (ctstate NEW); later packets reuse the conntrack binding, so for them only
// the filter table is walked.

import { joinHostPort } from '../../util/host-port.js'
import { show } from '../../util/show.js'
import { compileIpTest, compileMatch, combine, CT_BITS, CT_DNAT, CT_NEW, CT_SNAT, TCP_FLAG_BITS, type MatchEnv, type PacketState, type Test } from './compile.js'
import { addrKey, cidrContains, formatAddr, parseAddr, parseCidr, type Addr, type Cidr } from '../../util/address-words.js'
import { PROTOCOLS } from '../save/extensions.js'
import { parseIptablesSave } from '../save/parser.js'
import { seededRandom, type RandomSource } from '../../util/random.js'
import { RecentLists } from './recent.js'
import { serializeRule } from '../save/serialize.js'
import { servicePortFromComment } from '../kube-proxy/service-port-comment.js'
import type { Chain, IptablesDocument, Rule, Table } from '../save/types.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export type Hook = 'output' | 'prerouting'
export type Verdict = 'dnat' | 'reject' | 'drop' | 'accept'

export interface EvalPacket {
  src: string
  dst: string
  sport?: number
  dport?: number
  /** 'TCP' / 'udp' / 'sctp' / 'icmp' or an IP protocol number */
  protocol: string | number
  hook: Hook
  /** virtual time in seconds, for -m recent */
  now?: number
  inIface?: string
  outIface?: string
  mark?: number
  /** bytes, for the byte counters (default 60) */
  length?: number
  /** conntrack state of the packet (default NEW: the evaluator models new flows) */
  ctstate?: 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED'
  /** TCP flags, e.g. ['SYN'] (default SYN for TCP) */
  tcpFlags?: string[]
  ttl?: number
  /** bridge ports, for -m physdev */
  physdevIn?: string
  physdevOut?: string
}

/** A rule's identity in the loaded ruleset (shared objects; compare by reference). */
export interface RuleRef {
  readonly table: string
  readonly chain: string
  /** 1-based position in the chain, as `iptables -L --line-numbers` */
  readonly num: number
  /** source line in the parsed text */
  readonly line: number
  readonly rule: Rule
}

export interface RuleVisit {
  readonly ref: RuleRef
  readonly matched: boolean
}

export interface EvalResult {
  action: Verdict
  /** "ip:port" ("[ip]:port" for IPv6) when action is 'dnat' */
  endpoint?: string
  masquerade: boolean
  /** source address written by an SNAT target */
  snat?: string
  /** from kube-proxy's rule comments, when action is not 'accept' */
  servicePort?: string
  /** for drop/reject: the deciding rule's comment or position */
  reason?: string
  /** the packet mark at the end of the walk */
  mark: number
  /** which filter chain the routing decision chose */
  path: 'output' | 'input' | 'forward'
  /** rules that matched, in order ('all' tracing also lists rules that did not) */
  visited: RuleVisit[]
  /** rules on the walk whose matches or target the evaluator could not interpret */
  unsupported: RuleRef[]
}

export interface RuleCounter {
  ref: RuleRef
  packets: number
  bytes: number
}

export interface ChainCounter {
  table: string
  chain: string
  policy: string
  packets: number
  bytes: number
}

export interface EvaluatorOptions {
  /** the node's own addresses (LOCAL for -m addrtype and the routing decision) */
  localAddresses?: string[]
  /** extra local prefixes (127.0.0.0/8 and ::1 are always local) */
  localCidrs?: string[]
  /** addresses per interface, for --limit-iface-in/out */
  interfaces?: Record<string, string[]>
  /** a source of uniform numbers in [0, 1) for -m statistic */
  random?: RandomSource
  /** seed for the built-in PRNG when `random` is not given (default 1) */
  seed?: number
  /** ipset contents for -m set: name -> addresses / prefixes */
  ipsets?: Record<string, string[]>
  /** entries per -m recent list (kernel default ip_list_tot = 200) */
  recentCapacity?: number
  /**
   * -m recent lists to use (shared with an earlier evaluator: the kernel keeps a list while
   * some rule names it, also across iptables-restore)
   */
  recent?: RecentLists
  /** what an uninterpretable match does: never match (default) or always match */
  unsupportedMatch?: 'nomatch' | 'match'
  /** 'matched' (default) records matched rules; 'all' every rule tested; 'none' nothing */
  trace?: 'matched' | 'all' | 'none'
  /** maximum jump depth before the walk is aborted (loops are refused by iptables) */
  maxDepth?: number
}

const enum Action {
  Continue,
  Accept,
  Drop,
  Reject,
  Return,
  Jump,
  Goto,
  Dnat,
  Snat,
  Masquerade,
  Mark,
}

interface CompiledRule {
  ref: RuleRef
  id: number
  test: Test | undefined
  action: Action
  target: CompiledChain | undefined
  targetName: string
  unsupported: boolean
  servicePort: string | undefined
  dnatAddr: Addr | undefined
  dnatPort: number | undefined
  snatAddr: string | undefined
  markClear: number
  markXor: number
  visitYes: RuleVisit
  visitNo: RuleVisit
}

interface CompiledChain {
  table: string
  name: string
  builtin: boolean
  policy: Action
  policyName: string
  rules: CompiledRule[]
  id: number
}

interface WalkState {
  visited: RuleVisit[]
  unsupported: RuleRef[]
  servicePort: string | undefined
  decider: CompiledRule | undefined
  dnatEndpoint: string | undefined
  masquerade: boolean
  snat: string | undefined
}

function protoNumber(p: string | number): number {
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 255) throw new SvcplaneRangeError(`packet.protocol must be 0-255, got ${show(p)}`)
    return p
  }
  const n = PROTOCOLS[p.toLowerCase()]
  if (n === undefined) throw new SvcplaneTypeError(`packet.protocol: unknown protocol ${show(p)}`)
  return n
}

function formatEndpoint(a: Addr, port: number): string {
  return joinHostPort(formatAddr(a), port)
}

export class IptablesEvaluator {
  readonly document: IptablesDocument
  private readonly chains = new Map<string, CompiledChain>()
  private readonly rules: CompiledRule[] = []
  private readonly packetCounts: Float64Array
  private readonly byteCounts: Float64Array
  private readonly chainList: CompiledChain[] = []
  private readonly policyPackets: Float64Array
  private readonly policyBytes: Float64Array
  private readonly local4 = new Set<number>()
  private readonly local6 = new Set<string>()
  private readonly localCidrs: Cidr[] = []
  private readonly ifaceAddrs = new Map<string, Set<string>>()
  private readonly env: MatchEnv
  private readonly trace: 'matched' | 'all' | 'none'
  private readonly maxDepth: number
  /** the recent lists (exposed for inspection and reset) */
  readonly recent: RecentLists

  constructor(input: IptablesDocument | string, options: EvaluatorOptions = {}) {
    this.document = typeof input === 'string' ? parseIptablesSave(input) : input
    for (const a of options.localAddresses ?? []) {
      const addr = parseAddr(a)
      if (!addr) throw new SvcplaneTypeError(`options.localAddresses: invalid address ${show(a)}`)
      if (addr.family === 4) this.local4.add(addr.w[0]!)
      else this.local6.add(addrKey(addr))
    }
    for (const c of options.localCidrs ?? []) {
      const cidr = parseCidr(c)
      if (!cidr) throw new SvcplaneTypeError(`options.localCidrs: invalid prefix ${show(c)}`)
      this.localCidrs.push(cidr)
    }
    for (const [iface, addrs] of Object.entries(options.interfaces ?? {})) {
      const keys = new Set<string>()
      for (const a of addrs) {
        const addr = parseAddr(a)
        if (!addr) throw new SvcplaneTypeError(`options.interfaces.${iface}: invalid address ${show(a)}`)
        keys.add(addrKey(addr))
      }
      this.ifaceAddrs.set(iface, keys)
    }
    const ipsets = new Map<string, Cidr[]>()
    for (const [name, members] of Object.entries(options.ipsets ?? {})) {
      ipsets.set(name, members.map((m) => {
        const c = parseCidr(m)
        if (!c) throw new SvcplaneTypeError(`options.ipsets.${name}: invalid member ${show(m)}`)
        return c
      }))
    }
    this.recent = options.recent ?? new RecentLists(options.recentCapacity ?? 200)
    const random = options.random ?? seededRandom(options.seed ?? 1)
    if (typeof random !== 'function') throw new SvcplaneTypeError('options.random must be a function returning numbers in [0, 1)')
    this.env = { isLocal: (a, iface) => this.isLocal(a, iface), random, recent: this.recent, ipsets }
    this.trace = options.trace ?? 'matched'
    this.maxDepth = options.maxDepth ?? 128
    const unsupportedMatch = options.unsupportedMatch ?? 'nomatch'

    for (const tableName of ['nat', 'filter']) {
      const table = this.document.tables.get(tableName)
      if (table) this.compileTable(table, unsupportedMatch)
    }
    this.packetCounts = new Float64Array(this.rules.length)
    this.byteCounts = new Float64Array(this.rules.length)
    this.policyPackets = new Float64Array(this.chainList.length)
    this.policyBytes = new Float64Array(this.chainList.length)
  }

  private isLocal(a: Addr, iface?: string): boolean {
    if (iface !== undefined) {
      const set = this.ifaceAddrs.get(iface)
      if (set) return set.has(addrKey(a))
    }
    if (a.family === 4 ? this.local4.has(a.w[0]!) : this.local6.has(addrKey(a))) return true
    for (const c of this.localCidrs) if (cidrContains(c, a)) return true
    return false
  }

  private isLocalDestination(p: PacketState): boolean {
    return this.isLocal(p.dst) || (p.family === 4 ? p.dst.w[0]! >>> 24 === 127 : p.dst.w.every((x, i) => x === (i === 3 ? 1 : 0)))
  }

  private compileTable(table: Table, unsupportedMatch: 'nomatch' | 'match'): void {
    const pending: Array<[CompiledRule, string]> = []
    for (const chain of table.chains.values()) {
      const cc: CompiledChain = {
        table: table.name, name: chain.name, builtin: chain.builtin,
        policy: chain.policy === 'DROP' ? Action.Drop : Action.Accept,
        policyName: chain.policy ?? '-',
        rules: [], id: this.chainList.length,
      }
      this.chainList.push(cc)
      this.chains.set(`${table.name}/${chain.name}`, cc)
      chain.rules.forEach((rule, i) => {
        const cr = this.compileRule(table.name, chain, rule, i + 1, unsupportedMatch)
        cc.rules.push(cr)
        if (cr.action === Action.Jump || cr.action === Action.Goto) pending.push([cr, cr.targetName])
      })
    }
    for (const [cr, name] of pending) {
      const target = this.chains.get(`${table.name}/${name}`)
      if (!target) {
        // The chain vanished after the rule was added (e.g. -X); treat as unknown target.
        cr.action = Action.Continue
        cr.unsupported = true
      } else {
        cr.target = target
      }
    }
  }

  private compileRule(table: string, chain: Chain, rule: Rule, num: number, unsupportedMatch: 'nomatch' | 'match'): CompiledRule {
    const ref: RuleRef = Object.freeze({ table, chain: chain.name, num, line: rule.line, rule })
    const tests: Test[] = []
    let unsupported = false
    const ipTest = compileIpTest(rule.ip)
    if (ipTest) tests.push(ipTest)
    for (const m of rule.matches) {
      const cm = compileMatch(m, this.env)
      if (cm.unsupported) {
        unsupported = true
        if (unsupportedMatch === 'nomatch') tests.push(() => false)
        continue
      }
      if (cm.test) tests.push(cm.test)
    }
    const cr: CompiledRule = {
      ref, id: this.rules.length, test: combine(tests), action: Action.Continue, target: undefined,
      targetName: '', unsupported, servicePort: servicePortFromComment(rule.comment),
      dnatAddr: undefined, dnatPort: undefined, snatAddr: undefined, markClear: 0, markXor: 0,
      visitYes: Object.freeze({ ref, matched: true }), visitNo: Object.freeze({ ref, matched: false }),
    }
    const t = rule.target
    if (t) {
      switch (t.kind) {
        case 'accept': cr.action = Action.Accept; break
        case 'drop': cr.action = Action.Drop; break
        case 'reject': cr.action = Action.Reject; break
        case 'return': cr.action = Action.Return; break
        case 'jump': cr.action = t.goto ? Action.Goto : Action.Jump; cr.targetName = t.chain; break
        case 'dnat': {
          cr.action = Action.Dnat
          if (t.to?.addr) cr.dnatAddr = parseAddr(t.to.addr)
          cr.dnatPort = t.to?.portMin
          break
        }
        case 'snat': cr.action = Action.Snat; cr.snatAddr = t.to?.addr; break
        case 'masquerade': cr.action = Action.Masquerade; break
        case 'mark': cr.action = Action.Mark; cr.markClear = t.clearMask; cr.markXor = t.xorValue; break
        case 'log': break
        case 'opaque': cr.unsupported = true; break
      }
    }
    this.rules.push(cr)
    return cr
  }

  /** Walks the chains for one packet of a new (or given ctstate) flow. */
  evaluate(packet: EvalPacket): EvalResult {
    checkEvalPacket(packet)
    const p = this.packetState(packet)
    const w: WalkState = {
      visited: [], unsupported: [], servicePort: undefined, decider: undefined,
      dnatEndpoint: undefined, masquerade: false, snat: undefined,
    }
    const natActive = (p.ctstate & CT_NEW) !== 0
    let path: EvalResult['path']
    let verdict: Action

    if (packet.hook === 'output') {
      path = 'output'
      verdict = natActive ? this.walk('nat', 'OUTPUT', p, w) : Action.Accept
      if (verdict === Action.Accept) verdict = this.walk('filter', 'OUTPUT', p, w)
      if (verdict === Action.Accept && natActive) verdict = this.walk('nat', 'POSTROUTING', p, w)
      // A locally delivered packet comes back in through lo: filter INPUT sees it (still NEW);
      // the nat table does not, its bindings were made on the way out.
      if (verdict === Action.Accept && this.isLocalDestination(p)) verdict = this.walk('filter', 'INPUT', p, w)
    } else if (packet.hook === 'prerouting') {
      verdict = natActive ? this.walk('nat', 'PREROUTING', p, w) : Action.Accept
      const local = this.isLocalDestination(p)
      path = local ? 'input' : 'forward'
      if (verdict === Action.Accept) verdict = this.walk('filter', local ? 'INPUT' : 'FORWARD', p, w)
      if (verdict === Action.Accept && natActive) verdict = this.walk('nat', local ? 'INPUT' : 'POSTROUTING', p, w)
    } else {
      throw new SvcplaneTypeError(`packet.hook must be 'output' or 'prerouting', got ${show(packet.hook)}`)
    }

    const result: EvalResult = {
      action: 'accept', masquerade: w.masquerade, mark: p.mark, path,
      visited: w.visited, unsupported: w.unsupported,
    }
    if (w.snat !== undefined) result.snat = w.snat
    if (verdict === Action.Accept) {
      if (w.dnatEndpoint !== undefined) {
        result.action = 'dnat'
        result.endpoint = w.dnatEndpoint
        if (w.servicePort !== undefined) result.servicePort = w.servicePort
      }
    } else {
      result.action = verdict === Action.Reject ? 'reject' : 'drop'
      const d = w.decider
      const sp = d?.servicePort ?? w.servicePort
      if (sp !== undefined) result.servicePort = sp
      result.reason = d
        ? d.ref.rule.comment ?? `${d.ref.table} ${d.ref.chain} rule ${d.ref.num}`
        : 'chain policy DROP'
    }
    return result
  }

  private packetState(packet: EvalPacket): PacketState {
    if (packet === null || typeof packet !== 'object') throw new SvcplaneTypeError('packet must be an object')
    const src = parseAddr(packet.src)
    if (!src) throw new SvcplaneTypeError(`packet.src: invalid address ${show(packet.src)}`)
    const dst = parseAddr(packet.dst)
    if (!dst) throw new SvcplaneTypeError(`packet.dst: invalid address ${show(packet.dst)}`)
    if (src.family !== dst.family) throw new SvcplaneTypeError(`packet.src ${packet.src} and packet.dst ${packet.dst} are of different families`)
    const proto = protoNumber(packet.protocol)
    const sport = packet.sport ?? 0
    const dport = packet.dport ?? 0
    for (const [name, v] of [['sport', sport], ['dport', dport]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 65535) throw new SvcplaneRangeError(`packet.${name} must be 0-65535, got ${show(v)}`)
    }
    const ctName = packet.ctstate ?? 'NEW'
    const ctstate = CT_BITS[ctName]
    if (ctstate === undefined) throw new SvcplaneTypeError(`packet.ctstate: unknown state ${show(ctName)}`)
    let tcpFlags = 0
    if (packet.tcpFlags) {
      for (const f of packet.tcpFlags) {
        const bit = TCP_FLAG_BITS[f.toUpperCase()]
        if (bit === undefined) throw new SvcplaneTypeError(`packet.tcpFlags: unknown flag ${show(f)}`)
        tcpFlags |= bit
      }
    } else if (proto === 6) {
      tcpFlags = ctName === 'NEW' ? TCP_FLAG_BITS.SYN! : TCP_FLAG_BITS.ACK!
    }
    const now = packet.now ?? 0
    if (!Number.isFinite(now)) throw new SvcplaneRangeError(`packet.now must be a finite number of seconds, got ${show(now)}`)
    return {
      family: src.family, src, dst, src4: src.w[0]!, dst4: dst.w[0]!, sport, dport, proto,
      inIface: packet.inIface ?? '', outIface: packet.outIface ?? '',
      mark: (packet.mark ?? 0) >>> 0, length: packet.length ?? 60, ctstate, tcpFlags,
      ttl: packet.ttl ?? 64, now,
      physdevIn: packet.physdevIn, physdevOut: packet.physdevOut,
      bridged: packet.physdevIn !== undefined || packet.physdevOut !== undefined,
    }
  }

  /** Walks one built-in chain; returns Accept, Drop or Reject for this table. */
  private walk(table: 'nat' | 'filter', chainName: string, p: PacketState, w: WalkState): Action {
    const start = this.builtinChain(table, chainName)
    if (!start) return Action.Accept // table or chain absent: nothing to do
    const stackChains: CompiledChain[] = []
    const stackIndex: number[] = []
    let chain = start
    let i = 0
    const trace = this.trace
    for (;;) {
      if (i >= chain.rules.length) {
        if (chain.builtin || stackChains.length === 0) return this.policy(start, p)
        chain = stackChains.pop()!
        i = stackIndex.pop()!
        continue
      }
      const r = chain.rules[i++]!
      if (r.test !== undefined && !r.test(p)) {
        if (trace === 'all') w.visited.push(r.visitNo)
        if (r.unsupported) w.unsupported.push(r.ref)
        continue
      }
      this.packetCounts[r.id]! += 1
      this.byteCounts[r.id]! += p.length
      if (trace !== 'none') w.visited.push(r.visitYes)
      if (r.unsupported) w.unsupported.push(r.ref)
      if (r.servicePort !== undefined) w.servicePort = r.servicePort
      switch (r.action) {
        case Action.Continue:
          break
        case Action.Mark:
          p.mark = ((p.mark & ~r.markClear) ^ r.markXor) >>> 0
          break
        case Action.Accept:
          return Action.Accept
        case Action.Drop:
        case Action.Reject:
          w.decider = r
          return r.action
        case Action.Return:
          // RETURN from the built-in chain (or from a chain reached by -g from it) applies the policy
          if (stackChains.length === 0) return this.policy(start, p)
          chain = stackChains.pop()!
          i = stackIndex.pop()!
          break
        case Action.Jump:
          if (stackChains.length >= this.maxDepth) throw new SvcplaneRangeError(`jump depth exceeds ${this.maxDepth} at ${table} ${chain.name} rule ${r.ref.num} (line ${r.ref.line})`)
          stackChains.push(chain)
          stackIndex.push(i)
          chain = r.target!
          i = 0
          break
        case Action.Goto:
          chain = r.target!
          i = 0
          break
        case Action.Dnat: {
          const addr = r.dnatAddr ?? p.dst
          const port = r.dnatPort ?? p.dport
          p.dst = addr
          p.dst4 = addr.w[0]!
          p.dport = port
          p.ctstate |= CT_DNAT
          w.dnatEndpoint = formatEndpoint(addr, port)
          return Action.Accept
        }
        case Action.Snat:
          p.ctstate |= CT_SNAT
          w.snat = r.snatAddr
          return Action.Accept
        case Action.Masquerade:
          p.ctstate |= CT_SNAT
          w.masquerade = true
          return Action.Accept
      }
    }
  }

  private readonly builtinCache = new Map<string, CompiledChain | null>()

  private builtinChain(table: string, chain: string): CompiledChain | undefined {
    const key = table === 'nat' ? chain : `filter/${chain}`
    let c = this.builtinCache.get(key)
    if (c === undefined) {
      c = this.chains.get(`${table}/${chain}`) ?? null
      this.builtinCache.set(key, c)
    }
    return c ?? undefined
  }

  private policy(start: CompiledChain, p: PacketState): Action {
    this.policyPackets[start.id]! += 1
    this.policyBytes[start.id]! += p.length
    return start.policy
  }

  /** Per-rule counters, like `iptables -L -v` (only rules that matched at least once unless `all`). */
  counters(options: { all?: boolean } = {}): RuleCounter[] {
    const out: RuleCounter[] = []
    for (const r of this.rules) {
      const packets = this.packetCounts[r.id]!
      if (packets === 0 && !options.all) continue
      out.push({ ref: r.ref, packets, bytes: this.byteCounts[r.id]! })
    }
    return out
  }

  /** Counters of built-in chain policies. */
  policyCounters(): ChainCounter[] {
    return this.chainList.filter((c) => c.builtin).map((c) => ({
      table: c.table, chain: c.name, policy: c.policyName,
      packets: this.policyPackets[c.id]!, bytes: this.policyBytes[c.id]!,
    }))
  }

  /** The counter of one rule, found by its reference. */
  counterOf(ref: RuleRef): { packets: number; bytes: number } {
    const r = this.rules.find((x) => x.ref === ref)
    if (!r) throw new SvcplaneRangeError(`rule ${ref.table} ${ref.chain} ${ref.num} is not part of this evaluator`)
    return { packets: this.packetCounts[r.id]!, bytes: this.byteCounts[r.id]! }
  }

  /** The rules of a chain, in order, as references. */
  chainRules(table: string, chain: string): RuleRef[] {
    const c = this.chains.get(`${table}/${chain}`)
    if (!c) throw new SvcplaneRangeError(`no chain ${chain} in table ${table}`)
    return c.rules.map((r) => r.ref)
  }

  /** `iptables -t TABLE -L CHAIN -v`-style text with counters, for humans. */
  listChain(table: string, chain: string): string {
    const c = this.chains.get(`${table}/${chain}`)
    if (!c) throw new SvcplaneRangeError(`no chain ${chain} in table ${table}`)
    const head = c.builtin
      ? `Chain ${chain} (policy ${c.policyName} ${this.policyPackets[c.id]} packets, ${this.policyBytes[c.id]} bytes)`
      : `Chain ${chain}`
    const lines = c.rules.map((r) => `${String(this.packetCounts[r.id]).padStart(8)} ${String(this.byteCounts[r.id]).padStart(10)}  ${serializeRule(r.ref.rule)}`)
    return [head, '    pkts      bytes  rule', ...lines].join('\n')
  }

  /**
   * Carries the counters of `from` over for the chains `keep` names whose rule count is
   * unchanged (what a kernel keeps for the chains an iptables-restore does not rewrite).
   */
  importCounters(from: IptablesEvaluator, keep: (table: string, chain: string) => boolean): void {
    for (const c of this.chainList) {
      if (!keep(c.table, c.name)) continue
      const old = from.chains.get(`${c.table}/${c.name}`)
      if (!old || old.rules.length !== c.rules.length) continue
      c.rules.forEach((r, i) => {
        const o = old.rules[i]!
        this.packetCounts[r.id] = from.packetCounts[o.id]!
        this.byteCounts[r.id] = from.byteCounts[o.id]!
      })
      if (c.builtin) {
        this.policyPackets[c.id] = from.policyPackets[old.id]!
        this.policyBytes[c.id] = from.policyBytes[old.id]!
      }
    }
  }

  resetCounters(): void {
    this.packetCounts.fill(0)
    this.byteCounts.fill(0)
    this.policyPackets.fill(0)
    this.policyBytes.fill(0)
  }
}

/** The packet's shape, checked before anything reads it, so bad input is a TypeError naming the field. */
function checkEvalPacket(packet: EvalPacket): void {
  if (packet === null || typeof packet !== 'object') throw new SvcplaneTypeError(`packet must be an object, got ${show(packet)}`)
  for (const f of ['src', 'dst'] as const)
    if (typeof packet[f] !== 'string') throw new SvcplaneTypeError(`packet.${f} must be an IP address string, got ${show(packet[f])}`)
  if (typeof packet.protocol !== 'string' && typeof packet.protocol !== 'number')
    throw new SvcplaneTypeError(`packet.protocol must be a name or an IP protocol number, got ${show(packet.protocol)}`)
  for (const f of ['sport', 'dport', 'mark', 'length', 'now', 'ttl'] as const)
    if (packet[f] !== undefined && typeof packet[f] !== 'number') throw new SvcplaneTypeError(`packet.${f} must be a number, got ${show(packet[f])}`)
  if (packet.tcpFlags !== undefined && (!Array.isArray(packet.tcpFlags) || !packet.tcpFlags.every((x) => typeof x === 'string')))
    throw new SvcplaneTypeError(`packet.tcpFlags must be an array of flag names, got ${show(packet.tcpFlags)}`)
  for (const f of ['inIface', 'outIface', 'physdevIn', 'physdevOut', 'ctstate'] as const)
    if (packet[f] !== undefined && typeof packet[f] !== 'string') throw new SvcplaneTypeError(`packet.${f} must be a string, got ${show(packet[f])}`)
}
