// A new connection's first packet through kube-proxy's nftables table, hook by hook as
// netfilter runs it: prerouting (filter -110, nat -100), then input or forward (filter 0) and
// postrouting (nat 100); output runs filter -110, nat -100, filter 0, postrouting. It reads the
// table the syncs built, rule by rule, and understands exactly the statements kube-proxy
// writes (an unknown one is an error, never skipped). Verdict maps and sets are hash lookups.
// It stands in for a general nft evaluator behind NftPacketPath.
import { cidrContains, parseAddressInto, parseCidr, type ParsedCidr } from '../../util/address.js'
import { splitHostPort } from '../../util/host-port.js'
import type { RandomSource } from '../../util/random.js'
import { elementKey, type NftRuleObject } from './objects.js'
import type { NftTableState } from './table-state.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export interface NftPacket {
  src: string
  sport: number
  dst: string
  dport: number
  /** "tcp" | "udp" | "sctp" */
  protocol: string
  hook: 'prerouting' | 'output'
  /** Seconds (affinity set timeouts). */
  now: number
}

export interface NftRuleVisit {
  chain: string
  rule: string
  /** Comment of the rule, or of the map element whose verdict was taken. */
  comment?: string
}

export interface NftPathResult {
  verdict: 'accept' | 'drop' | 'reject'
  /** "ip:port" the packet was DNATed to. */
  dnat?: string
  /** The masquerade statement ran (in postrouting). */
  masquerade: boolean
  /** The rules that matched, in order (like `nft monitor trace`). */
  visited: NftRuleVisit[]
}

/** How the nftables mode decides a packet; a full nft evaluator can take this place. */
export interface NftPacketPath {
  evaluate(p: NftPacket): NftPathResult
}

type Verdict = 'accept' | 'drop' | 'reject' | { kind: 'jump' | 'goto'; chain: string }

interface Packet extends NftPacket {
  mark: number
  dnat?: string
  masquerade: boolean
}

type Step = (p: Packet, visit: (comment?: string) => void) => boolean | Verdict | 'return'

class Affinity {
  /** set -> source address -> expiry (seconds) */
  private readonly sets = new Map<string, Map<string, number>>()

  has(set: string, ip: string, now: number): boolean {
    const e = this.sets.get(set)?.get(ip)
    return e !== undefined && e > now
  }

  update(set: string, ip: string, now: number, timeout: number): void {
    let s = this.sets.get(set)
    if (s === undefined) this.sets.set(set, (s = new Map()))
    s.set(ip, now + timeout)
  }

  forget(exists: (set: string) => boolean): void {
    for (const name of this.sets.keys()) if (!exists(name)) this.sets.delete(name)
  }
}

function parseVerdict(words: string[], i: number): [Verdict, number] | undefined {
  const w = words[i]
  if (w === 'accept' || w === 'drop' || w === 'reject') return [w, i + 1]
  if ((w === 'jump' || w === 'goto') && words[i + 1] !== undefined) return [{ kind: w, chain: words[i + 1]! }, i + 2]
  return undefined
}

function cidrOrAddress(text: string): ParsedCidr {
  const c = parseCidr(text)
  if (c === undefined) throw new SvcplaneTypeError(`nftables packet path: bad address ${JSON.stringify(text)}`)
  return c
}

const bytesOf = (ip: string) => {
  const b = new Uint8Array(16)
  parseAddressInto(ip, b, 0)
  return b
}

export class KubeProxyPacketPath implements NftPacketPath {
  private readonly compiled = new WeakMap<NftRuleObject, Step[]>()
  private readonly affinity = new Affinity()

  constructor(
    private readonly table: NftTableState,
    private readonly isLocal: (address: string) => boolean,
    private readonly random: RandomSource,
  ) {}

  private compile(r: NftRuleObject): Step[] {
    const cached = this.compiled.get(r)
    if (cached !== undefined) return cached
    const words = r.rule.split(/\s+/)
    const steps: Step[] = []
    let i = 0
    const bad = () => new SvcplaneTypeError(`nftables packet path: cannot evaluate "${r.rule}" (chain ${r.chain}) at "${words.slice(i).join(' ')}"`)
    while (i < words.length) {
      const w = words[i]!
      const verdict = parseVerdict(words, i)
      if (verdict !== undefined) {
        const [v] = verdict
        steps.push(() => v)
        i = verdict[1]
        continue
      }
      if (w === 'return') { steps.push(() => 'return'); i++; continue }
      if (w === 'ct' && words[i + 1] === 'state' && words[i + 2] === 'new') { i += 3; continue } // every packet here opens a connection
      if ((w === 'ip' || w === 'ip6') && (words[i + 1] === 'daddr' || words[i + 1] === 'saddr')) {
        const field = words[i + 1] === 'daddr' ? 'dst' : 'src'
        if (words[i + 2] === '.' && words.slice(i + 2, i + 7).join(' ') === '. meta l4proto . th' && words[i + 7] === 'dport' && words[i + 8] === 'vmap') {
          const name = words[i + 9]!.replace(/^@/, '')
          steps.push(this.vmapStep(name, (p) => [field === 'dst' ? p.dst : p.src, p.protocol, String(p.dport)]))
          i += 10
          continue
        }
        let negate = false
        let j = i + 2
        if (words[j] === '!=') { negate = true; j++ }
        const operand = words[j]!
        if (operand.startsWith('@')) {
          const set = operand.slice(1)
          steps.push((p) => this.inSet(set, p[field], p.now) !== negate)
          i = j + 1
          continue
        }
        let cidrs: ParsedCidr[]
        if (operand === '{') {
          const end = words.indexOf('}', j)
          if (end === -1) throw bad()
          cidrs = words.slice(j + 1, end).join(' ').split(',').map((s) => s.trim()).filter((s) => s !== '').map(cidrOrAddress)
          j = end + 1
        } else {
          cidrs = [cidrOrAddress(operand)]
          j++
        }
        steps.push((p) => {
          const b = bytesOf(p[field])
          return cidrs.some((c) => cidrContains(c, b, 0)) !== negate
        })
        i = j
        continue
      }
      if (w === 'meta' && words.slice(i, i + 6).join(' ') === 'meta l4proto . th dport vmap') {
        const name = words[i + 6]!.replace(/^@/, '')
        steps.push(this.vmapStep(name, (p) => [p.protocol, String(p.dport)]))
        i += 7
        continue
      }
      if (w === 'meta' && words[i + 1] === 'l4proto' && words[i + 3] === 'dnat' && words[i + 4] === 'to') {
        const proto = words[i + 2]!
        const target = words[i + 5]!
        const to = splitHostPort(target)
        if (to === undefined) throw bad()
        steps.push((p) => {
          if (p.protocol !== proto) return false
          // The hooks' later chains see the new destination.
          p.dnat = target
          ;({ address: p.dst, port: p.dport } = to)
          return 'accept'
        })
        i += 6
        continue
      }
      if (w === 'fib' && (words[i + 1] === 'saddr' || words[i + 1] === 'daddr') && words[i + 2] === 'type' && words[i + 3] === 'local') {
        const field = words[i + 1] === 'daddr' ? 'dst' : 'src'
        steps.push((p) => this.isLocal(p[field]))
        i += 4
        continue
      }
      if (w === 'mark' && words[i + 1] === 'set' && words[i + 2] === 'mark' && (words[i + 3] === 'or' || words[i + 3] === 'xor')) {
        const m = Number(words[i + 4])
        const xor = words[i + 3] === 'xor'
        steps.push((p) => { p.mark = (xor ? p.mark ^ m : p.mark | m) >>> 0; return true })
        i += 5
        continue
      }
      if (w === 'mark' && words[i + 1] === 'and' && words[i + 3] === '==') {
        const m = Number(words[i + 2])
        const want = Number(words[i + 4])
        steps.push((p) => ((p.mark & m) >>> 0) === want)
        i += 5
        continue
      }
      if (w === 'masquerade') {
        steps.push((p) => { p.masquerade = true; return 'accept' })
        i += words[i + 1] === 'fully-random' ? 2 : 1
        continue
      }
      if (w === 'numgen' && words[i + 1] === 'random' && words[i + 2] === 'mod' && words[i + 4] === 'vmap' && words[i + 5] === '{') {
        const n = Number(words[i + 3])
        const end = words.indexOf('}', i + 5)
        const targets = new Map<number, Verdict>()
        for (const entry of words.slice(i + 6, end).join(' ').split(' , ')) {
          const parts = entry.trim().split(' ')
          const v = parseVerdict(parts, 2)
          if (parts[1] !== ':' || v === undefined) throw bad()
          targets.set(Number(parts[0]), v[0])
        }
        steps.push(() => targets.get(Math.floor(this.random() * n) % n) ?? false)
        i = end + 1
        continue
      }
      if (w === 'update' && words[i + 2] === '{' && words[i + 4] === 'saddr' && words[i + 5] === '}') {
        const set = words[i + 1]!.replace(/^@/, '')
        steps.push((p) => {
          const timeout = this.table.set(set)?.object.timeout ?? 0
          this.affinity.update(set, p.src, p.now, timeout)
          return true
        })
        i += 6
        continue
      }
      throw bad()
    }
    this.compiled.set(r, steps)
    return steps
  }

  private inSet(name: string, address: string, now: number): boolean {
    const set = this.table.set(name)
    if (set === undefined) return false
    if (set.object.flags?.includes('dynamic')) return this.affinity.has(name, address, now)
    return set.elements.has(address)
  }

  private vmapStep(name: string, key: (p: Packet) => string[]): Step {
    return (p, visit) => {
      const e = this.table.set(name)?.elements.get(elementKey(key(p)))
      if (e?.value === undefined) return false
      visit(e.comment)
      return parseVerdict(e.value.join(' ').split(' '), 0)?.[0] ?? false
    }
  }

  /** Runs `chain`; a verdict ends the packet's walk of this base chain, undefined falls back to the caller. */
  private run(chain: string, p: Packet, visited: NftRuleVisit[], depth: number): 'accept' | 'drop' | 'reject' | undefined {
    if (depth > 64) throw new SvcplaneRangeError(`nftables packet path: jumps nested deeper than 64 at chain ${chain}`)
    const rules = this.table.rules(chain)
    if (rules === undefined) throw new SvcplaneRangeError(`nftables packet path: no chain ${chain}`)
    for (const r of rules) {
      let outcome: ReturnType<Step> = true
      let seen = false
      const visit = (comment?: string) => {
        if (!seen) visited.push({ chain, rule: r.rule, ...(comment ?? r.comment) !== undefined ? { comment: comment ?? r.comment } : {} })
        seen = true
      }
      for (const step of this.compile(r)) {
        outcome = step(p, visit)
        if (outcome !== true) break
      }
      if (outcome === false) continue
      visit()
      if (outcome === true) continue
      if (outcome === 'return') return undefined
      if (typeof outcome === 'string') return outcome
      const v = this.run(outcome.chain, p, visited, depth + 1)
      if (outcome.kind === 'goto' || v !== undefined) return v
    }
    return undefined
  }

  /** Base chains by hook in priority order, for the table version they were read from. */
  private hooks: { version: number; byHook: Map<string, string[]> } | undefined

  private baseChains(hook: string): string[] {
    if (this.hooks?.version !== this.table.version) {
      const byHook = new Map<string, string[]>()
      for (const c of this.table.chainNames()) {
        const base = this.table.chain(c)!.base
        if (base !== undefined) byHook.set(base.hook, [...(byHook.get(base.hook) ?? []), c])
      }
      for (const list of byHook.values()) list.sort((a, b) => this.table.chain(a)!.base!.priority - this.table.chain(b)!.base!.priority)
      this.hooks = { version: this.table.version, byHook }
    }
    return this.hooks.byHook.get(hook) ?? []
  }

  private runHook(hook: string, p: Packet, visited: NftRuleVisit[]): 'accept' | 'drop' | 'reject' {
    for (const chain of this.baseChains(hook)) {
      const v = this.run(chain, p, visited, 0)
      if (v === 'drop' || v === 'reject') return v
    }
    return 'accept'
  }

  evaluate(packet: NftPacket): NftPathResult {
    this.affinity.forget((s) => this.table.set(s) !== undefined)
    const p: Packet = { ...packet, mark: 0, masquerade: false }
    const visited: NftRuleVisit[] = []
    // A packet for this node goes to input (also a locally sent one, through lo); others are
    // forwarded. Only postrouting masquerades.
    const runHooks = (names: string[]): 'accept' | 'drop' | 'reject' => {
      for (const h of names) {
        const v = this.runHook(h, p, visited)
        if (v !== 'accept') return v
      }
      return 'accept'
    }
    let verdict = runHooks(packet.hook === 'output' ? ['output', 'postrouting'] : ['prerouting'])
    if (verdict === 'accept') {
      if (packet.hook === 'output') verdict = this.isLocal(p.dst) ? runHooks(['input']) : 'accept'
      else verdict = runHooks(this.isLocal(p.dst) ? ['input'] : ['forward', 'postrouting'])
    }
    const out: NftPathResult = { verdict, masquerade: verdict === 'accept' && p.masquerade, visited }
    if (p.dnat !== undefined) out.dnat = p.dnat
    return out
  }
}
