// `cpp-linear`: kube-proxy's nat rules compiled into flat records and walked first-match by
// C++ (native/linear). The same rules as ts-iptables, the same language as the native core:
// the ratio to native-batch is the algorithmic one, O(n) against O(1).
import { parseAddr, type Addr, type Cidr } from '../lib/util/address-words.js'
import { parseIptablesSave } from '../lib/iptables/save/parser.js'
import type { Rule } from '../lib/iptables/save/types.js'
import { loadBenchAddon } from './addons.js'

const W = 32 // words per rule, as native/linear/linear_rules.h
const F = {
  hasSrc: 1 << 0, srcNeg: 1 << 1, hasDst: 1 << 2, dstNeg: 1 << 3, hasProto: 1 << 4, protoNeg: 1 << 5,
  hasDport: 1 << 6, dportNeg: 1 << 7, hasMark: 1 << 8, markNeg: 1 << 9, hasStat: 1 << 10, statNeg: 1 << 11,
  dstLocal: 1 << 12, dstLocalNeg: 1 << 13, srcLocal: 1 << 14, srcLocalNeg: 1 << 15, never: 1 << 16, goto: 1 << 17,
}
const T = { cont: 0, accept: 1, drop: 2, reject: 3, ret: 4, jump: 5, dnat: 6, mark: 7, masquerade: 8 }

export interface LinearProgram {
  rules: Uint32Array
  chains: Uint32Array
  prerouting: number
  postrouting: number
  /** Rules compiled as never matching, with the reason (e.g. `-m recent`). */
  unsupported: string[]
}

/** IPv4 in word 3, the other words zero; IPv6 in words 0..3. */
function words4(a: Addr | Cidr, key: 'w' | 'm'): number[] {
  const w = (a as Cidr)[key] ?? (a as Addr).w
  return w.length === 1 ? [0, 0, 0, w[0] >>> 0] : w.map((x) => x >>> 0)
}

/** Compiles the nat table of an iptables-save / iptables-restore text. */
export function compileLinear(text: string): LinearProgram {
  const doc = parseIptablesSave(text)
  const nat = doc.tables.get('nat')
  if (!nat) throw new Error('no nat table')
  const names = [...nat.chains.keys()]
  const index = new Map(names.map((n, i) => [n, i]))
  const total = [...nat.chains.values()].reduce((s, c) => s + c.rules.length, 0)
  const rules = new Uint32Array(total * W)
  const chains = new Uint32Array(names.length * 3)
  const unsupported: string[] = []
  let at = 0
  names.forEach((name, ci) => {
    const chain = nat.chains.get(name)!
    chains[3 * ci] = at
    chains[3 * ci + 1] = chain.rules.length
    for (const rule of chain.rules) {
      const why = encode(rule, rules.subarray(at * W, (at + 1) * W), index)
      if (why) unsupported.push(`line ${rule.line}: ${why}`)
      at++
    }
  })
  // kube-proxy's entry points; the built-in chains only jump to them.
  const pre = index.get('KUBE-SERVICES')
  const post = index.get('KUBE-POSTROUTING')
  if (pre === undefined || post === undefined) throw new Error('nat table lacks KUBE-SERVICES or KUBE-POSTROUTING')
  return { rules, chains, prerouting: pre, postrouting: post, unsupported }
}

function encode(rule: Rule, r: Uint32Array, chainIndex: Map<string, number>): string | undefined {
  let flags = 0
  const never = (why: string) => {
    r[0] = F.never
    return why
  }
  const addr = (spec: NonNullable<Rule['ip']['src']>, at: number, has: number, neg: number): string | undefined => {
    if (spec.cidrs.length !== 1) return `${spec.text}: address lists`
    r.set(words4(spec.cidrs[0], 'w'), at)
    r.set(words4(spec.cidrs[0], 'm'), at + 4)
    flags |= has | (spec.negated ? neg : 0)
    return undefined
  }
  if (rule.ip.src) {
    const why = addr(rule.ip.src, 1, F.hasSrc, F.srcNeg)
    if (why) return never(why)
  }
  if (rule.ip.dst) {
    const why = addr(rule.ip.dst, 9, F.hasDst, F.dstNeg)
    if (why) return never(why)
  }
  if (rule.ip.protocol) {
    r[17] = rule.ip.protocol.number
    flags |= F.hasProto | (rule.ip.protocol.negated ? F.protoNeg : 0)
  }
  if (rule.ip.inIface || rule.ip.outIface) return never('interface matches')
  for (const m of rule.matches) {
    switch (m.kind) {
      case 'comment':
      case 'nfacct':
        break
      case 'port':
        if (m.sport || m.tcpFlags || m.syn) return never('-m tcp options other than --dport')
        if (m.dport) {
          if (m.dport.ranges.length !== 1) return never('port lists')
          r[18] = m.dport.ranges[0].min
          r[19] = m.dport.ranges[0].max
          flags |= F.hasDport | (m.dport.negated ? F.dportNeg : 0)
        }
        break
      case 'mark':
        r[20] = m.value >>> 0
        r[21] = m.mask >>> 0
        flags |= F.hasMark | (m.negated ? F.markNeg : 0)
        break
      case 'statistic':
        if (m.mode !== 'random' || m.probability === undefined) return never('-m statistic --mode nth')
        // The kernel compares against the probability quantized to 31 bits; scale to 32.
        r[22] = Math.min(0xffffffff, Math.round(m.probability * 0x80000000) * 2)
        flags |= F.hasStat | (m.negated ? F.statNeg : 0)
        break
      case 'addrtype': {
        const one = (spec: typeof m.dstType, has: number, neg: number) => {
          if (!spec) return true
          if (spec.values.length !== 1 || spec.values[0] !== 'LOCAL') return false
          flags |= has | (spec.negated ? neg : 0)
          return true
        }
        if (!one(m.dstType, F.dstLocal, F.dstLocalNeg) || !one(m.srcType, F.srcLocal, F.srcLocalNeg))
          return never('addrtype other than LOCAL')
        break
      }
      case 'conntrack':
      case 'state': {
        // Every packet walked here opens a connection: its state is NEW.
        const spec = m.kind === 'conntrack' ? m.ctstate : m.state
        if (spec && spec.values.includes('NEW') === spec.negated) return never('ctstate other than NEW')
        break
      }
      default:
        return never(`-m ${m.module}`)
    }
  }
  const t = rule.target
  let target = T.cont
  if (t) {
    switch (t.kind) {
      case 'accept':
        target = T.accept
        break
      case 'drop':
        target = T.drop
        break
      case 'reject':
        target = T.reject
        break
      case 'return':
        target = T.ret
        break
      case 'jump': {
        const ci = chainIndex.get(t.chain)
        if (ci === undefined) return never(`jump to ${t.chain} outside the nat table`)
        target = T.jump
        r[24] = ci
        if (t.goto) flags |= F.goto
        break
      }
      case 'dnat': {
        const a = t.to?.addr ? parseAddr(t.to.addr) : undefined
        if (!a) return never('DNAT without an address')
        target = T.dnat
        r.set(words4(a, 'w'), 26)
        r[30] = t.to?.portMin ?? 0
        break
      }
      case 'mark':
        target = T.mark
        r[24] = t.xorValue >>> 0
        r[25] = t.clearMask >>> 0
        break
      case 'masquerade':
        target = T.masquerade
        break
      case 'log':
        break
      default:
        return never(`-j ${t.name}`)
    }
  }
  r[0] = flags
  r[23] = target
  return undefined
}

export interface LinearEvaluator {
  /** Evaluates packets[0..n) (10 words each: src[4], dst[4], proto, dport) into out (8 words each). */
  evaluateBatch(packets: Uint32Array, n: number, out: Uint32Array): number
}

export function createLinear(program: LinearProgram, localAddrs: string[], seed = 1): LinearEvaluator {
  const local = new Uint32Array(localAddrs.length * 4)
  localAddrs.forEach((s, i) => {
    const a = parseAddr(s)
    if (!a) throw new TypeError(`local address ${s} is not an IP address`)
    local.set(words4(a, 'w'), i * 4)
  })
  return linearAddon().createLinear(program.rules, program.chains, local, program.prerouting, program.postrouting, seed)
}

interface LinearAddon {
  createLinear(r: Uint32Array, c: Uint32Array, l: Uint32Array, pre: number, post: number, seed: number): LinearEvaluator
}

let linear: LinearAddon | undefined

/** The benchmark-only addon of native/linear: the package's own addon does not carry the linear walker. */
function linearAddon(): LinearAddon {
  linear ??= loadBenchAddon<LinearAddon>('linear', 'svcplane_linear')
  return linear
}

/** Writes one IPv4/IPv6 packet at index i of a packets buffer. */
export function encodeLinearPacket(buf: Uint32Array, i: number, src: string, dst: string, proto: number, dport: number): void {
  const s = parseAddr(src)
  const d = parseAddr(dst)
  if (!s || !d) throw new TypeError(`bad address ${src} or ${dst}`)
  buf.set(words4(s, 'w'), i * 10)
  buf.set(words4(d, 'w'), i * 10 + 4)
  buf[i * 10 + 8] = proto
  buf[i * 10 + 9] = dport
}
