// Compiles parsed rules into closures over a numeric packet state, once, so
// that walking a chain does no string work: addresses are uint32 words,
// protocols numbers, conntrack states and TCP flags bitmasks.

import { addrKey, cidrContains, LOOPBACK_V4, LOOPBACK_V6, maskAddr, MULTICAST_V4, MULTICAST_V6, parseCidr, type Addr, type Cidr } from '../../util/address-words.js'
import type { RandomSource } from '../../util/random.js'
import type { RecentCheck, RecentLists } from './recent.js'
import type { AddrSpec, IfaceSpec, IpSpec, Match, PortSpec } from '../save/types.js'

export const CT_NEW = 1
export const CT_ESTABLISHED = 2
export const CT_RELATED = 4
export const CT_INVALID = 8
export const CT_UNTRACKED = 16
export const CT_SNAT = 32
export const CT_DNAT = 64

export const CT_BITS: Record<string, number> = {
  NEW: CT_NEW, ESTABLISHED: CT_ESTABLISHED, RELATED: CT_RELATED, INVALID: CT_INVALID,
  UNTRACKED: CT_UNTRACKED, SNAT: CT_SNAT, DNAT: CT_DNAT,
}

export const TCP_FLAG_BITS: Record<string, number> = {
  FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80,
  ALL: 0x3f, NONE: 0,
}

/** The mutable state of the packet being walked. */
export interface PacketState {
  family: 4 | 6
  src: Addr
  dst: Addr
  /** src.w[0] / dst.w[0] for IPv4, kept in step with src/dst */
  src4: number
  dst4: number
  sport: number
  dport: number
  proto: number
  inIface: string
  outIface: string
  mark: number
  length: number
  ctstate: number
  tcpFlags: number
  ttl: number
  now: number
  physdevIn: string | undefined
  physdevOut: string | undefined
  bridged: boolean
}

/** Node facts and shared state the matches consult. */
export interface MatchEnv {
  isLocal(a: Addr, iface?: string): boolean
  random: RandomSource
  recent: RecentLists
  ipsets: Map<string, Cidr[]>
}

export type Test = (p: PacketState) => boolean

function addrTest(spec: AddrSpec, pick: (p: PacketState) => Addr): Test {
  const neg = spec.negated
  if (spec.cidrs.length === 1 && spec.cidrs[0]!.family === 4) {
    const m = spec.cidrs[0]!.m[0]!
    const w = spec.cidrs[0]!.w[0]!
    // IPv4 single prefix: one AND and one compare.
    return (p) => {
      const a = pick(p)
      return (a.family === 4 && ((a.w[0]! & m) >>> 0) === w) !== neg
    }
  }
  const cidrs = spec.cidrs
  return (p) => {
    const a = pick(p)
    for (const c of cidrs) if (cidrContains(c, a)) return !neg
    return neg
  }
}

function ifaceTest(spec: IfaceSpec, pick: (p: PacketState) => string | undefined): Test {
  const { name, wildcard, negated } = spec
  return (p) => {
    const v = pick(p)
    const hit = v !== undefined && v !== '' && (wildcard ? v.startsWith(name) : v === name)
    return hit !== negated
  }
}

/**
 * The common kube-proxy shape (IPv4, at most one prefix each for -s/-d, a
 * protocol, no interfaces) as one closure over constants: the linear walk
 * spends most of its time here.
 */
function compileIpv4Fast(ip: IpSpec): Test | undefined {
  const single = (a?: AddrSpec) => a === undefined || (a.cidrs.length === 1 && a.cidrs[0]!.family === 4)
  if (!single(ip.src) || !single(ip.dst) || ip.inIface || ip.outIface || ip.fragment) return undefined
  if (ip.protocol && ip.protocol.number === 0) return undefined
  const hasSrc = ip.src !== undefined
  const sm = ip.src?.cidrs[0]!.m[0] ?? 0
  const sw = ip.src?.cidrs[0]!.w[0] ?? 0
  const sn = ip.src?.negated ?? false
  const hasDst = ip.dst !== undefined
  const dm = ip.dst?.cidrs[0]!.m[0] ?? 0
  const dw = ip.dst?.cidrs[0]!.w[0] ?? 0
  const dn = ip.dst?.negated ?? false
  const hasProto = ip.protocol !== undefined
  const proto = ip.protocol?.number ?? 0
  const pn = ip.protocol?.negated ?? false
  if (!hasSrc && !hasDst && !hasProto) return undefined
  return (p) => {
    if (hasDst && ((p.family === 4 && ((p.dst4 & dm) >>> 0) === dw) === dn)) return false
    if (hasProto && ((p.proto === proto) === pn)) return false
    if (hasSrc && ((p.family === 4 && ((p.src4 & sm) >>> 0) === sw) === sn)) return false
    return true
  }
}

/** The IP-header part, checked before any -m match as the kernel does. */
export function compileIpTest(ip: IpSpec): Test | undefined {
  const fast = compileIpv4Fast(ip)
  if (fast) return fast
  const tests: Test[] = []
  if (ip.src) tests.push(addrTest(ip.src, (p) => p.src))
  if (ip.dst) tests.push(addrTest(ip.dst, (p) => p.dst))
  if (ip.protocol && ip.protocol.number !== 0) {
    const n = ip.protocol.number
    const neg = ip.protocol.negated
    tests.push((p) => (p.proto === n) !== neg)
  } else if (ip.protocol?.negated) {
    tests.push(() => false) // "! -p all" matches nothing
  }
  if (ip.inIface) tests.push(ifaceTest(ip.inIface, (p) => p.inIface))
  if (ip.outIface) tests.push(ifaceTest(ip.outIface, (p) => p.outIface))
  if (ip.fragment) {
    const neg = ip.fragment.negated
    tests.push(() => neg) // we only evaluate first fragments / whole packets
  }
  return combine(tests)
}

export function combine(tests: Test[]): Test | undefined {
  if (tests.length === 0) return undefined
  if (tests.length === 1) return tests[0]
  if (tests.length === 2) {
    const [a, b] = tests as [Test, Test]
    return (p) => a(p) && b(p)
  }
  if (tests.length === 3) {
    const [a, b, c] = tests as [Test, Test, Test]
    return (p) => a(p) && b(p) && c(p)
  }
  return (p) => {
    for (const t of tests) if (!t(p)) return false
    return true
  }
}

function portTest(spec: PortSpec, pick: (p: PacketState) => number, isDport = false): Test {
  const { negated, ranges } = spec
  if (isDport && ranges.length === 1 && ranges[0]!.min === ranges[0]!.max) {
    const port = ranges[0]!.min
    return (p) => (p.dport === port) !== negated
  }
  if (ranges.length === 1) {
    const { min, max } = ranges[0]!
    if (min === max) return (p) => (pick(p) === min) !== negated
    return (p) => {
      const v = pick(p)
      return (v >= min && v <= max) !== negated
    }
  }
  return (p) => {
    const v = pick(p)
    for (const r of ranges) if (v >= r.min && v <= r.max) return !negated
    return negated
  }
}

function flagBits(list: string[]): number {
  let bits = 0
  for (const f of list) bits |= TCP_FLAG_BITS[f] ?? 0
  return bits
}

function ctBits(list: string[]): number {
  let bits = 0
  for (const s of list) bits |= CT_BITS[s] ?? 0
  return bits
}

/** Address classes for -m addrtype; the kernel gives each address exactly one. */
function addrType(a: Addr, env: MatchEnv, iface: string | undefined): string {
  if (a.family === 4) {
    const v = a.w[0]!
    if (v === 0) return 'UNSPEC'
    if (v === 0xffffffff) return 'BROADCAST'
    if (cidrContains(MULTICAST_V4, a)) return 'MULTICAST'
    if (env.isLocal(a, iface) || cidrContains(LOOPBACK_V4, a)) return 'LOCAL'
    return 'UNICAST'
  }
  if (a.w.every((x) => x === 0)) return 'UNSPEC'
  if (cidrContains(MULTICAST_V6, a)) return 'MULTICAST'
  if (env.isLocal(a, iface) || cidrContains(LOOPBACK_V6, a)) return 'LOCAL'
  return 'UNICAST'
}

export interface CompiledMatch {
  test?: Test
  /** why the evaluator cannot interpret this match, if it cannot */
  unsupported?: string
}

/**
 * Compiles one -m match. Side effects (RNG draws, recent-list updates,
 * nth counters) only happen when the rule's earlier matches passed, because
 * a rule's tests run in order and stop at the first failure, as in the kernel.
 */
export function compileMatch(m: Match, env: MatchEnv): CompiledMatch {
  switch (m.kind) {
    case 'comment':
    case 'nfacct':
      return {}
    case 'port': {
      const tests: Test[] = []
      if (m.dport) tests.push(portTest(m.dport, (p) => p.dport, true))
      if (m.sport) tests.push(portTest(m.sport, (p) => p.sport))
      if (m.tcpFlags) {
        const mask = flagBits(m.tcpFlags.mask)
        const comp = flagBits(m.tcpFlags.comp)
        const neg = m.tcpFlags.negated
        tests.push((p) => ((p.tcpFlags & mask) === comp) !== neg)
      }
      if (m.syn) {
        const neg = m.syn.negated
        tests.push((p) => ((p.tcpFlags & 0x17) === 0x02) !== neg)
      }
      const unknown = m.options.find((o) => !['--dport', '--destination-port', '--sport', '--source-port', '--tcp-flags', '--syn'].includes(o.name))
      const test = combine(tests)
      return { ...(test ? { test } : {}), ...(unknown ? { unsupported: `option ${unknown.name} of ${m.module}` } : {}) }
    }
    case 'multiport': {
      const tests: Test[] = []
      if (m.dports) tests.push(portTest(m.dports, (p) => p.dport))
      if (m.sports) tests.push(portTest(m.sports, (p) => p.sport))
      if (m.ports) {
        const { ranges, negated } = m.ports
        tests.push((p) => ranges.some((r) => (p.sport >= r.min && p.sport <= r.max) || (p.dport >= r.min && p.dport <= r.max)) !== negated)
      }
      return { test: combine(tests)! }
    }
    case 'addrtype': {
      const tests: Test[] = []
      const limitIn = m.limitIfaceIn
      const limitOut = m.limitIfaceOut
      const ifaceFor = (p: PacketState) => (limitIn ? p.inIface : limitOut ? p.outIface : undefined)
      if (m.srcType) {
        const types = new Set(m.srcType.values)
        const neg = m.srcType.negated
        tests.push((p) => types.has(addrType(p.src, env, ifaceFor(p))) !== neg)
      }
      if (m.dstType) {
        const types = new Set(m.dstType.values)
        const neg = m.dstType.negated
        tests.push((p) => types.has(addrType(p.dst, env, ifaceFor(p))) !== neg)
      }
      const test = combine(tests)
      return test ? { test } : {}
    }
    case 'mark': {
      const { value, mask, negated } = m
      return { test: (p) => (((p.mark & mask) >>> 0) === value) !== negated }
    }
    case 'statistic': {
      const neg = m.negated
      if (m.mode === 'random') {
        // The kernel stores round(p * 2^31) and compares a 31-bit random draw against it.
        const threshold = Math.round(m.probability! * 0x80000000)
        const random = env.random
        return { test: () => (Math.floor(random() * 0x80000000) < threshold) !== neg }
      }
      // Like xt_statistic: the counter starts at (every-1) - packet and the
      // packet that wraps it to 0 matches, so --packet 0 matches the first one.
      const every = m.every! - 1
      let count = every - m.packet!
      return {
        test: () => {
          count = count === every ? 0 : count + 1
          return (count === 0) !== neg
        },
      }
    }
    case 'recent': {
      const check: RecentCheck = {
        command: m.command, negated: m.negated, seconds: m.seconds ?? 0, hitcount: m.hitcount ?? 0,
        reap: m.reap, rttl: m.rttl,
      }
      const mask4 = parseCidr(m.mask ?? '255.255.255.255')!
      const maskAll6: Addr = { family: 6, w: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff] }
      const maskFor = (a: Addr): Addr => (a.family === 4 ? { family: 4, w: mask4.w } : mask4.family === 6 ? { family: 6, w: mask4.w } : maskAll6)
      const name = m.name
      const dest = m.side === 'dest'
      const recent = env.recent
      return {
        test: (p) => {
          const a = dest ? p.dst : p.src
          const key = addrKey(maskAddr(a, maskFor(a)))
          return recent.check(name, key, check, p.now, p.ttl)
        },
      }
    }
    case 'conntrack': {
      const unknown = m.options.find((o) => o.name !== '--ctstate')
      if (!m.ctstate) return unknown ? { unsupported: `option ${unknown.name} of conntrack` } : {}
      const want = ctBits(m.ctstate.values)
      const neg = m.ctstate.negated
      const test: Test = (p) => ((p.ctstate & want) !== 0) !== neg
      return unknown ? { test, unsupported: `option ${unknown.name} of conntrack` } : { test }
    }
    case 'state': {
      const want = ctBits(m.state.values) & (CT_NEW | CT_ESTABLISHED | CT_RELATED | CT_INVALID | CT_UNTRACKED)
      const neg = m.state.negated
      return { test: (p) => ((p.ctstate & want) !== 0) !== neg }
    }
    case 'physdev': {
      const tests: Test[] = []
      if (m.physdevIn) tests.push(ifaceTest(m.physdevIn, (p) => p.physdevIn))
      if (m.physdevOut) tests.push(ifaceTest(m.physdevOut, (p) => p.physdevOut))
      if (m.isIn) { const n = m.isIn.negated; tests.push((p) => (p.bridged && p.physdevIn !== undefined) !== n) }
      if (m.isOut) { const n = m.isOut.negated; tests.push((p) => (p.bridged && p.physdevOut !== undefined) !== n) }
      if (m.isBridged) { const n = m.isBridged.negated; tests.push((p) => p.bridged !== n) }
      const test = combine(tests)
      return test ? { test } : {}
    }
    case 'set': {
      const members = env.ipsets.get(m.setName)
      if (!members) return { unsupported: `ipset ${m.setName} has no contents (pass it in options.ipsets)` }
      if (m.flags.length !== 1) return { unsupported: `ipset ${m.setName} with ${m.flags.length} dimensions` }
      const dest = m.flags[0] === 'dst'
      const neg = m.negated
      return {
        test: (p) => {
          const a = dest ? p.dst : p.src
          for (const c of members) if (cidrContains(c, a)) return !neg
          return neg
        },
      }
    }
    case 'opaque':
      return { unsupported: `match module ${m.module}` }
  }
}
