// Errors for malformed Kubernetes objects. Every message names the object (Kind ns/name) and
// the field, so one bad object in a List of thousands can be found.
import { show } from '../util/show.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../errors.js'

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Endpoints'

/** "Service ns1/svc1" (or "Service <unnamed>" when the name itself is what is missing). */
export function describeObject(kind: ObjectKind, namespace: unknown, name: unknown): string {
  const ns = typeof namespace === 'string' && namespace !== '' ? namespace : '<no namespace>'
  const nm = typeof name === 'string' && name !== '' ? name : '<no name>'
  return `${kind} ${ns}/${nm}`
}

/** The bad value as JSON when it has one (objects shown whole help find them), else as util/show says. */
function showValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function') return show(value)
  try {
    return JSON.stringify(value) ?? show(value)
  } catch {
    return show(value)
  }
}

/** Wrong type, missing, or unparsable. */
export function invalidField(object: string, field: string, expected: string, got: unknown): TypeError {
  return new SvcplaneTypeError(`${object}: ${field} must be ${expected}, got ${showValue(got)}`)
}

/** A number outside what the field allows. */
export function outOfRange(object: string, field: string, expected: string, got: unknown): RangeError {
  return new SvcplaneRangeError(`${object}: ${field} must be ${expected}, got ${showValue(got)}`)
}
