// The fields of kube-proxy's KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1, as in
// k8s.io/kube-proxy/config/v1alpha1/types.go) and their types, checked strictly as kube-proxy's
// strict decoder does: an unknown field or a value of the wrong type is an error naming its path.
// `null` is accepted everywhere and means "unset", as Go's JSON decoding reads it.
import { nearestKey } from '../util/known-keys.js'
import { show } from '../util/show.js'
import { SvcplaneTypeError } from '../errors.js'

export const KUBE_PROXY_CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1'
export const KUBE_PROXY_CONFIG_KIND = 'KubeProxyConfiguration'

/** What a field holds: Go's types as they appear in JSON or YAML. */
type FieldType = 'string' | 'bool' | 'int32' | 'float' | 'duration' | 'strings' | 'boolMap' | 'any' | Schema
interface Schema {
  readonly [field: string]: FieldType
}

const CLIENT_CONNECTION: Schema = { kubeconfig: 'string', acceptContentTypes: 'string', contentType: 'string', qps: 'float', burst: 'int32' }

const LOGGING: Schema = { format: 'string', flushFrequency: 'any', verbosity: 'int32', vmodule: 'any', options: 'any' }

const IPTABLES: Schema = {
  masqueradeBit: 'int32',
  masqueradeAll: 'bool',
  localhostNodePorts: 'bool',
  snatNodeInternalIP: 'bool',
  syncPeriod: 'duration',
  minSyncPeriod: 'duration',
}

const IPVS: Schema = {
  syncPeriod: 'duration',
  minSyncPeriod: 'duration',
  scheduler: 'string',
  excludeCIDRs: 'strings',
  strictARP: 'bool',
  tcpTimeout: 'duration',
  tcpFinTimeout: 'duration',
  udpTimeout: 'duration',
}

const NFTABLES: Schema = { masqueradeBit: 'int32', masqueradeAll: 'bool', syncPeriod: 'duration', minSyncPeriod: 'duration' }

const WINKERNEL: Schema = { networkName: 'string', sourceVip: 'string', enableDSR: 'bool', rootHnsEndpointName: 'string', forwardHealthCheckVip: 'bool' }

const CONNTRACK: Schema = {
  maxPerCore: 'int32',
  min: 'int32',
  tcpEstablishedTimeout: 'duration',
  tcpCloseWaitTimeout: 'duration',
  tcpBeLiberal: 'bool',
  udpTimeout: 'duration',
  udpStreamTimeout: 'duration',
}

export const KUBE_PROXY_CONFIGURATION: Schema = {
  apiVersion: 'string',
  kind: 'string',
  featureGates: 'boolMap',
  clientConnection: CLIENT_CONNECTION,
  logging: LOGGING,
  hostnameOverride: 'string',
  bindAddress: 'string',
  healthzBindAddress: 'string',
  metricsBindAddress: 'string',
  bindAddressHardFail: 'bool',
  enableProfiling: 'bool',
  showHiddenMetricsForVersion: 'string',
  mode: 'string',
  iptables: IPTABLES,
  ipvs: IPVS,
  nftables: NFTABLES,
  winkernel: WINKERNEL,
  detectLocalMode: 'string',
  detectLocal: { bridgeInterface: 'string', interfaceNamePrefix: 'string' },
  clusterCIDR: 'string',
  nodePortAddresses: 'strings',
  oomScoreAdj: 'int32',
  conntrack: CONNTRACK,
  configSyncPeriod: 'duration',
  portRange: 'string',
  windowsRunAsService: 'bool',
}

const GO_DURATION = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))*$/
const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }

/** Seconds of a Go duration string as metav1.Duration reads it ("30s", "1h0m0s", "0"). */
export function goDurationSeconds(text: string): number | undefined {
  if (text === '0') return 0
  if (!GO_DURATION.test(text)) return undefined
  const sign = text.startsWith('-') ? -1 : 1
  let total = 0
  for (const m of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * UNIT_SECONDS[m[2]!]!
  return sign * total
}

function fail(path: string, expected: string, got: unknown): never {
  throw new SvcplaneTypeError(`KubeProxyConfiguration: ${path} must be ${expected}, got ${show(got)}`)
}

function checkValue(path: string, type: FieldType, value: unknown): void {
  if (value === null || type === 'any') return
  if (typeof type === 'object') return checkObject(path, type, value)
  switch (type) {
    case 'string':
      if (typeof value !== 'string') fail(path, 'a string', value)
      return
    case 'bool':
      if (typeof value !== 'boolean') fail(path, 'true or false', value)
      return
    case 'int32':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) fail(path, 'a 32-bit integer', value)
      return
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'a number', value)
      return
    case 'duration':
      if (typeof value !== 'string' || goDurationSeconds(value) === undefined) fail(path, 'a duration like "30s", "1m0s" or "2h22m"', value)
      return
    case 'strings':
      if (!Array.isArray(value)) fail(path, 'a list of strings', value)
      value.forEach((v, i) => typeof v !== 'string' && fail(`${path}[${i}]`, 'a string', v))
      return
    case 'boolMap':
      if (typeof value !== 'object' || Array.isArray(value)) fail(path, 'a map of feature names to true or false', value)
      for (const [k, v] of Object.entries(value)) if (typeof v !== 'boolean') fail(`${path}.${k}`, 'true or false', v)
      return
  }
}

function checkObject(path: string, schema: Schema, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path || 'the document', 'an object', value)
  for (const [key, v] of Object.entries(value)) {
    const at = path === '' ? key : `${path}.${key}`
    const type = Object.hasOwn(schema, key) ? schema[key] : undefined
    if (type === undefined) {
      const near = nearestKey(key, Object.keys(schema))
      throw new SvcplaneTypeError(`KubeProxyConfiguration: unknown field ${JSON.stringify(at)}${near !== undefined ? ` (did you mean ${JSON.stringify(path === '' ? near : `${path}.${near}`)}?)` : ''}`)
    }
    checkValue(at, type, v)
  }
}

/** Checks a decoded KubeProxyConfiguration document: apiVersion, kind, every field's name and type. */
export function checkKubeProxyConfiguration(doc: unknown): asserts doc is Record<string, unknown> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('the document', 'an object', doc)
  const d = doc as Record<string, unknown>
  if (d.apiVersion !== KUBE_PROXY_CONFIG_API_VERSION) fail('apiVersion', JSON.stringify(KUBE_PROXY_CONFIG_API_VERSION), d.apiVersion)
  if (d.kind !== KUBE_PROXY_CONFIG_KIND) fail('kind', JSON.stringify(KUBE_PROXY_CONFIG_KIND), d.kind)
  checkObject('', KUBE_PROXY_CONFIGURATION, d)
}
