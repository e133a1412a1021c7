// Splits whatever the user has — `kubectl get services,endpointslices -A -o json` output (a
// List), a ServiceList / EndpointSliceList, an array, a single object, or their JSON text —
// into Services and EndpointSlices. v1 Endpoints (`kubectl get svc,endpoints`) are read as the
// EndpointSlices the mirroring controller would write for them, unless the input already has
// slices for that Service. Objects kube-proxy's informers never see (another proxy's Services,
// headless-labelled ones) are set aside with the reason. Items of other kinds (a `kubectl get
// all` also lists pods) are counted and skipped. @kubernetes/client-node list items carry no
// `kind`, so the shape decides: an `addressType` marks an EndpointSlice, `subsets` an
// Endpoints, a `spec` a Service. Input holding no Kubernetes object at all is refused.
import { isRecord } from './fields.js'
import { parseService, type ValidService } from './service.js'
import { parseEndpointSlice, type ValidEndpointSlice } from './endpointslice.js'
import { mirrorEndpoints, mirrorSkipReason } from './endpoints.js'
import { notProxiedReason } from './not-proxied.js'
import { SERVICE_NAME_LABEL } from './types.js'
import { SvcplaneTypeError } from '../errors.js'

export type LoadedKind = 'Service' | 'EndpointSlice' | 'Endpoints'

/** Something the loader did that the user should hear about (the CLI prints these on stderr). */
export interface LoadNotice {
  /** mirrored-endpoints: read as EndpointSlices; endpoints-not-mirrored: left out; not-proxied: kube-proxy skips it. */
  code: 'mirrored-endpoints' | 'endpoints-not-mirrored' | 'not-proxied'
  kind: LoadedKind
  /** "namespace/name" */
  key: string
  /** One line naming the object and what was done, and why. */
  message: string
}

export interface SplitObjects {
  services: unknown[]
  /** The input's EndpointSlices, then those mirrored from v1 Endpoints. */
  endpointSlices: unknown[]
  /** Items that are neither (pods, config maps, ...). */
  skipped: number
  /** The kinds of the skipped items, counted ("Pod": 3; "<no kind>" for shapeless items). */
  skippedKinds: Record<string, number>
  /** Services (and their EndpointSlices / Endpoints) kube-proxy does not program, with why. */
  notProxied: { kind: LoadedKind; key: string; reason: string }[]
  notices: LoadNotice[]
}

export interface ParsedObjects {
  services: ValidService[]
  endpointSlices: ValidEndpointSlice[]
  skipped: number
  notProxied: SplitObjects['notProxied']
  notices: LoadNotice[]
}

type Kind = LoadedKind | 'other'

function kindOf(item: unknown): Kind {
  if (!isRecord(item)) return 'other'
  const kind = typeof item.kind === 'string' ? item.kind : undefined
  if (kind === 'Service' || kind === 'EndpointSlice' || kind === 'Endpoints') return kind
  if (kind !== undefined && kind !== '') return 'other'
  if ('addressType' in item) return 'EndpointSlice'
  if (Array.isArray(item.subsets)) return 'Endpoints'
  if (isRecord(item.spec)) return 'Service'
  return 'other'
}

function keyOf(obj: unknown): string {
  const meta = isRecord(obj) && isRecord(obj.metadata) ? obj.metadata : {}
  return `${typeof meta.namespace === 'string' ? meta.namespace : '<no namespace>'}/${typeof meta.name === 'string' ? meta.name : '<no name>'}`
}

function sliceServiceKey(slice: unknown): string | undefined {
  const meta = isRecord(slice) && isRecord(slice.metadata) ? slice.metadata : {}
  const labels = isRecord(meta.labels) ? meta.labels : {}
  const service = labels[SERVICE_NAME_LABEL]
  return typeof meta.namespace === 'string' && typeof service === 'string' ? `${meta.namespace}/${service}` : undefined
}

/** A Kubernetes object, or a list of them: a kind, or the shape of one we read. */
function isKubernetesObject(v: unknown): boolean {
  return isRecord(v) && ((typeof v.kind === 'string' && v.kind !== '') || Array.isArray(v.items) || kindOf(v) !== 'other')
}

/** What a value that is not Kubernetes objects is, in words ("a number (42)", "text ("NAME  TYPE...")"). */
export function describeFound(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') {
    const line = v.trim().split('\n')[0]!
    return v.trim() === '' ? 'nothing (empty text)' : `text (${JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}...` : line)})`
  }
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `a ${typeof v} (${String(v)})`
  if (Array.isArray(v)) return `a list of ${v.length} item(s), none of them a Kubernetes object`
  if (isRecord(v)) {
    const keys = Object.keys(v)
    return keys.length === 0 ? 'an empty object ({})' : `an object without kind or apiVersion (keys: ${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', ...' : ''})`
  }
  return `a ${typeof v}`
}

/** Throws a TypeError naming what `value` is when it holds no Kubernetes object at all. */
export function requireKubernetesObjects(value: unknown, where = 'input'): void {
  if (isKubernetesObject(value)) return
  if (Array.isArray(value) && (value.length === 0 || value.some(isKubernetesObject))) return
  const err = new SvcplaneTypeError(`${where} holds no Kubernetes objects: found ${describeFound(value)}`)
  throw Object.assign(err, { code: 'INVALID' })
}

/** The items of a List (JSON text, a List, a typed list, an array or one object), each typed list item given its kind back. */
export function listItems(input: unknown): unknown[] {
  let value = input
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch (err) {
      throw Object.assign(new SvcplaneTypeError(`input is not valid JSON: ${(err as Error).message.split('\n')[0]}`), { code: 'INVALID' })
    }
  }
  requireKubernetesObjects(value)
  if (Array.isArray(value)) return value
  if (!isRecord(value) || !Array.isArray(value.items)) return [value]
  const itemKind = typeof value.kind === 'string' && value.kind !== 'List' && value.kind.endsWith('List') ? value.kind.slice(0, -4) : undefined
  return itemKind === undefined ? value.items : value.items.map((i) => (isRecord(i) && !('kind' in i) ? { kind: itemKind, ...i } : i))
}

export function splitObjects(input: unknown): SplitObjects {
  const items = listItems(input)
  const out: SplitObjects = { services: [], endpointSlices: [], skipped: 0, skippedKinds: {}, notProxied: [], notices: [] }
  const endpoints: unknown[] = []
  const setAside = (kind: LoadedKind, item: unknown, reason: string) => {
    const key = keyOf(item)
    out.notProxied.push({ kind, key, reason })
    out.notices.push({ code: 'not-proxied', kind, key, message: `${kind} ${key}: ${reason}` })
  }
  for (const item of items) {
    const kind = kindOf(item)
    const reason = kind === 'other' ? undefined : notProxiedReason(item)
    if (reason !== undefined) setAside(kind as LoadedKind, item, reason)
    else if (kind === 'Service') out.services.push(item)
    else if (kind === 'EndpointSlice') out.endpointSlices.push(item)
    else if (kind === 'Endpoints') endpoints.push(item)
    else {
      out.skipped++
      const name = isRecord(item) && typeof item.kind === 'string' && item.kind !== '' ? item.kind : '<no kind>'
      out.skippedKinds[name] = (out.skippedKinds[name] ?? 0) + 1
    }
  }
  // The input's own slices win: the Endpoints of a Service that has slices are only a legacy copy.
  const withSlices = new Set(out.endpointSlices.map(sliceServiceKey))
  for (const ep of endpoints) {
    const key = keyOf(ep)
    if (withSlices.has(key)) continue
    const skip = isRecord(ep) ? mirrorSkipReason(ep) : undefined
    if (skip !== undefined) {
      out.notices.push({ code: 'endpoints-not-mirrored', kind: 'Endpoints', key, message: `Endpoints ${key}: not read, ${skip}` })
      continue
    }
    const m = mirrorEndpoints(ep)
    out.endpointSlices.push(...m.slices)
    const skipped = m.addressesSkipped > 0 ? `; ${m.addressesSkipped} address(es) left out (not an IP, or past 1000 per subset)` : ''
    out.notices.push({ code: 'mirrored-endpoints', kind: 'Endpoints', key, message: `Endpoints ${key}: read as ${m.slices.length} EndpointSlice(s), as the EndpointSlice mirroring controller writes them${skipped}` })
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
    notProxied: split.notProxied,
    notices: split.notices,
  }
}
