// The endpoint cache: EndpointSlices grouped by Service, turned into kube-proxy's endpoint list
// per ServicePort (matched by port name and protocol; first address only; deduplicated and
// sorted by "IP:port").
import type { IPFamily, K8sProtocol } from '../k8s/types.js'
import type { ValidEndpointSlice } from '../k8s/endpointslice.js'
import { joinHostPort } from '../util/host-port.js'

export interface EndpointInfo {
  ip: string
  port: number
  /** "IP:port", "[IPv6]:port" — kube-proxy's endpoint string, also its sort key. */
  endpoint: string
  isLocal: boolean
  ready: boolean
  serving: boolean
  terminating: boolean
  nodeName: string | null
  zone: string | null
  zoneHints: string[]
}

export class EndpointSliceCache {
  /** service key -> slice name -> slice */
  private readonly byService = new Map<string, Map<string, ValidEndpointSlice>>()
  /** slice key -> service key, so a delete needs only the slice's name. */
  private readonly serviceOfSlice = new Map<string, string>()

  constructor(private readonly nodeName: string) {}

  /** Stores or replaces a slice; returns the service keys whose endpoints may have changed. */
  set(slice: ValidEndpointSlice): string[] {
    const previous = this.serviceOfSlice.get(slice.key)
    if (previous === slice.serviceKey) {
      // Replaced in its own Service (a slice's usual update): moved last, as remove-then-add would.
      const slices = this.byService.get(previous)!
      slices.delete(slice.name)
      slices.set(slice.name, slice)
      return [previous]
    }
    const touched = previous === undefined ? undefined : this.remove(slice.key)
    let slices = this.byService.get(slice.serviceKey)
    if (slices === undefined) this.byService.set(slice.serviceKey, (slices = new Map()))
    slices.set(slice.name, slice)
    this.serviceOfSlice.set(slice.key, slice.serviceKey)
    if (touched === undefined) return [slice.serviceKey]
    touched.push(slice.serviceKey)
    return touched
  }

  /** Removes a slice by "ns/sliceName"; returns the service key it belonged to, if any. */
  remove(sliceKey: string): string[] {
    const serviceKey = this.serviceOfSlice.get(sliceKey)
    if (serviceKey === undefined) return []
    this.serviceOfSlice.delete(sliceKey)
    const slices = this.byService.get(serviceKey)!
    slices.delete(sliceKey.slice(sliceKey.indexOf('/') + 1))
    if (slices.size === 0) this.byService.delete(serviceKey)
    return [serviceKey]
  }

  has(sliceKey: string): boolean {
    return this.serviceOfSlice.has(sliceKey)
  }

  slicesOf(serviceKey: string): ValidEndpointSlice[] {
    return [...(this.byService.get(serviceKey)?.values() ?? [])]
  }

  /** kube-proxy's endpoints for one ServicePort: slices of `family` only, ports matched by name and protocol. */
  endpointsFor(serviceKey: string, portName: string, protocol: K8sProtocol, family: IPFamily): EndpointInfo[] {
    const slices = this.byService.get(serviceKey)
    if (slices === undefined) return []
    // Sized once (a pushed-to empty array grows to 17 slots): a full sync builds one per ServicePort.
    const out = new Array<EndpointInfo>(this.countFor(slices, portName, protocol, family))
    let n = 0
    for (const slice of slices.values()) {
      if (slice.addressType !== family) continue
      for (const port of slice.ports) {
        // Unset names and ports are ignored, as kube-proxy does.
        if (port.name === null || port.port === null) continue
        if (port.name !== portName || port.protocol !== protocol) continue
        for (const ep of slice.endpoints) {
          const isLocal = ep.nodeName !== null && ep.nodeName === this.nodeName
          const info: EndpointInfo = {
            ip: ep.address,
            port: port.port,
            endpoint: joinHostPort(ep.address, port.port),
            isLocal,
            ready: ep.ready,
            serving: ep.serving,
            terminating: ep.terminating,
            nodeName: ep.nodeName,
            zone: ep.zone,
            zoneHints: ep.zoneHints,
          }
          out[n++] = info
        }
      }
    }
    sortUnique(out)
    return out
  }

  /** How many endpoints endpointsFor lists before deduplication. */
  private countFor(slices: Map<string, ValidEndpointSlice>, portName: string, protocol: K8sProtocol, family: IPFamily): number {
    let n = 0
    for (const slice of slices.values()) {
      if (slice.addressType !== family) continue
      for (const port of slice.ports) if (port.name !== null && port.port !== null && port.name === portName && port.protocol === protocol) n += slice.endpoints.length
    }
    return n
  }
}

const byEndpoint = (a: EndpointInfo, b: EndpointInfo) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0)

/**
 * Sorts `list` by "IP:port" and drops duplicates in place: a duplicate keeps the first, unless
 * a later one is local. Slices mostly list a handful of endpoints, often in order already:
 * those need no sort call and no Map per ServicePort.
 */
function sortUnique(list: EndpointInfo[]): void {
  let ordered = true
  for (let i = 1; i < list.length && ordered; i++) ordered = list[i - 1].endpoint < list[i].endpoint
  if (ordered) return
  // Stable either way, so duplicates stay in the order the slices list them.
  if (list.length <= 16) {
    for (let i = 1; i < list.length; i++) {
      const e = list[i]
      let j = i
      for (; j > 0 && list[j - 1].endpoint > e.endpoint; j--) list[j] = list[j - 1]
      list[j] = e
    }
  } else {
    list.sort(byEndpoint)
  }
  let kept = 0
  for (let i = 0; i < list.length; i++) {
    const e = list[i]
    if (kept > 0 && list[kept - 1].endpoint === e.endpoint) {
      if (e.isLocal) list[kept - 1] = e
      continue
    }
    list[kept++] = e
  }
  list.length = kept
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Field-by-field equality (no serialisation: a sync compares every endpoint it keeps). */
export function sameEndpoint(a: EndpointInfo, b: EndpointInfo): boolean {
  return (
    a.endpoint === b.endpoint && a.ip === b.ip && a.port === b.port && a.isLocal === b.isLocal && a.ready === b.ready &&
    a.serving === b.serving && a.terminating === b.terminating && a.nodeName === b.nodeName && a.zone === b.zone &&
    sameStrings(a.zoneHints, b.zoneHints)
  )
}
