// The identity of an object to delete: only metadata.namespace and metadata.name are read, so a
// stale or partial copy of the object (or a "namespace/name" string) is enough.
import { describeObject } from './invalid.js'
import { isRecord, requiredString } from './fields.js'
import { SvcplaneTypeError } from '../errors.js'

export interface ObjectKey {
  namespace: string
  name: string
  /** "namespace/name" */
  key: string
}

/** "ns/name" of a Service or EndpointSlice-like object, for deletes (only metadata is read). */
export function objectKey(kind: 'Service' | 'EndpointSlice', input: unknown): ObjectKey {
  if (typeof input === 'string') {
    const slash = input.indexOf('/')
    if (slash <= 0 || slash === input.length - 1) throw new SvcplaneTypeError(`${kind} key must be "namespace/name", got ${JSON.stringify(input)}`)
    return { namespace: input.slice(0, slash), name: input.slice(slash + 1), key: input }
  }
  if (!isRecord(input)) throw new SvcplaneTypeError(`${kind} must be an object or "namespace/name", got ${input === null ? 'null' : typeof input}`)
  const meta = isRecord(input.metadata) ? input.metadata : {}
  const obj = describeObject(kind, meta.namespace, meta.name)
  const namespace = requiredString(obj, 'metadata.namespace', meta.namespace)
  const name = requiredString(obj, 'metadata.name', meta.name)
  return { namespace, name, key: `${namespace}/${name}` }
}
