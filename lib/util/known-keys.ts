// Options objects are checked key by key: a misspelt key ({ capacty: ... }) must fail loudly,
// naming the key and the nearest valid one, instead of being ignored.
import { SvcplaneTypeError } from '../errors.js'

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length]!
}

/** The known key closest to `key`, if one is close enough to be a likely typo. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [k, d]
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

/**
 * Throws a TypeError naming the first key of `value` that is not in `known` (and the nearest
 * known key). `where` names the object in the message ("Proxier options", "Dataplane capacity").
 * `moved` maps keys that used to be valid here to where they live now.
 */
export function rejectUnknownKeys(where: string, value: object, known: readonly string[], moved: Readonly<Record<string, string>> = {}): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue
    const now = moved[key]
    const hint = now !== undefined ? `; it moved to ${now}` : (() => {
      const near = nearestKey(key, known)
      return near !== undefined ? `; did you mean ${JSON.stringify(near)}?` : ''
    })()
    throw new SvcplaneTypeError(`${where}: unknown option ${JSON.stringify(key)}${hint} (known: ${known.join(', ')})`)
  }
}

/**
 * The keys of an options type, listed once: a Record over `keyof T` makes the compiler refuse a
 * list that misses or invents a key, so the runtime check cannot drift from the interface.
 */
export function optionKeys<T>(keys: Record<keyof T, true>): string[] {
  return Object.keys(keys)
}

/** rejectUnknownKeys for an options argument that may also be missing, or not an object at all. */
export function checkOptions(where: string, value: unknown, known: readonly string[]): void {
  if (value === undefined) return
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SvcplaneTypeError(`${where} must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`)
  }
  rejectUnknownKeys(where, value, known)
}
