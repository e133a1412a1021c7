// The options every command that builds a Proxier shares (kube-proxy's node flags), and the
// construction of that Proxier from them, offline from a --cluster dump.
import * as os from 'node:os'
import { canonicalAddress, parseCidr } from '../util/address.js'
import { conflictMessage } from '../k8s/address-conflicts.js'
import { parseService } from '../k8s/service.js'
import type { SchedulerName } from '../dataplane/types.js'
import { parseCapacityFlag } from '../modes/native/native-options.js'
import { isProxyMode, PROXY_MODE_NAMES, Proxier, type ProxierOptions, type ProxyMode } from '../modes/index.js'
import type { SyncSummary } from '../proxy/proxier.js'
import { loadKubeProxyConfiguration, nodePortAddressList, type KubeProxyConfigurationOptions } from '../config/kube-proxy-configuration.js'
import type { OptionSpec, ParsedValues } from './args.js'
import { loadClusterFiles, MAX_INPUT_OPTION, printNotices, readInputText, type ClusterDump } from './cluster-file.js'
import { CliError, UsageError } from './errors.js'
import type { CliIO } from './io.js'
import { progressBar } from './progress.js'

export const SCHEDULERS: readonly SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']

export const CLUSTER_OPTION: OptionSpec = {
  name: 'cluster',
  type: 'string',
  repeatable: true,
  valueName: 'FILE',
  description: 'work offline from a `kubectl get services,endpointslices -A -o json` (or -o yaml; v1 Endpoints are read too) dump; "-" reads stdin; repeat to merge several files',
}

export { MAX_INPUT_OPTION }

export const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', description: 'print machine-readable JSON' }

/** kube-proxy's --proxy-mode, and --mode, its old name here, kept as a hidden alias. */
export function proxyModeOptions(extra: readonly string[] = [], def: string = 'native', description = 'the proxy mode (kube-proxy\'s --proxy-mode)'): OptionSpec[] {
  const choices = [...PROXY_MODE_NAMES, ...extra]
  return [
    { name: 'proxy-mode', type: 'string', valueName: 'MODE', choices, default: def, description },
    { name: 'mode', type: 'string', hidden: true, alias: 'proxy-mode', choices, description: 'alias of --proxy-mode' },
  ]
}

export const CONFIG_OPTION: OptionSpec = {
  name: 'config',
  type: 'string',
  valueName: 'FILE',
  description: 'a KubeProxyConfiguration file (kube-proxy\'s --config, YAML or JSON); flags given on the command line override its fields',
}

export const SERVICE_CIDR_OPTION: OptionSpec = {
  name: 'service-cidr',
  type: 'list',
  valueName: 'CIDR',
  description: 'the cluster\'s service CIDRs (kube-proxy --service-cluster-ip-range): nftables mode drops traffic to their unallocated addresses',
}

export const NODEPORT_ADDRESSES_OPTION: OptionSpec = {
  name: 'nodeport-addresses',
  type: 'list',
  valueName: 'CIDR',
  description: 'node addresses that accept NodePorts (kube-proxy --nodeport-addresses): CIDRs, "primary" (the node\'s primary IPs), "localhost" or "all" (the default)',
}

/** kube-proxy's node flags. Hidden aliases take kube-proxy's own flag names. */
export const NODE_OPTIONS: OptionSpec[] = [
  { name: 'node-name', type: 'string', valueName: 'NAME', description: 'this node\'s name: endpoints with this nodeName are local (default: the host name)' },
  { name: 'node-ip', type: 'list', valueName: 'IP', description: 'this node\'s IP addresses, comma-separated or repeated (default: the host\'s first non-loopback addresses)' },
  { name: 'pod-cidr', type: 'list', valueName: 'CIDR', description: 'pod CIDRs for the local-traffic detector (kube-proxy --cluster-cidr)' },
  { name: 'zone', type: 'string', valueName: 'ZONE', description: 'this node\'s topology.kubernetes.io/zone, for topology hints' },
  { name: 'scheduler', type: 'string', valueName: 'NAME', choices: SCHEDULERS, default: 'random', description: 'backend selection of new flows in native mode' },
  { name: 'masquerade-all', type: 'boolean', description: 'masquerade all traffic to cluster IPs' },
  { name: 'seed', type: 'integer', valueName: 'N', description: 'fix the hash and scheduler seed (reproducible choices)' },
  { name: 'capacity', type: 'string', valueName: 'N|MAP=N,...', description: 'native mode: ceiling of the services map (N), or per map (services=N,frontends=N,backends=N,conntrack=N,...); the service maps grow with the cluster up to it (default 33554432)' },
  { name: 'hostname-override', type: 'string', hidden: true, alias: 'node-name', description: 'alias of --node-name' },
  { name: 'cluster-cidr', type: 'list', hidden: true, alias: 'pod-cidr', description: 'alias of --pod-cidr' },
  SERVICE_CIDR_OPTION,
  NODEPORT_ADDRESSES_OPTION,
]

function hostAddresses(): string[] {
  const all = Object.values(os.networkInterfaces()).flat().filter((a) => a !== undefined && !a.internal)
  const v4 = all.find((a) => a!.family === 'IPv4')?.address
  const v6 = all.find((a) => a!.family === 'IPv6' && !a!.address.startsWith('fe80'))?.address
  return [v4, v6].filter((a): a is string => a !== undefined)
}

/** The CIDRs of a list flag, each checked (a usage error naming the flag). */
export function cidrFlag(v: ParsedValues, flag: string, example: string, command?: string): string[] {
  const items = (v[flag] as string[] | undefined) ?? []
  for (const c of items) {
    if (!c.includes('/') || parseCidr(c) === undefined) throw new UsageError(`--${flag}: ${JSON.stringify(c)} is not a CIDR (ADDRESS/LENGTH, like ${example})`, command)
  }
  return items
}

/** --nodeport-addresses, its keywords expanded (undefined: not given, every address). */
export function nodePortAddressesFlag(v: ParsedValues, command?: string): string[] | undefined {
  const items = v['nodeport-addresses'] as string[] | undefined
  if (items === undefined) return undefined
  try {
    return nodePortAddressList(items, '--nodeport-addresses')
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^--nodeport-addresses\[\d+\] must be/, '--nodeport-addresses: each item must be'), command)
  }
}

/** Checks --node-ip / --pod-cidr / --service-cidr / --nodeport-addresses values in the CLI's words (usage errors naming the flag). */
export function checkNodeFlags(v: ParsedValues, command?: string): void {
  if (v['node-name'] !== undefined && (v['node-name'] as string).trim() === '') throw new UsageError('--node-name: must not be empty', command)
  for (const ip of (v['node-ip'] as string[] | undefined) ?? []) if (canonicalAddress(ip) === undefined) throw new UsageError(`--node-ip: ${JSON.stringify(ip)} is not an IP address`, command)
  cidrFlag(v, 'pod-cidr', '10.244.0.0/16', command)
  cidrFlag(v, 'service-cidr', '10.96.0.0/12', command)
  nodePortAddressesFlag(v, command)
}

/** Where applyConfigFile leaves the file's Proxier sections that no flag sets (iptables, ipvs, nftables, conntrack). */
const CONFIG_SECTIONS = 'config:sections'

type ConfigSections = Pick<ProxierOptions, 'iptables' | 'ipvs' | 'nftables' | 'native' | 'timeouts'>

/** Flag name -> how to read its value from the file. */
const FLAGS_FROM_CONFIG: Record<string, (c: KubeProxyConfigurationOptions) => unknown> = {
  'proxy-mode': (c) => c.proxier.mode,
  'node-name': (c) => c.proxier.nodeName,
  'node-ip': (c) => c.proxier.nodeIPs,
  'pod-cidr': (c) => c.proxier.podCIDRs,
  'nodeport-addresses': (c) => c.proxier.nodePortAddresses,
  'masquerade-all': (c) => c.proxier.masqueradeAll,
  'localhost-node-ports': (c) => c.proxier.iptables?.localhostNodePorts,
  'sync-period': (c) => c.run.syncPeriod,
  'min-sync-period': (c) => c.run.minSyncPeriod,
  'metrics-bind-address': (c) => c.run.metricsBindAddress,
  'healthz-bind-address': (c) => c.run.healthzBindAddress,
  kubeconfig: (c) => c.run.kubeconfig,
}

/**
 * Reads --config (a KubeProxyConfiguration) and fills every option of `specs` it sets that was
 * not given on the command line; the file's mode sections go to proxierOptionsFrom. Says on
 * stderr, in one line, which fields it accepts but does not act on.
 */
export async function applyConfigFile(v: ParsedValues, given: ReadonlySet<string> | undefined, specs: readonly OptionSpec[], io: CliIO, command: string): Promise<KubeProxyConfigurationOptions | undefined> {
  const file = v.config as string | undefined
  if (file === undefined) return undefined
  const text = await readInputText(file, io, 'configuration file', { maxBytes: v['max-input-bytes'] as number | undefined })
  let config: KubeProxyConfigurationOptions
  try {
    config = await loadKubeProxyConfiguration(text)
  } catch (err) {
    throw new CliError(`--config ${file}: ${(err as Error).message}`)
  }
  const known = new Set(specs.map((s) => s.name))
  for (const [flag, read] of Object.entries(FLAGS_FROM_CONFIG)) {
    const value = read(config)
    // Offline from --cluster, the file's kubeconfig is not the source.
    if (flag === 'kubeconfig' && v.cluster !== undefined) continue
    if (value !== undefined && known.has(flag) && !(given?.has(flag) ?? false)) v[flag] = value
  }
  const { iptables, ipvs, nftables, native, timeouts } = config.proxier
  v[CONFIG_SECTIONS] = { iptables, ipvs, nftables, native, timeouts } satisfies ConfigSections
  if (config.notActedOn.length > 0) io.stderr.write(`svcplane ${command}: note: ${file}: svcplane does not act on ${config.notActedOn.join(', ')}\n`)
  return config
}

/** ProxierOptions from the parsed node flags; checks them (usage errors name the flag). */
export function proxierOptionsFrom(v: ParsedValues, mode: ProxyMode, command?: string): ProxierOptions {
  checkNodeFlags(v, command)
  const nodeName = (v['node-name'] ?? os.hostname()) as string
  let nodeIPs = v['node-ip'] as string[] | undefined
  if (nodeIPs === undefined || nodeIPs.length === 0) {
    nodeIPs = hostAddresses()
    if (nodeIPs.length === 0) throw new UsageError('--node-ip is required: this host has no non-loopback address to default to', command)
  }
  const podCIDRs = (v['pod-cidr'] as string[] | undefined) ?? []
  const seed = v.seed as number | undefined
  if (seed !== undefined && seed < 0) throw new UsageError('--seed must be >= 0', command)
  let capacity: ReturnType<typeof parseCapacityFlag> | undefined
  try {
    if (v.capacity !== undefined) capacity = parseCapacityFlag(v.capacity as string)
  } catch (err) {
    throw new UsageError(`--capacity: ${(err as Error).message}`, command)
  }
  const file = (v[CONFIG_SECTIONS] ?? {}) as ConfigSections
  const serviceCIDRs = cidrFlag(v, 'service-cidr', '10.96.0.0/12', command)
  const nodePortAddresses = nodePortAddressesFlag(v, command)
  const fileCapacity = file.native?.capacity
  const mergedCapacity = fileCapacity !== undefined || capacity !== undefined ? { ...fileCapacity, ...capacity } : undefined
  return {
    mode,
    nodeName,
    nodeIPs,
    podCIDRs,
    ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}),
    ...(nodePortAddresses !== undefined ? { nodePortAddresses } : {}),
    zone: v.zone as string | undefined,
    native: { scheduler: v.scheduler as SchedulerName, ...(mergedCapacity !== undefined ? { capacity: mergedCapacity } : {}) },
    masqueradeAll: v['masquerade-all'] === true,
    ...(file.iptables !== undefined ? { iptables: file.iptables } : {}),
    ...(file.ipvs !== undefined ? { ipvs: file.ipvs } : {}),
    ...(file.nftables !== undefined ? { nftables: file.nftables } : {}),
    ...(file.timeouts !== undefined ? { timeouts: file.timeouts } : {}),
    seed,
  }
}

/** The --proxy-mode value (or --mode's, or the --config file's). */
export function selectedMode(v: ParsedValues): string {
  return (v['proxy-mode'] ?? 'native') as string
}

/** Fails with a usage error naming the modes when `mode` is none of them. */
export function requireMode(mode: string): asserts mode is ProxyMode {
  if (!isProxyMode(mode)) throw new UsageError(`--proxy-mode: ${JSON.stringify(mode)} is not a proxy mode (${PROXY_MODE_NAMES.join(', ')})`)
}

export function newProxier(options: ProxierOptions): Proxier {
  requireMode(options.mode)
  try {
    return new Proxier(options)
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message)
    throw err
  }
}

/** Records every object of the dump in the Proxier and syncs it, with a progress bar on a terminal. */
export function loadInto(proxier: Proxier, dump: ClusterDump, io: CliIO): SyncSummary {
  const total = dump.services.length + dump.endpointSlices.length
  const bar = progressBar(io, `loading ${dump.file}`, total + Math.max(1, Math.ceil(total / 10)))
  for (const s of dump.services) {
    proxier.applyService(s)
    bar.tick()
  }
  for (const s of dump.endpointSlices) {
    proxier.applyEndpointSlice(s)
    bar.tick()
  }
  bar.update(total, 'syncing')
  const summary = proxier.sync()
  bar.done()
  if (summary.errors.length) {
    const first = summary.errors[0]
    // The dataplane names Services by internal id; a clash of addresses is said by name instead.
    const parsed = dump.services.map((s) => parseService(s))
    const clash = summary.errors.map((e) => conflictMessage(e.service, parsed)).find((m) => m !== undefined)
    if (clash !== undefined) throw new CliError(`${dump.file}: ${clash}`)
    throw new CliError(`programming ${summary.errors.length} service(s) failed, first ${first.service}`, { cause: first.error })
  }
  return summary
}

/** The --cluster files given (none: undefined). */
export function clusterFiles(v: ParsedValues): string[] | undefined {
  const files = v.cluster as string[] | undefined
  return files === undefined || files.length === 0 ? undefined : files
}

/** Reads and merges the --cluster files, saying on stderr what the loader did (Endpoints read, Services skipped). */
export async function readCluster(files: string[], v: ParsedValues, io: CliIO, command: string): Promise<ClusterDump> {
  const dump = await loadClusterFiles(files, io, { maxBytes: v['max-input-bytes'] as number | undefined })
  printNotices(io, command, dump.notices)
  return dump
}

export async function requireCluster(v: ParsedValues, io: CliIO, command: string): Promise<ClusterDump> {
  const files = clusterFiles(v)
  if (files === undefined) throw new UsageError('--cluster FILE is required (a `kubectl get services,endpointslices -A -o json` dump)', command)
  return readCluster(files, v, io, command)
}

/** One Proxier per mode asked for, each loaded with the dump. */
export async function proxierFromCluster(v: ParsedValues, io: CliIO, command: string, mode: ProxyMode): Promise<{ proxier: Proxier; dump: ClusterDump }> {
  const options = proxierOptionsFrom(v, mode, command)
  const dump = await requireCluster(v, io, command)
  const proxier = newProxier(options)
  loadInto(proxier, dump, io)
  return { proxier, dump }
}
