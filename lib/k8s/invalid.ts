// Errors for malformed Kubernetes objects. Every message names the object (Kind ns/name) and
// the field, so one bad object in a List of thousands can be found.

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Endpoints'

/** "Service ns1/svc1" (or "Service <unnamed>" when the name itself is what is missing). */
export function describeObject(kind: ObjectKind, namespace: unknown, name: unknown): string {
  const ns = typeof namespace === 'string' && namespace !== '' ? namespace : '<no namespace>'
  const nm = typeof name === 'string' && name !== '' ? name : '<no name>'
  return `${kind} ${ns}/${nm}`
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === undefined) return 'nothing'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/** Wrong type, missing, or unparsable. */
export function invalidField(object: string, field: string, expected: string, got: unknown): TypeError {
  return new TypeError(`${object}: ${field} must be ${expected}, got ${show(got)}`)
}

/** A number outside what the field allows. */
export function outOfRange(object: string, field: string, expected: string, got: unknown): RangeError {
  return new RangeError(`${object}: ${field} must be ${expected}, got ${show(got)}`)
}
