// A KubeProxyConfiguration file (kube-proxy's --config) read into svcplane's options: the
// Proxier's shared options and mode sections, the timing and servers of a running proxy, and
// the fields svcplane accepts but does not act on. Per-mode fields are read as kube-proxy's
// v1alpha1 conversion reads them: nftables mode takes nftables.masqueradeAll and
// nftables.*SyncPeriod, every other mode the iptables (or, in ipvs mode, ipvs) ones.
import * as os from 'node:os'
import { canonicalAddress, parseCidr } from '../util/address.js'
import { show } from '../util/show.js'
import { parseBindAddress } from '../metrics/http.js'
import { isProxyMode, PROXY_MODE_NAMES, type ProxierOptions, type ProxyMode } from '../modes/index.js'
import { IPVS_SCHEDULERS } from '../ipvs/types.js'
import type { ConntrackTimeouts } from '../dataplane/types.js'
import { loadYamlDocuments } from '../watch/client.js'
import { SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import { checkKubeProxyConfiguration, goDurationSeconds } from './schema.js'

/** What a running proxy (`svcplane run`) reads from the file; durations in seconds. */
export interface KubeProxyRunSettings {
  syncPeriod?: number
  minSyncPeriod?: number
  healthzBindAddress?: string
  metricsBindAddress?: string
  /** clientConnection.kubeconfig. */
  kubeconfig?: string
}

export interface KubeProxyConfigurationOptions {
  /** ProxierOptions-shaped: only what the file sets (nodeIPs only when bindAddress names an address). */
  proxier: Partial<ProxierOptions> & { mode: ProxyMode }
  run: KubeProxyRunSettings
  /** Paths of fields the file sets (to a non-zero value) that svcplane accepts but does not act on. */
  notActedOn: string[]
}

/**
 * Fields svcplane reads without acting on them, reported when set. Everything else in the schema
 * is read (detectLocalMode other than ClusterCIDR and iptables.snatNodeInternalIP are reported
 * by the mapping itself).
 */
const NOT_ACTED_ON = [
  'featureGates', 'logging', 'bindAddressHardFail', 'enableProfiling', 'showHiddenMetricsForVersion', 'winkernel', 'detectLocal',
  'oomScoreAdj', 'configSyncPeriod', 'portRange', 'windowsRunAsService',
  'clientConnection.acceptContentTypes', 'clientConnection.contentType', 'clientConnection.qps', 'clientConnection.burst',
]

const LOCAL_MODES = ['', 'ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix']

function at(doc: Record<string, unknown>, path: string): unknown {
  let v: unknown = doc
  for (const k of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined
  return v
}

/** Whether a value changes anything: not null, "", "0", 0, false, [] or an object of such values. */
function isSet(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '' || v === '0' || v === '0s') return false
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object') return Object.values(v).some(isSet)
  return true
}

function bad(path: string, expected: string, got: unknown): SvcplaneRangeError {
  return new SvcplaneRangeError(`KubeProxyConfiguration: ${path} must be ${expected}, got ${show(got)}`)
}

function cidrs(path: string, items: readonly string[]): string[] {
  return items.map((c, i) => {
    const parsed = c.includes('/') ? parseCidr(c.trim()) : undefined
    if (parsed === undefined) throw bad(`${path}[${i}]`, 'a CIDR', c)
    return parsed.text
  })
}

/**
 * kube-proxy's --nodeport-addresses list: CIDRs and the keywords "primary" (the node's primary
 * IPs), "localhost" (127.0.0.0/8 and ::1/128) and "all" (every address: the default, an empty
 * list). `where` names the field or flag in errors.
 */
export function nodePortAddressList(items: readonly string[], where: string): string[] {
  if (items.includes('all')) return []
  const out: string[] = []
  items.forEach((item, i) => {
    if (item === 'primary') out.push('primary')
    else if (item === 'localhost') out.push('127.0.0.0/8', '::1/128')
    else {
      const parsed = item.includes('/') ? parseCidr(item.trim()) : undefined
      if (parsed === undefined) throw new SvcplaneRangeError(`${where}[${i}] must be a CIDR, "primary", "localhost" or "all", got ${show(item)}`)
      out.push(parsed.text)
    }
  })
  return [...new Set(out)]
}

function seconds(doc: Record<string, unknown>, path: string): number | undefined {
  const v = at(doc, path)
  return typeof v === 'string' ? goDurationSeconds(v) : undefined
}

function bindAddress(doc: Record<string, unknown>, field: string, port: number): string | undefined {
  const v = at(doc, field)
  if (typeof v !== 'string' || v === '') return undefined
  parseBindAddress(v, port, `KubeProxyConfiguration: ${field}`)
  return v
}

/** The conntrack timeouts the file sets (kube-proxy sets only those greater than 0). */
function conntrackTimeouts(doc: Record<string, unknown>): Partial<ConntrackTimeouts> | undefined {
  const fields: [string, keyof ConntrackTimeouts][] = [
    ['tcpEstablishedTimeout', 'tcpEstablished'],
    ['tcpCloseWaitTimeout', 'tcpCloseWait'],
    ['udpTimeout', 'udp'],
    ['udpStreamTimeout', 'udpStream'],
  ]
  const out: Partial<ConntrackTimeouts> = {}
  for (const [field, key] of fields) {
    const s = seconds(doc, `conntrack.${field}`)
    if (s !== undefined && s < 0) throw bad(`conntrack.${field}`, 'a duration >= 0', at(doc, `conntrack.${field}`))
    if (s !== undefined && s > 0) out[key] = s
  }
  return Object.keys(out).length > 0 ? out : undefined
}

/** kube-proxy's nf_conntrack_max: maxPerCore × CPUs, at least min (maxPerCore 0: left as is). */
function conntrackMax(doc: Record<string, unknown>, cpus: number): number | undefined {
  const perCore = at(doc, 'conntrack.maxPerCore')
  const min = at(doc, 'conntrack.min')
  if (typeof perCore === 'number' && perCore < 0) throw bad('conntrack.maxPerCore', 'an integer >= 0', perCore)
  if (typeof min === 'number' && min < 0) throw bad('conntrack.min', 'an integer >= 0', min)
  if (typeof perCore !== 'number' || perCore === 0) return undefined
  return Math.max(perCore * cpus, typeof min === 'number' ? min : 0)
}

function masqueradeBit(doc: Record<string, unknown>, path: string): number | undefined {
  const v = at(doc, path)
  if (typeof v !== 'number') return undefined
  if (v < 0 || v > 31) throw bad(path, 'an integer 0..31', v)
  return v
}

export interface KubeProxyConfigurationReadOptions {
  /** CPUs of the node, for conntrack.maxPerCore; default this host's. */
  cpus?: number
}

/** svcplane's options from a decoded KubeProxyConfiguration document (checked field by field). */
export function kubeProxyConfigurationOptions(doc: unknown, read: KubeProxyConfigurationReadOptions = {}): KubeProxyConfigurationOptions {
  checkKubeProxyConfiguration(doc)
  const notActedOn = NOT_ACTED_ON.filter((p) => isSet(at(doc, p)))
  const modeText = (at(doc, 'mode') as string | null | undefined) ?? ''
  // An empty mode is kube-proxy's default on Linux.
  const mode = modeText === '' ? 'iptables' : modeText
  if (!isProxyMode(mode)) throw bad('mode', `one of ${PROXY_MODE_NAMES.join(', ')} (or "" for iptables)`, modeText)
  const proxier: KubeProxyConfigurationOptions['proxier'] = { mode }

  const hostname = at(doc, 'hostnameOverride')
  if (typeof hostname === 'string' && hostname.trim() !== '') proxier.nodeName = hostname.trim()
  const bind = at(doc, 'bindAddress')
  if (typeof bind === 'string' && bind !== '') {
    const ip = canonicalAddress(bind)
    if (ip === undefined) throw bad('bindAddress', 'an IP address', bind)
    // 0.0.0.0 and :: are kube-proxy's "not set"; an address overrides the node's primary IP.
    if (ip !== '0.0.0.0' && ip !== '::') proxier.nodeIPs = [ip]
  }

  const localMode = (at(doc, 'detectLocalMode') as string | null | undefined) ?? ''
  if (!LOCAL_MODES.includes(localMode)) throw bad('detectLocalMode', `one of ${LOCAL_MODES.filter(Boolean).join(', ')}`, localMode)
  const clusterCIDR = at(doc, 'clusterCIDR')
  if (typeof clusterCIDR === 'string' && clusterCIDR.trim() !== '') {
    const parsed = cidrs('clusterCIDR', clusterCIDR.split(','))
    if (localMode === '' || localMode === 'ClusterCIDR') proxier.podCIDRs = parsed
  }
  if (localMode !== '' && localMode !== 'ClusterCIDR') notActedOn.push('detectLocalMode')

  const nodePorts = at(doc, 'nodePortAddresses')
  if (Array.isArray(nodePorts)) proxier.nodePortAddresses = nodePortAddressList(nodePorts as string[], 'KubeProxyConfiguration: nodePortAddresses')

  const section = mode === 'nftables' ? 'nftables' : mode === 'ipvs' ? 'ipvs' : 'iptables'
  const masqueradeAll = at(doc, mode === 'nftables' ? 'nftables.masqueradeAll' : 'iptables.masqueradeAll')
  if (masqueradeAll === true) proxier.masqueradeAll = true

  const iptables: NonNullable<ProxierOptions['iptables']> = {}
  const iptBit = masqueradeBit(doc, 'iptables.masqueradeBit')
  if (iptBit !== undefined) iptables.masqueradeBit = iptBit
  const localhost = at(doc, 'iptables.localhostNodePorts')
  if (typeof localhost === 'boolean') iptables.localhostNodePorts = localhost
  if (at(doc, 'conntrack.tcpBeLiberal') === true) iptables.conntrackTCPLiberal = true
  if (at(doc, 'iptables.snatNodeInternalIP') === true) notActedOn.push('iptables.snatNodeInternalIP')
  if (Object.keys(iptables).length > 0) proxier.iptables = iptables

  const nftBit = masqueradeBit(doc, 'nftables.masqueradeBit')
  if (nftBit !== undefined) proxier.nftables = { masqueradeBit: nftBit }

  const ipvs: NonNullable<ProxierOptions['ipvs']> = {}
  const scheduler = at(doc, 'ipvs.scheduler')
  if (typeof scheduler === 'string' && scheduler !== '') {
    if (!(IPVS_SCHEDULERS as readonly string[]).includes(scheduler)) throw bad('ipvs.scheduler', `one of ${IPVS_SCHEDULERS.join(', ')}`, scheduler)
    ipvs.scheduler = scheduler as (typeof IPVS_SCHEDULERS)[number]
  }
  const strictARP = at(doc, 'ipvs.strictARP')
  if (strictARP === true) ipvs.strictARP = true
  for (const k of ['tcpTimeout', 'tcpFinTimeout', 'udpTimeout'] as const) {
    const s = seconds(doc, `ipvs.${k}`)
    if (s !== undefined && s < 0) throw bad(`ipvs.${k}`, 'a duration >= 0', at(doc, `ipvs.${k}`))
    // 0 keeps the kernel's value, as no value does.
    if (s !== undefined && s > 0) ipvs[k] = s
  }
  const exclude = at(doc, 'ipvs.excludeCIDRs')
  if (Array.isArray(exclude)) ipvs.excludeCIDRs = cidrs('ipvs.excludeCIDRs', exclude as string[])
  if (Object.keys(ipvs).length > 0) proxier.ipvs = ipvs

  const timeouts = conntrackTimeouts(doc)
  if (timeouts !== undefined) proxier.timeouts = timeouts
  const max = conntrackMax(doc, read.cpus ?? os.cpus().length)
  if (max !== undefined) proxier.native = { capacity: { conntrack: max } }

  const run: KubeProxyRunSettings = {}
  const sync = seconds(doc, `${section}.syncPeriod`)
  const minSync = seconds(doc, `${section}.minSyncPeriod`)
  if (sync !== undefined && sync < 0) throw bad(`${section}.syncPeriod`, 'a duration > 0', at(doc, `${section}.syncPeriod`))
  if (minSync !== undefined && minSync < 0) throw bad(`${section}.minSyncPeriod`, 'a duration >= 0', at(doc, `${section}.minSyncPeriod`))
  // Zero is kube-proxy's "unset": its defaulting puts the default back.
  if (sync !== undefined && sync > 0) run.syncPeriod = sync
  if (minSync !== undefined && minSync > 0) run.minSyncPeriod = minSync
  const healthz = bindAddress(doc, 'healthzBindAddress', 10256)
  if (healthz !== undefined) run.healthzBindAddress = healthz
  const metrics = bindAddress(doc, 'metricsBindAddress', 10249)
  if (metrics !== undefined) run.metricsBindAddress = metrics
  const kubeconfig = at(doc, 'clientConnection.kubeconfig')
  if (typeof kubeconfig === 'string' && kubeconfig !== '') run.kubeconfig = kubeconfig
  return { proxier, run, notActedOn }
}

/**
 * Reads a KubeProxyConfiguration from its text (YAML or JSON, as kube-proxy's --config takes
 * it): one document. Syntax errors, unknown fields and wrong types are TypeErrors naming them.
 */
export async function loadKubeProxyConfiguration(text: string, read: KubeProxyConfigurationReadOptions = {}): Promise<KubeProxyConfigurationOptions> {
  if (typeof text !== 'string') throw new SvcplaneTypeError(`loadKubeProxyConfiguration: text must be a string, got ${show(text)}`)
  const trimmed = text.trim()
  let docs: unknown[]
  try {
    docs = trimmed.startsWith('{') ? [JSON.parse(trimmed)] : (await loadYamlDocuments(text)).filter((d) => d !== null && d !== undefined)
  } catch (err) {
    const e = err as { reason?: string; mark?: { line?: number }; message?: string }
    const why = e.reason !== undefined && e.mark !== undefined ? `${e.reason} (line ${(e.mark.line ?? 0) + 1})` : (e.message ?? String(err)).split('\n')[0]
    throw new SvcplaneTypeError(`KubeProxyConfiguration: not valid ${trimmed.startsWith('{') ? 'JSON' : 'YAML'}: ${why}`)
  }
  if (docs.length !== 1) throw new SvcplaneTypeError(`KubeProxyConfiguration: expected one document, found ${docs.length}`)
  return kubeProxyConfigurationOptions(docs[0], read)
}
