// Validation and normalisation of an EndpointSlice, with kube-proxy's defaults for unset
// conditions (ready and serving default to true, terminating to false).
import { describeObject, invalidField } from './invalid.js'
import { integerIn, ipAddress, isRecord, oneOf, optionalArray, optionalBoolean, optionalString, protocol, requiredString } from './fields.js'
import { SERVICE_NAME_LABEL, type K8sProtocol } from './types.js'
import { SvcplaneTypeError } from '../errors.js'

export type AddressType = 'IPv4' | 'IPv6' | 'FQDN'

export interface ValidEndpointPort {
  /** `null` when unset: kube-proxy ignores such a port. */
  name: string | null
  /** `null` when unset or 0: kube-proxy ignores such a port. */
  port: number | null
  protocol: K8sProtocol
}

export interface ValidEndpoint {
  /** The first address, canonical; the only one kube-proxy uses. */
  address: string
  ready: boolean
  serving: boolean
  terminating: boolean
  nodeName: string | null
  zone: string | null
  /** Zones from hints.forZones; empty when the endpoint has no hint. */
  zoneHints: string[]
}

export interface ValidEndpointSlice {
  namespace: string
  name: string
  /** "ns/sliceName" */
  key: string
  serviceName: string
  /** "ns/serviceName" */
  serviceKey: string
  addressType: AddressType
  ports: ValidEndpointPort[]
  endpoints: ValidEndpoint[]
}

export function parseEndpointSlice(input: unknown): ValidEndpointSlice {
  if (!isRecord(input)) throw new SvcplaneTypeError(`EndpointSlice must be an object, got ${input === null ? 'null' : typeof input}`)
  const meta = isRecord(input.metadata) ? input.metadata : {}
  const obj = describeObject('EndpointSlice', meta.namespace, meta.name)
  if (!isRecord(input.metadata)) throw invalidField(obj, 'metadata', 'an object', input.metadata)
  const namespace = requiredString(obj, 'metadata.namespace', meta.namespace)
  const name = requiredString(obj, 'metadata.name', meta.name)
  const labels = isRecord(meta.labels) ? meta.labels : {}
  const serviceName = requiredString(obj, `metadata.labels["${SERVICE_NAME_LABEL}"]`, labels[SERVICE_NAME_LABEL])
  if (input.addressType === undefined) throw invalidField(obj, 'addressType', 'one of IPv4, IPv6, FQDN', undefined)
  const addressType = oneOf<AddressType>(obj, 'addressType', input.addressType, ['IPv4', 'IPv6', 'FQDN'], 'IPv4')

  const ports = optionalArray(obj, 'ports', input.ports).map((p, i): ValidEndpointPort => {
    const f = `ports[${i}]`
    if (!isRecord(p)) throw invalidField(obj, f, 'an object', p)
    const port = p.port === undefined || p.port === null ? null : integerIn(obj, `${f}.port`, p.port, 0, 65535)
    return {
      name: optionalString(obj, `${f}.name`, p.name) ?? null,
      port: port === 0 ? null : port,
      protocol: protocol(obj, `${f}.protocol`, p.protocol),
    }
  })

  const endpoints = optionalArray(obj, 'endpoints', input.endpoints).map((e, i): ValidEndpoint => {
    const f = `endpoints[${i}]`
    if (!isRecord(e)) throw invalidField(obj, f, 'an object', e)
    const addresses = optionalArray(obj, `${f}.addresses`, e.addresses)
    if (addresses.length === 0) throw invalidField(obj, `${f}.addresses`, 'a non-empty array', e.addresses)
    let address: string
    if (addressType === 'FQDN') {
      address = requiredString(obj, `${f}.addresses[0]`, addresses[0])
    } else {
      const parsed = addresses.map((a, j) => ipAddress(obj, `${f}.addresses[${j}]`, a))
      parsed.forEach((p, j) => {
        if (p.family !== addressType) throw invalidField(obj, `${f}.addresses[${j}]`, `an ${addressType} address (addressType)`, addresses[j])
      })
      address = parsed[0].ip
    }
    const cond = isRecord(e.conditions) ? e.conditions : {}
    const hints = isRecord(e.hints) ? e.hints : {}
    const zoneHints = optionalArray(obj, `${f}.hints.forZones`, hints.forZones).map((z, j) => {
      if (!isRecord(z)) throw invalidField(obj, `${f}.hints.forZones[${j}]`, 'an object', z)
      return requiredString(obj, `${f}.hints.forZones[${j}].name`, z.name)
    })
    return {
      address,
      ready: optionalBoolean(obj, `${f}.conditions.ready`, cond.ready) ?? true,
      serving: optionalBoolean(obj, `${f}.conditions.serving`, cond.serving) ?? true,
      terminating: optionalBoolean(obj, `${f}.conditions.terminating`, cond.terminating) ?? false,
      nodeName: optionalString(obj, `${f}.nodeName`, e.nodeName) ?? null,
      zone: optionalString(obj, `${f}.zone`, e.zone) ?? null,
      zoneHints,
    }
  })

  return { namespace, name, key: `${namespace}/${name}`, serviceName, serviceKey: `${namespace}/${serviceName}`, addressType, ports, endpoints }
}
