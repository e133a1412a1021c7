// Canonical spelling of nft literals, durations and chain priorities, so that text written by
// knftables ("mark and 0x4000", "timeout 10800s", "priority -100") and the kernel's listing of
// it ("meta mark & 0x00004000", "timeout 3h", "priority dstnat") parse to the same values.

import { formatAddr, parseAddr, parseCidr } from '../../util/address-words.js'
import type { NftHook } from './types.js'

const INTEGER = /^(0x[0-9a-fA-F]+|\d+)$/

/** An integer literal (decimal or 0x hex), or undefined. */
export function parseInteger(text: string): number | undefined {
  if (!INTEGER.test(text)) return undefined
  const v = Number(text)
  return Number.isSafeInteger(v) ? v : undefined
}

function canonicalAtom(text: string): string {
  const n = parseInteger(text)
  if (n !== undefined) return String(n)
  const a = parseAddr(text)
  if (a) return formatAddr(a)
  const slash = text.indexOf('/')
  if (slash > 0) {
    const c = parseCidr(text)
    if (c && c.bits >= 0) return `${formatAddr({ family: c.family, w: c.w })}/${c.bits}`
  }
  return text
}

/** Canonical text of an unquoted literal: addresses, prefixes, ranges "a-b", integers. */
export function canonicalLiteral(text: string): string {
  const dash = text.indexOf('-')
  if (dash > 0 && dash < text.length - 1 && text.indexOf('-', dash + 1) === -1) {
    const lo = text.slice(0, dash)
    const hi = text.slice(dash + 1)
    const clo = canonicalAtom(lo)
    const chi = canonicalAtom(hi)
    // only a range when both ends are numbers or addresses (not "host-unreachable")
    if ((parseInteger(lo) !== undefined && parseInteger(hi) !== undefined) || (parseAddr(lo) && parseAddr(hi))) return `${clo}-${chi}`
    return text
  }
  return canonicalAtom(text)
}

const UNIT_SECONDS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 }

/** `10800s`, `3h`, `1h30m`, `59s832ms`, or a bare number of seconds. */
export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text)
  const re = /(\d+)(ms|d|h|m|s)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!
    matched = re.lastIndex
  }
  if (matched !== text.length || matched === 0) return undefined
  return Math.round(total * 1000) / 1000
}

/** A duration as `nft list` prints it: 3h, 1m30s, 59s832ms. */
export function formatDuration(seconds: number): string {
  let ms = Math.round(seconds * 1000)
  if (ms === 0) return '0s'
  let out = ''
  for (const [unit, size] of [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000], ['ms', 1]] as const) {
    if (ms >= size) {
      out += `${Math.floor(ms / size)}${unit}`
      ms %= size
    }
  }
  return out
}

/** Named chain priorities of the ip, ip6 and inet families. */
export const NAMED_PRIORITIES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 }

/** Where nft accepts (and prints) a priority name: dstnat only at prerouting, srcnat only at postrouting. */
export function priorityNameAllowed(name: string, hook: NftHook): boolean {
  if (name === 'dstnat') return hook === 'prerouting'
  if (name === 'srcnat') return hook === 'postrouting'
  return true
}

/** The priority as `nft list` prints it: "dstnat - 10", "filter", "-110". */
export function formatPriority(priority: number, hook: NftHook): string {
  let best: string | undefined
  for (const [name, v] of Object.entries(NAMED_PRIORITIES)) {
    if (!priorityNameAllowed(name, hook) || Math.abs(priority - v) > 10) continue
    if (best === undefined || Math.abs(priority - v) < Math.abs(priority - NAMED_PRIORITIES[best]!)) best = name
  }
  if (best === undefined) return String(priority)
  const d = priority - NAMED_PRIORITIES[best]!
  return d === 0 ? best : `${best} ${d < 0 ? '-' : '+'} ${Math.abs(d)}`
}
