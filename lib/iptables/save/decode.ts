// Decodes the raw pieces of a rule into typed matches and targets, validating
// values (addresses, ports, marks, probabilities) with the line number.

import { IptablesParseError } from './errors.js'
import { PROTOCOLS } from './extensions.js'
import { parseCidr, type Cidr } from '../../util/address-words.js'
import type { RawMatch, RawTarget } from './rule-args.js'
import type {
  AddrSpec, FlagListSpec, IfaceSpec, IpSpec, Match, NatRange, PortRange, PortSpec, RuleOption,
  Target,
} from './types.js'

type Fail = (msg: string) => never

function failer(line: number): Fail {
  return (msg: string) => { throw new IptablesParseError(line, msg) }
}

function addrSpec(o: RuleOption, fail: Fail): AddrSpec {
  const text = o.values[0]!
  const cidrs: Cidr[] = []
  for (const part of text.split(',')) {
    const c = parseCidr(part)
    if (!c) fail(`invalid address ${JSON.stringify(part)} for ${o.name}`)
    cidrs.push(c!)
  }
  return { negated: o.negated, cidrs, text }
}

function ifaceSpec(o: RuleOption): IfaceSpec {
  const v = o.values[0]!
  const wildcard = v.endsWith('+')
  return { negated: o.negated, name: wildcard ? v.slice(0, -1) : v, wildcard }
}

function parsePort(s: string, opt: string, fail: Fail): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) fail(`invalid port ${JSON.stringify(s)} for ${opt}`)
  return Number(s)
}

/** "80", "80:90", ":90", "1024:" and comma lists (multiport). */
export function parsePortList(text: string, opt: string, fail: Fail, allowList: boolean): PortRange[] {
  const parts = allowList ? text.split(',') : [text]
  return parts.map((p) => {
    const colon = p.indexOf(':')
    if (colon < 0) {
      const n = parsePort(p, opt, fail)
      return { min: n, max: n }
    }
    const lo = p.slice(0, colon) === '' ? 0 : parsePort(p.slice(0, colon), opt, fail)
    const hi = p.slice(colon + 1) === '' ? 65535 : parsePort(p.slice(colon + 1), opt, fail)
    // iptables swaps an inverted range rather than rejecting it
    return lo <= hi ? { min: lo, max: hi } : { min: hi, max: lo }
  })
}

function portSpec(o: RuleOption, fail: Fail, allowList: boolean): PortSpec {
  return { negated: o.negated, ranges: parsePortList(o.values[0]!, o.name, fail, allowList) }
}

function flagList(o: RuleOption): FlagListSpec {
  return { negated: o.negated, values: o.values[0]!.split(',').map((s) => s.toUpperCase()) }
}

export function parseU32(s: string, what: string, fail: Fail): number {
  const ok = /^0x[0-9a-fA-F]{1,8}$/.test(s) || /^\d{1,10}$/.test(s) || /^0[0-7]+$/.test(s)
  const n = ok ? (s.startsWith('0x') ? parseInt(s, 16) : /^0[0-7]+$/.test(s) ? parseInt(s, 8) : Number(s)) : NaN
  if (!ok || n > 0xffffffff) fail(`invalid ${what} ${JSON.stringify(s)}`)
  return n >>> 0
}

/** "value" or "value/mask" as used by -m mark and -j MARK. */
function markPair(s: string, what: string, fail: Fail): { value: number; mask: number | undefined } {
  const slash = s.indexOf('/')
  if (slash < 0) return { value: parseU32(s, what, fail), mask: undefined }
  return { value: parseU32(s.slice(0, slash), what, fail), mask: parseU32(s.slice(slash + 1), what, fail) }
}

export function decodeIpSpec(base: RuleOption[], line: number): IpSpec {
  const fail = failer(line)
  const spec: IpSpec = { options: base }
  for (const o of base) {
    const canonical = o.name.startsWith('--') ? longBase(o.name) : o.name
    if ((canonical === '-s' || canonical === '-d' || canonical === '-p' || canonical === '-i' || canonical === '-o' || canonical === '-f')) {
      const key = { '-s': 'src', '-d': 'dst', '-p': 'protocol', '-i': 'inIface', '-o': 'outIface', '-f': 'fragment' }[canonical] as keyof IpSpec
      if (spec[key] !== undefined) fail(`multiple ${o.name} options`)
    }
    switch (canonical) {
      case '-s': spec.src = addrSpec(o, fail); break
      case '-d': spec.dst = addrSpec(o, fail); break
      case '-p': {
        const name = o.values[0]!.toLowerCase()
        const number = /^\d{1,3}$/.test(name) ? Number(name) : PROTOCOLS[name]
        if (number === undefined || number > 255) fail(`unknown protocol ${JSON.stringify(o.values[0])}`)
        spec.protocol = { negated: o.negated, name, number: number! }
        break
      }
      case '-i': spec.inIface = ifaceSpec(o); break
      case '-o': spec.outIface = ifaceSpec(o); break
      case '-f': spec.fragment = { negated: o.negated }; break
      default: break // -4 / -6 / -c carry no match semantics
    }
  }
  return spec
}

function longBase(name: string): string {
  switch (name) {
    case '--source': case '--src': return '-s'
    case '--destination': case '--dst': return '-d'
    case '--protocol': return '-p'
    case '--in-interface': return '-i'
    case '--out-interface': return '-o'
    case '--fragment': return '-f'
    default: return name
  }
}

function flagOf(m: RawMatch, name: string): RuleOption | undefined {
  return m.options.find((o) => o.name === name)
}

export function decodeMatch(m: RawMatch, line: number): Match {
  const fail = failer(line)
  const common = { module: m.module, pos: m.pos, options: m.options, ...(m.implicit ? { implicit: true } : {}) }
  const opt = (...names: string[]) => m.options.find((o) => names.includes(o.name))
  switch (m.module) {
    case 'tcp': case 'udp': case 'sctp': case 'udplite': case 'dccp': {
      const d = opt('--dport', '--destination-port')
      const s = opt('--sport', '--source-port')
      const flags = opt('--tcp-flags')
      const syn = opt('--syn')
      return {
        kind: 'port', ...common,
        ...(d ? { dport: portSpec(d, fail, false) } : {}),
        ...(s ? { sport: portSpec(s, fail, false) } : {}),
        ...(flags ? { tcpFlags: { negated: flags.negated, mask: flags.values[0]!.toUpperCase().split(','), comp: flags.values[1]!.toUpperCase().split(',') } } : {}),
        ...(syn ? { syn: { negated: syn.negated } } : {}),
      }
    }
    case 'multiport': {
      const d = opt('--dports', '--destination-ports')
      const s = opt('--sports', '--source-ports')
      const p = opt('--ports')
      if (!d && !s && !p) fail('multiport needs --dports, --sports or --ports')
      return {
        kind: 'multiport', ...common,
        ...(d ? { dports: portSpec(d, fail, true) } : {}),
        ...(s ? { sports: portSpec(s, fail, true) } : {}),
        ...(p ? { ports: portSpec(p, fail, true) } : {}),
      }
    }
    case 'addrtype': {
      const s = flagOf(m, '--src-type')
      const d = flagOf(m, '--dst-type')
      return {
        kind: 'addrtype', ...common,
        ...(s ? { srcType: flagList(s) } : {}),
        ...(d ? { dstType: flagList(d) } : {}),
        limitIfaceIn: !!flagOf(m, '--limit-iface-in'),
        limitIfaceOut: !!flagOf(m, '--limit-iface-out'),
      }
    }
    case 'mark': {
      const o = flagOf(m, '--mark')
      if (!o) fail('mark match needs --mark')
      const { value, mask } = markPair(o!.values[0]!, 'mark', fail)
      return { kind: 'mark', ...common, negated: o!.negated, value, mask: mask ?? 0xffffffff }
    }
    case 'comment': {
      const o = flagOf(m, '--comment')
      if (!o) fail('comment match needs --comment')
      return { kind: 'comment', ...common, comment: o!.values[0]! }
    }
    case 'statistic': {
      const mode = flagOf(m, '--mode')?.values[0]
      if (mode !== 'random' && mode !== 'nth') fail(`statistic --mode must be random or nth, got ${JSON.stringify(mode)}`)
      if (mode === 'random') {
        const p = flagOf(m, '--probability')
        if (!p) fail('statistic --mode random needs --probability')
        const prob = Number(p!.values[0])
        if (!/^\d*\.?\d+(e-?\d+)?$/i.test(p!.values[0]!) || !(prob >= 0 && prob <= 1)) fail(`invalid probability ${JSON.stringify(p!.values[0])}`)
        return { kind: 'statistic', ...common, mode: 'random', negated: p!.negated, probability: prob }
      }
      const every = flagOf(m, '--every')
      if (!every) fail('statistic --mode nth needs --every')
      const everyN = Number(every!.values[0])
      if (!Number.isInteger(everyN) || everyN < 1) fail(`invalid --every ${JSON.stringify(every!.values[0])}`)
      const packet = flagOf(m, '--packet')
      const packetN = packet ? Number(packet.values[0]) : 0
      if (!Number.isInteger(packetN) || packetN < 0 || packetN >= everyN) fail(`invalid --packet ${JSON.stringify(packet?.values[0])}`)
      return { kind: 'statistic', ...common, mode: 'nth', negated: every!.negated, every: everyN, packet: packetN }
    }
    case 'recent': {
      const cmds = m.options.filter((o) => ['--set', '--rcheck', '--update', '--remove'].includes(o.name))
      if (cmds.length !== 1) fail('recent needs exactly one of --set, --rcheck, --update, --remove')
      const secs = flagOf(m, '--seconds')
      const hits = flagOf(m, '--hitcount')
      const seconds = secs ? Number(secs.values[0]) : undefined
      if (secs && (!Number.isInteger(seconds) || seconds! < 0)) fail(`invalid --seconds ${JSON.stringify(secs.values[0])}`)
      const hitcount = hits ? Number(hits.values[0]) : undefined
      if (hits && (!Number.isInteger(hitcount) || hitcount! < 0)) fail(`invalid --hitcount ${JSON.stringify(hits.values[0])}`)
      const mask = flagOf(m, '--mask')?.values[0]
      if (mask !== undefined && !parseCidr(mask)) fail(`invalid recent --mask ${JSON.stringify(mask)}`)
      return {
        kind: 'recent', ...common,
        name: flagOf(m, '--name')?.values[0] ?? 'DEFAULT',
        command: cmds[0]!.name.slice(2) as 'set' | 'rcheck' | 'update' | 'remove',
        negated: m.options.some((o) => o.negated),
        ...(seconds !== undefined ? { seconds } : {}),
        ...(hitcount !== undefined ? { hitcount } : {}),
        reap: !!flagOf(m, '--reap'),
        rttl: !!flagOf(m, '--rttl'),
        ...(mask !== undefined ? { mask } : {}),
        side: flagOf(m, '--rdest') ? 'dest' : 'source',
      }
    }
    case 'conntrack': {
      const s = flagOf(m, '--ctstate')
      return { kind: 'conntrack', ...common, ...(s ? { ctstate: flagList(s) } : {}) }
    }
    case 'state': {
      const s = flagOf(m, '--state')
      if (!s) fail('state match needs --state')
      return { kind: 'state', ...common, state: flagList(s!) }
    }
    case 'physdev': {
      const pin = flagOf(m, '--physdev-in')
      const pout = flagOf(m, '--physdev-out')
      const isIn = flagOf(m, '--physdev-is-in')
      const isOut = flagOf(m, '--physdev-is-out')
      const isBr = flagOf(m, '--physdev-is-bridged')
      return {
        kind: 'physdev', ...common,
        ...(pin ? { physdevIn: ifaceSpec(pin) } : {}),
        ...(pout ? { physdevOut: ifaceSpec(pout) } : {}),
        ...(isIn ? { isIn: { negated: isIn.negated } } : {}),
        ...(isOut ? { isOut: { negated: isOut.negated } } : {}),
        ...(isBr ? { isBridged: { negated: isBr.negated } } : {}),
      }
    }
    case 'nfacct': {
      const o = flagOf(m, '--nfacct-name')
      if (!o) fail('nfacct match needs --nfacct-name')
      return { kind: 'nfacct', ...common, name: o!.values[0]! }
    }
    case 'set': {
      const o = flagOf(m, '--match-set') ?? flagOf(m, '--set')
      if (!o) fail('set match needs --match-set NAME FLAGS')
      const flags = o!.values[1]!.split(',')
      if (flags.some((f) => f !== 'src' && f !== 'dst')) fail(`invalid set flags ${JSON.stringify(o!.values[1])}`)
      return { kind: 'set', ...common, negated: o!.negated, setName: o!.values[0]!, flags: flags as Array<'src' | 'dst'> }
    }
    default:
      return { kind: 'opaque', ...common }
  }
}

function natRange(text: string, fail: Fail): NatRange {
  // Forms: "1.2.3.4", "1.2.3.4:80", "1.2.3.4-1.2.3.9:80-90", "[fd00::1]:80", "fd00::1", ":80"
  let addrPart = text
  let portPart: string | undefined
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) fail(`invalid NAT range ${JSON.stringify(text)}`)
    addrPart = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) fail(`invalid NAT range ${JSON.stringify(text)}`)
      portPart = rest.slice(1)
    }
  } else if (text.split(':').length === 2) {
    const colon = text.indexOf(':')
    addrPart = text.slice(0, colon)
    portPart = text.slice(colon + 1)
  }
  const range: NatRange = {}
  if (addrPart !== '') {
    const [a, b] = addrPart.split('-')
    if (!parseCidr(a!) || (b !== undefined && !parseCidr(b))) fail(`invalid NAT address ${JSON.stringify(addrPart)}`)
    range.addr = a!
    if (b !== undefined) range.addrEnd = b
  }
  if (portPart !== undefined) {
    const [lo, hi] = portPart.split('-')
    range.portMin = parsePort(lo!, 'NAT range', fail)
    range.portMax = hi === undefined ? range.portMin : parsePort(hi, 'NAT range', fail)
  }
  return range
}

/**
 * Decodes a target. `isChain` says whether a user chain by that name exists
 * in the table: a name that is neither a known extension nor a chain stays
 * opaque (and is reported as unsupported).
 */
export function decodeTarget(t: RawTarget, line: number, isChain: (name: string) => boolean): Target {
  const fail = failer(line)
  const common = { name: t.name, goto: t.goto, pos: t.pos, options: t.options }
  const o = (name: string) => t.options.find((x) => x.name === name)
  if (t.goto && !isChain(t.name)) {
    return { kind: 'opaque', ...common }
  }
  switch (t.name) {
    case 'ACCEPT': return { kind: 'accept', ...common }
    case 'DROP': return { kind: 'drop', ...common }
    case 'RETURN': return { kind: 'return', ...common }
    case 'REJECT': {
      const w = o('--reject-with')?.values[0]
      return { kind: 'reject', ...common, ...(w !== undefined ? { rejectWith: w } : {}) }
    }
    case 'DNAT': {
      const to = o('--to-destination')
      return { kind: 'dnat', ...common, ...(to ? { to: natRange(to.values[0]!, fail) } : {}) }
    }
    case 'SNAT': {
      const to = o('--to-source')
      return { kind: 'snat', ...common, ...(to ? { to: natRange(to.values[0]!, fail) } : {}), randomFully: !!o('--random-fully') }
    }
    case 'MASQUERADE': {
      const p = o('--to-ports')
      const toPorts = p ? parsePortList(p.values[0]!.replace('-', ':'), '--to-ports', fail, false)[0] : undefined
      return { kind: 'masquerade', ...common, ...(toPorts ? { toPorts } : {}), randomFully: !!o('--random-fully') }
    }
    case 'MARK': {
      // Normalize every spelling to the kernel's xmark form: mark = (mark & ~clear) ^ xor.
      const ops = t.options.filter((x) => x.name !== '')
      if (ops.length !== 1) fail('MARK needs exactly one of --set-xmark, --set-mark, --or-mark, --and-mark, --xor-mark')
      const op = ops[0]!
      const { value, mask } = markPair(op.values[0]!, 'mark', fail)
      let xorValue: number
      let clearMask: number
      switch (op.name) {
        case '--set-xmark': xorValue = value; clearMask = mask ?? 0xffffffff; break
        case '--set-mark': xorValue = value; clearMask = ((mask ?? 0xffffffff) | value) >>> 0; break
        case '--or-mark': xorValue = value; clearMask = value; break
        case '--and-mark': xorValue = 0; clearMask = (~value) >>> 0; break
        case '--xor-mark': xorValue = value; clearMask = 0; break
        default: return fail(`unknown MARK option ${op.name}`)
      }
      return { kind: 'mark', ...common, xorValue, clearMask }
    }
    case 'LOG': case 'NFLOG': return { kind: 'log', ...common }
    default:
      if (isChain(t.name)) return { kind: 'jump', ...common, chain: t.name }
      return { kind: 'opaque', ...common }
  }
}
