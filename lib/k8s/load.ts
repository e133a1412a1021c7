// Splits whatever the user has — `kubectl get services,endpointslices -A -o json` output (a
// List), a ServiceList / EndpointSliceList, an array, a single object, or their JSON text —
// into Services and EndpointSlices. Items of other kinds (a `kubectl get all` also lists pods)
// are counted and skipped. @kubernetes/client-node list items carry no `kind`, so the shape
// decides: an `addressType` marks an EndpointSlice, a `spec` a Service.
import { isRecord } from './fields.js'
import { parseService, type ValidService } from './service.js'
import { parseEndpointSlice, type ValidEndpointSlice } from './endpointslice.js'

export interface SplitObjects {
  services: unknown[]
  endpointSlices: unknown[]
  /** Items that are neither (pods, config maps, ...). */
  skipped: number
}

export interface ParsedObjects {
  services: ValidService[]
  endpointSlices: ValidEndpointSlice[]
  skipped: number
}

type Kind = 'Service' | 'EndpointSlice' | 'other'

function kindOf(item: unknown, listKind: string | undefined): Kind {
  if (!isRecord(item)) return 'other'
  const kind = typeof item.kind === 'string' ? item.kind : listKind?.replace(/List$/, '')
  if (kind === 'Service' || kind === 'EndpointSlice') return kind
  if (kind !== undefined && kind !== '') return 'other'
  if ('addressType' in item) return 'EndpointSlice'
  if (isRecord(item.spec)) return 'Service'
  return 'other'
}

export function splitObjects(input: unknown): SplitObjects {
  let value = input
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch (err) {
      throw new TypeError(`input is not valid JSON: ${(err as Error).message}`)
    }
  }
  let items: unknown[]
  let listKind: string | undefined
  if (Array.isArray(value)) {
    items = value
  } else if (isRecord(value) && Array.isArray(value.items)) {
    items = value.items
    listKind = typeof value.kind === 'string' && value.kind !== 'List' ? value.kind : undefined
  } else if (isRecord(value)) {
    items = [value]
  } else {
    throw new TypeError(`input must be a List, an array or an object, got ${value === null ? 'null' : typeof value}`)
  }
  const out: SplitObjects = { services: [], endpointSlices: [], skipped: 0 }
  for (const item of items) {
    const kind = kindOf(item, listKind)
    if (kind === 'Service') out.services.push(item)
    else if (kind === 'EndpointSlice') out.endpointSlices.push(item)
    else out.skipped++
  }
  return out
}

/** Splits and validates everything; throws the first invalid object's error (which names it). */
export function parseObjects(input: unknown): ParsedObjects {
  const split = splitObjects(input)
  return {
    services: split.services.map(parseService),
    endpointSlices: split.endpointSlices.map(parseEndpointSlice),
    skipped: split.skipped,
  }
}
