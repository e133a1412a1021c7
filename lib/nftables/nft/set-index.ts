// The lookup structure behind an nft set, map or verdict map: exact keys (a concatenation of
// address . protocol . port included) in one hash map, so a lookup costs one hash probe however
// many elements the set has, as the kernel's hash sets do. Prefix elements (10.0.0.0/8, or a
// prefix inside a concatenation) go into one hash map per prefix shape, probed with the key
// masked to that shape; only ranges (a-b) are scanned. Dynamic sets keep per-element expiry on
// the caller's virtual clock.

import { addrKey, parseAddr, parseCidr, type Addr } from '../../util/address-words.js'
import { PROTOCOLS } from '../../iptables/save/extensions.js'
import { parseInteger } from './values.js'
import type { NftElement, NftExpr } from './types.js'

/** How one part of a key is compared. */
export type PartKind = 'addr' | 'int' | 'proto' | 'str'

/** A packet-side value of one key part. */
export type PartValue = Addr | number | string

export const KEY_TYPE_KINDS: Record<string, PartKind> = {
  ipv4_addr: 'addr', ipv6_addr: 'addr', inet_proto: 'proto', inet_service: 'int', mark: 'int', integer: 'int',
  ifname: 'str', ct_state: 'str', fib_addrtype: 'str', nf_proto: 'str', ether_addr: 'str', ct_status: 'str',
}

type Component =
  | { t: 'exact'; key: string }
  | { t: 'prefix'; bits: number; family: 4 | 6; key: string }
  | { t: 'range'; lo: number[]; hi: number[]; family?: 4 | 6 }

export interface SetEntry {
  element: NftElement
  /** absolute expiry on the evaluator's clock; undefined: never */
  expires?: number
}

/** Thrown at compile time for a literal that does not fit its key type. */
export class LiteralError extends Error {}

function words(v: PartValue): number[] {
  return typeof v === 'number' ? [v] : typeof v === 'string' ? [] : (v.w as number[])
}

function numberOf(kind: PartKind, text: string): number | undefined {
  if (kind === 'proto') return PROTOCOLS[text] ?? parseInteger(text)
  return parseInteger(text)
}

function literalComponent(kind: PartKind, v: NftExpr): Component {
  if (v.kind !== 'value') throw new LiteralError(`a ${v.kind} expression cannot be a set key part`)
  const text = v.text
  if (kind === 'str' || v.quoted) return { t: 'exact', key: text }
  if (kind === 'addr') {
    const dash = text.indexOf('-')
    if (dash > 0) {
      const lo = parseAddr(text.slice(0, dash))
      const hi = parseAddr(text.slice(dash + 1))
      if (!lo || !hi || lo.family !== hi.family) throw new LiteralError(`invalid address range ${text}`)
      return { t: 'range', lo: [...lo.w], hi: [...hi.w], family: lo.family }
    }
    if (text.includes('/')) {
      const c = parseCidr(text)
      if (!c || c.bits < 0) throw new LiteralError(`invalid prefix ${text}`)
      return { t: 'prefix', bits: c.bits, family: c.family, key: `${c.family}/${c.bits}/${addrKey({ family: c.family, w: c.w })}` }
    }
    const a = parseAddr(text)
    if (!a) throw new LiteralError(`invalid address ${text}`)
    return { t: 'exact', key: addrKey(a) }
  }
  const dash = text.indexOf('-')
  if (dash > 0) {
    const lo = numberOf(kind, text.slice(0, dash))
    const hi = numberOf(kind, text.slice(dash + 1))
    if (lo === undefined || hi === undefined) throw new LiteralError(`invalid range ${text}`)
    return { t: 'range', lo: [lo], hi: [hi] }
  }
  const n = numberOf(kind, text)
  if (n === undefined) throw new LiteralError(`${JSON.stringify(text)} is not a ${kind === 'proto' ? 'protocol' : 'number'}`)
  return { t: 'exact', key: String(n) }
}

function valueKey(kind: PartKind, v: PartValue): string {
  if (kind === 'addr') return addrKey(v as Addr)
  return String(v)
}

function maskedKey(v: Addr, family: 4 | 6, bits: number): string | undefined {
  if (v.family !== family) return undefined
  const w = v.w.map((x, i) => {
    const b = Math.max(0, Math.min(32, bits - i * 32))
    return b === 0 ? 0 : (x & ((0xffffffff << (32 - b)) >>> 0)) >>> 0
  })
  return `${family}/${bits}/${addrKey({ family, w })}`
}

function cmpWords(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

interface PrefixGroup {
  /** per part: undefined (exact) or the prefix */
  shape: Array<{ bits: number; family: 4 | 6 } | undefined>
  map: Map<string, SetEntry>
}

/** What an index held, opaque to callers (SetIndex.takeAll / restore). */
export interface SetIndexContents {
  readonly exact: unknown
  readonly groups: unknown
  readonly ranges: unknown
}

export class SetIndex {
  private exact = new Map<string, SetEntry>()
  private groups: PrefixGroup[] = []
  private ranges: Array<{ parts: Component[]; entry: SetEntry }> = []

  constructor(readonly kinds: PartKind[], readonly size?: number) {}

  get count(): number {
    let n = this.exact.size + this.ranges.length
    for (const g of this.groups) n += g.map.size
    return n
  }

  /** Adds a literal element (from the ruleset); throws LiteralError when it does not fit the key type. */
  addElement(element: NftElement, now: number): void {
    const parts = element.key.kind === 'concat' ? element.key.parts : [element.key]
    if (parts.length !== this.kinds.length) throw new LiteralError(`element has ${parts.length} key parts, the set has ${this.kinds.length}`)
    // a comma list (ct state established,related) is one element per value
    if (parts.length === 1 && parts[0]!.kind === 'list') {
      for (const v of parts[0]!.values) this.addElement({ ...element, key: v }, now)
      return
    }
    const comps = parts.map((p, i) => literalComponent(this.kinds[i]!, p))
    const left = element.expires ?? element.timeout
    const entry: SetEntry = left !== undefined ? { element, expires: now + left } : { element }
    if (comps.some((c) => c.t === 'range')) {
      this.ranges.push({ parts: comps, entry })
      return
    }
    const key = comps.map((c) => (c as { key: string }).key).join('|')
    if (comps.every((c) => c.t === 'exact')) {
      this.exact.set(key, entry)
      return
    }
    const shape = comps.map((c) => (c.t === 'prefix' ? { bits: c.bits, family: c.family } : undefined))
    const shapeKey = shape.map((s) => (s ? `${s.family}/${s.bits}` : 'e')).join('|')
    let g = this.groups.find((x) => x.shape.map((s) => (s ? `${s.family}/${s.bits}` : 'e')).join('|') === shapeKey)
    if (!g) {
      g = { shape, map: new Map() }
      this.groups.push(g)
      // longest prefixes first, as a longest-prefix match would pick them
      this.groups.sort((a, b) => b.shape.reduce((n, s) => n + (s?.bits ?? 128), 0) - a.shape.reduce((n, s) => n + (s?.bits ?? 128), 0))
    }
    g.map.set(key, entry)
  }

  /** Removes a literal element added with addElement (the same object), as `delete element` does. */
  removeElement(element: NftElement): void {
    const parts = element.key.kind === 'concat' ? element.key.parts : [element.key]
    if (parts.length === 1 && parts[0]!.kind === 'list') {
      for (const v of parts[0]!.values) this.removeElement({ ...element, key: v })
      return
    }
    const comps = parts.map((p, i) => literalComponent(this.kinds[i]!, p))
    if (comps.some((c) => c.t === 'range')) {
      const i = this.ranges.findIndex((r) => r.entry.element === element || r.parts.every((c, j) => JSON.stringify(c) === JSON.stringify(comps[j])))
      if (i !== -1) this.ranges.splice(i, 1)
      return
    }
    const key = comps.map((c) => (c as { key: string }).key).join('|')
    if (comps.every((c) => c.t === 'exact')) {
      this.exact.delete(key)
      return
    }
    const shapeKey = comps.map((c) => (c.t === 'prefix' ? `${c.family}/${c.bits}` : 'e')).join('|')
    const g = this.groups.findIndex((x) => x.shape.map((sh) => (sh ? `${sh.family}/${sh.bits}` : 'e')).join('|') === shapeKey)
    if (g === -1) return
    this.groups[g]!.map.delete(key)
    if (this.groups[g]!.map.size === 0) this.groups.splice(g, 1)
  }

  /** Empties the index (`flush set`: dynamic elements too) in O(1) and returns what it held, for restore(). */
  takeAll(): SetIndexContents {
    const held: SetIndexContents = { exact: this.exact, groups: this.groups, ranges: this.ranges }
    this.exact = new Map()
    this.groups = []
    this.ranges = []
    return held
  }

  /** Puts back what takeAll() returned (undoing a flush). */
  restore(held: SetIndexContents): void {
    ;({ exact: this.exact, groups: this.groups, ranges: this.ranges } = held as { exact: Map<string, SetEntry>; groups: PrefixGroup[]; ranges: Array<{ parts: Component[]; entry: SetEntry }> })
  }

  private live(e: SetEntry | undefined, now: number): SetEntry | undefined {
    return e && (e.expires === undefined || e.expires > now) ? e : undefined
  }

  lookup(values: PartValue[], now: number): SetEntry | undefined {
    const kinds = this.kinds
    let key = valueKey(kinds[0]!, values[0]!)
    for (let i = 1; i < values.length; i++) key += `|${valueKey(kinds[i]!, values[i]!)}`
    const hit = this.live(this.exact.get(key), now)
    if (hit) return hit
    for (const g of this.groups) {
      let k = ''
      let ok = true
      for (let i = 0; i < values.length; i++) {
        const s = g.shape[i]
        const part = s ? maskedKey(values[i] as Addr, s.family, s.bits) : valueKey(kinds[i]!, values[i]!)
        if (part === undefined) {
          ok = false
          break
        }
        k += i === 0 ? part : `|${part}`
      }
      const e = ok ? this.live(g.map.get(k), now) : undefined
      if (e) return e
    }
    for (const r of this.ranges) {
      const matches = r.parts.every((c, i) => {
        const v = values[i]!
        if (c.t === 'exact') return valueKey(kinds[i]!, v) === c.key
        if (c.t === 'prefix') return maskedKey(v as Addr, c.family, c.bits) === c.key
        if (c.family !== undefined && (v as Addr).family !== c.family) return false
        const w = words(v)
        return cmpWords(w, c.lo) >= 0 && cmpWords(w, c.hi) <= 0
      })
      if (matches && this.live(r.entry, now)) return r.entry
    }
    return undefined
  }

  /**
   * `add @set { key }` (only when absent), `update @set { key }` (add or refresh the timeout),
   * `delete @set { key }`. False when the set is full, as the kernel's dynset then breaks the rule.
   */
  dynamicUpdate(op: 'add' | 'update' | 'delete', values: PartValue[], now: number, timeout: number | undefined, element: () => NftElement): boolean {
    let key = valueKey(this.kinds[0]!, values[0]!)
    for (let i = 1; i < values.length; i++) key += `|${valueKey(this.kinds[i]!, values[i]!)}`
    const old = this.live(this.exact.get(key), now)
    if (op === 'delete') {
      this.exact.delete(key)
      return true
    }
    if (old && op === 'add') return true
    if (!old && this.size !== undefined && this.exact.size >= this.size) {
      for (const [k, e] of this.exact) if (!this.live(e, now)) this.exact.delete(k)
      if (this.exact.size >= this.size) return false
    }
    const expires = timeout !== undefined ? now + timeout : undefined
    if (old) {
      // a refresh keeps the element, only the expiry moves
      if (expires !== undefined) old.expires = expires
      return true
    }
    const e = element()
    this.exact.set(key, expires !== undefined ? { element: e, expires } : { element: e })
    return true
  }

  /** Live exact entries with their expiry (for inspection of dynamic sets). */
  entries(now: number): SetEntry[] {
    const out: SetEntry[] = []
    for (const e of this.exact.values()) if (this.live(e, now)) out.push(e)
    for (const g of this.groups) for (const e of g.map.values()) if (this.live(e, now)) out.push(e)
    for (const r of this.ranges) if (this.live(r.entry, now)) out.push(r.entry)
    return out
  }

  /** Copies the dynamic state of another index of the same shape (entries added by the data path). */
  adoptDynamic(from: SetIndex, now: number): void {
    for (const [k, e] of from.exact) if (!this.exact.has(k) && this.live(e, now)) this.exact.set(k, { ...e })
  }
}
