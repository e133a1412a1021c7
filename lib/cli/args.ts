// The shared argument parser: GNU-style long options (`--name value`, `--name=value`,
// `--no-flag`), a few short aliases, `--` to end options. Every value is checked here, so
// commands receive typed values and a mistake is a usage error (exit 2) naming the option.
// An option that takes one value given twice is refused: the second must not silently win.
import { parseBytes } from '../util/read-limited.js'
import { UsageError } from './errors.js'

export type OptionType = 'string' | 'number' | 'integer' | 'boolean' | 'duration' | 'list' | 'bytes'

export interface OptionSpec {
  /** Long name without the dashes: `node-ip`. */
  name: string
  /** One-letter alias without the dash. */
  short?: string
  type: OptionType
  description: string
  /** Shown in help as `--name VALUE`. */
  valueName?: string
  default?: unknown
  /** Allowed values (string and list options). */
  choices?: readonly string[]
  /** Hidden from help (aliases kept for compatibility). */
  hidden?: boolean
  /** Another name of option `alias` (kube-proxy's flag name): its value lands there. */
  alias?: string
  /** A string option that may be given several times: the values are collected in an array. */
  repeatable?: boolean
}

export interface PositionalSpec {
  name: string
  description: string
  required?: boolean
  variadic?: boolean
}

export type ParsedValues = Record<string, unknown>

export interface ParsedArgs {
  values: ParsedValues
  positionals: string[]
  /** The options given on the command line (canonical names: an alias counts as its target), not defaulted. */
  given: Set<string>
}

/** Go-style durations as kube-proxy takes them: `1s`, `500ms`, `1m30s`, `2h`; a bare number is seconds. */
export function parseDuration(text: string): number {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t)
  const unit: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * unit[m[2]]
    matched = re.lastIndex
  }
  if (t === '' || matched !== t.length) throw new RangeError(`invalid duration ${JSON.stringify(text)} (examples: 1s, 500ms, 1m30s)`)
  return total
}

export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`
  if (seconds % 3600 === 0) return `${seconds / 3600}h`
  if (seconds % 60 === 0) return `${seconds / 60}m`
  return `${seconds}s`
}

function convert(spec: OptionSpec, raw: string, command: string): unknown {
  const bad = (why: string) => new UsageError(`--${spec.name}: ${why}`, command)
  switch (spec.type) {
    case 'string': {
      if (!spec.choices) return raw
      // Choices are matched case-insensitively (--proto TCP), and given back as spelt in choices.
      const choice = spec.choices.find((c) => c.toLowerCase() === raw.toLowerCase())
      if (choice === undefined) throw bad(`must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(raw)}`)
      return choice
    }
    case 'number': {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(n)) throw bad(`must be a number, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'integer': {
      if (!/^-?\d+$/.test(raw.trim())) throw bad(`must be an integer, got ${JSON.stringify(raw)}`)
      return Number(raw)
    }
    case 'bytes':
      try {
        return parseBytes(raw)
      } catch (err) {
        throw bad((err as Error).message)
      }
    case 'duration':
      try {
        return parseDuration(raw)
      } catch (err) {
        throw bad((err as Error).message)
      }
    case 'list': {
      const items = raw.split(',').map((s) => s.trim())
      if (items.some((s) => s === '')) throw bad(raw.trim() === '' ? 'needs a value, got ""' : `has an empty item in ${JSON.stringify(raw)}`)
      return items.map((item) => {
        const choice = spec.choices?.find((c) => c.toLowerCase() === item.toLowerCase())
        if (spec.choices && choice === undefined) throw bad(`must be among ${spec.choices.join(', ')}, got ${JSON.stringify(item)}`)
        return choice ?? item
      })
    }
    case 'boolean': {
      if (/^(true|1|yes)$/i.test(raw)) return true
      if (/^(false|0|no)$/i.test(raw)) return false
      throw bad(`must be true or false, got ${JSON.stringify(raw)}`)
    }
  }
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
  }
  return d[a.length][b.length]
}

/** The closest known name, when it is close enough to be a typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestD = Infinity
  for (const k of known) {
    const d = distance(name, k)
    if (d < bestD) [best, bestD] = [k, d]
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

export function parseArgs(argv: readonly string[], options: readonly OptionSpec[], command: string): ParsedArgs {
  const byName = new Map(options.map((o) => [o.name, o]))
  const byShort = new Map(options.filter((o) => o.short).map((o) => [o.short!, o]))
  const values: ParsedValues = {}
  const positionals: string[] = []
  for (const o of options) if (o.default !== undefined) values[o.name] = o.default
  const seen = new Map<string, string>()
  const set = (given: OptionSpec, value: unknown, asTyped: string) => {
    const spec = (given.alias !== undefined ? byName.get(given.alias) : undefined) ?? given
    const previous = seen.get(spec.name)
    seen.set(spec.name, asTyped)
    if (spec.type === 'list' || spec.repeatable) {
      // A repeated list option accumulates; the first use replaces the default.
      const prev = previous !== undefined ? (values[spec.name] as string[]) : []
      values[spec.name] = [...prev, ...(Array.isArray(value) ? value : [value])]
    } else {
      if (previous !== undefined) {
        const both = previous === asTyped ? `${asTyped} is given twice` : `${previous} and ${asTyped} both set --${spec.name}`
        throw new UsageError(`${both}: it takes one value (the second would silently win)`, command)
      }
      values[spec.name] = value
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    let spec: OptionSpec | undefined
    let inline: string | undefined
    let negated = false
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
      inline = eq === -1 ? undefined : arg.slice(eq + 1)
      spec = byName.get(name)
      if (spec === undefined && name.startsWith('no-')) {
        const base = byName.get(name.slice(3))
        if (base?.type === 'boolean') [spec, negated] = [base, true]
      }
      if (spec === undefined) {
        const hint = suggest(name, options.filter((o) => !o.hidden).map((o) => o.name))
        throw new UsageError(`unknown option --${name}${hint ? ` (did you mean --${hint}?)` : ''}`, command)
      }
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      spec = byShort.get(arg.slice(1, 2))
      if (spec === undefined) throw new UsageError(`unknown option ${arg}`, command)
      if (arg.length > 2) inline = arg.slice(2)
    } else {
      positionals.push(arg)
      continue
    }
    if (spec.type === 'boolean') {
      if (negated && inline !== undefined) throw new UsageError(`--no-${spec.name} takes no value`, command)
      set(spec, negated ? false : inline === undefined ? true : convert(spec, inline, command), `--${negated ? 'no-' : ''}${spec.name}`)
      continue
    }
    let raw = inline
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${spec.name} needs a value${spec.valueName ? ` (${spec.valueName})` : ''}`, command)
      raw = argv[++i]
    }
    set(spec, convert(spec, raw, command), `--${spec.name}`)
  }
  return { values, positionals, given: new Set(seen.keys()) }
}
