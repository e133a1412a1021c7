// v1 Endpoints (what `kubectl get svc,endpoints` prints) converted to the EndpointSlices the
// control plane's EndpointSlice mirroring controller would write for them, so kube-proxy's
// view (it reads only slices) can be rebuilt from an Endpoints dump. Like that controller:
// one slice per distinct port set and address family, `addresses` ready and
// `notReadyAddresses` not ready, nodeName / hostname / targetRef carried over, at most
// 1,000 addresses per subset, invalid IPs left out; Endpoints labelled
// endpointslice.kubernetes.io/skip-mirror=true or holding a leader-election lock are not mirrored.
import { canonicalAddress } from '../util/address.js'
import { describeObject, invalidField } from './invalid.js'
import { integerIn, isRecord, optionalArray, optionalString, protocol } from './fields.js'
import { SERVICE_NAME_LABEL, type EndpointSlice, type Endpoint, type EndpointPort, type IPFamily } from './types.js'
import { SvcplaneTypeError } from '../errors.js'

export const SKIP_MIRROR_LABEL = 'endpointslice.kubernetes.io/skip-mirror'
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by'
export const MIRRORING_CONTROLLER = 'endpointslicemirroring-controller.k8s.io'
const LEADER_ELECTION_ANNOTATION = 'control-plane.alpha.kubernetes.io/leader'
const LAST_CHANGE_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time'
const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration'
/** The controller's --mirroring-max-endpoints-per-subset default. */
export const MAX_ENDPOINTS_PER_SUBSET = 1000

export interface MirroredEndpoints {
  /** "ns/name" of the Endpoints (and of its Service). */
  key: string
  slices: EndpointSlice[]
  /** Addresses left out: not an IP, or past MAX_ENDPOINTS_PER_SUBSET. */
  addressesSkipped: number
}

/** Why the mirroring controller leaves these Endpoints alone, or undefined when it mirrors them. */
export function mirrorSkipReason(endpoints: Record<string, unknown>): string | undefined {
  const meta = isRecord(endpoints.metadata) ? endpoints.metadata : {}
  const labels = isRecord(meta.labels) ? meta.labels : {}
  const annotations = isRecord(meta.annotations) ? meta.annotations : {}
  if (labels[SKIP_MIRROR_LABEL] === 'true') return `it is labelled ${SKIP_MIRROR_LABEL}=true`
  if (LEADER_ELECTION_ANNOTATION in annotations) return 'it is a leader-election lock, not a Service\'s endpoints'
  return undefined
}

function stringMap(v: unknown, drop: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {}
  if (isRecord(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string' && !drop.includes(k)) out[k] = x
  return out
}

/** The slices the mirroring controller writes for one v1 Endpoints (validated; errors name the field). */
export function mirrorEndpoints(input: unknown): MirroredEndpoints {
  if (!isRecord(input)) throw new SvcplaneTypeError(`Endpoints must be an object, got ${input === null ? 'null' : typeof input}`)
  const meta = isRecord(input.metadata) ? input.metadata : {}
  const obj = describeObject('Endpoints', meta.namespace, meta.name)
  if (!isRecord(input.metadata)) throw invalidField(obj, 'metadata', 'an object', input.metadata)
  const namespace = optionalString(obj, 'metadata.namespace', meta.namespace)
  const name = optionalString(obj, 'metadata.name', meta.name)
  if (namespace === undefined || namespace === '') throw invalidField(obj, 'metadata.namespace', 'a non-empty string', meta.namespace)
  if (name === undefined || name === '') throw invalidField(obj, 'metadata.name', 'a non-empty string', meta.name)

  // Slices are grouped by port set and family; the same endpoint in two subsets of one group is one endpoint.
  const groups = new Map<string, { family: IPFamily; ports: EndpointPort[]; endpoints: Map<string, Endpoint> }>()
  let addressesSkipped = 0
  optionalArray(obj, 'subsets', input.subsets).forEach((subset, i) => {
    const f = `subsets[${i}]`
    if (!isRecord(subset)) throw invalidField(obj, f, 'an object', subset)
    const ports = optionalArray(obj, `${f}.ports`, subset.ports).map((p, j): EndpointPort => {
      const pf = `${f}.ports[${j}]`
      if (!isRecord(p)) throw invalidField(obj, pf, 'an object', p)
      const port: EndpointPort = {
        name: optionalString(obj, `${pf}.name`, p.name) ?? '',
        port: integerIn(obj, `${pf}.port`, p.port, 1, 65535),
        protocol: protocol(obj, `${pf}.protocol`, p.protocol),
      }
      const appProtocol = optionalString(obj, `${pf}.appProtocol`, p.appProtocol)
      if (appProtocol !== undefined) port.appProtocol = appProtocol
      return port
    })
    const portsKey = ports.map((p) => `${p.name}/${p.protocol}/${p.port}/${p.appProtocol ?? ''}`).sort().join(',')
    let added = 0
    const take = (field: string, ready: boolean) => {
      optionalArray(obj, `${f}.${field}`, subset[field]).forEach((a, k) => {
        const af = `${f}.${field}[${k}]`
        if (!isRecord(a)) throw invalidField(obj, af, 'an object', a)
        if (added >= MAX_ENDPOINTS_PER_SUBSET) return void addressesSkipped++
        const ip = typeof a.ip === 'string' ? canonicalAddress(a.ip) : undefined
        if (ip === undefined) return void addressesSkipped++
        const family: IPFamily = ip.includes(':') ? 'IPv6' : 'IPv4'
        const groupKey = `${family}|${portsKey}`
        let g = groups.get(groupKey)
        if (g === undefined) groups.set(groupKey, (g = { family, ports, endpoints: new Map() }))
        const ep: Endpoint = { addresses: [ip], conditions: { ready } }
        const nodeName = optionalString(obj, `${af}.nodeName`, a.nodeName)
        if (nodeName !== undefined) ep.nodeName = nodeName
        const hostname = optionalString(obj, `${af}.hostname`, a.hostname)
        if (hostname !== undefined && hostname !== '') ep.hostname = hostname
        if (isRecord(a.targetRef)) ep.targetRef = a.targetRef
        if (!g.endpoints.has(ip)) g.endpoints.set(ip, ep)
        added++
      })
    }
    take('addresses', true)
    take('notReadyAddresses', false)
  })

  const labels = { ...stringMap(meta.labels), [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: MIRRORING_CONTROLLER }
  const annotations = stringMap(meta.annotations, [LAST_CHANGE_ANNOTATION, LAST_APPLIED_ANNOTATION])
  // The controller lets the API server generate names ("<name>-xxxxx"); offline they are numbered.
  const slices = [...groups.values()].map((g, n): EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace, name: `${name}-mirrored-${n}`, labels: { ...labels }, annotations: { ...annotations } },
    addressType: g.family,
    endpoints: [...g.endpoints.values()],
    ports: g.ports,
  }))
  return { key: `${namespace}/${name}`, slices, addressesSkipped }
}
