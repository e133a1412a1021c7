// How an error message shows a bad value: any value at all, without throwing (BigInts,
// symbols and objects without a prototype defeat JSON.stringify and template strings).
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'symbol') return v.toString()
  if (typeof v === 'function') return 'a function'
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (typeof v === 'object' && v !== null) {
    const ctor = (v as { constructor?: { name?: unknown } }).constructor
    return `an object (${typeof ctor?.name === 'string' ? ctor.name : 'no prototype'})`
  }
  return String(v)
}
