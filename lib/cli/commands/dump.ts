// svcplane dump: the programmed state as iptables-save text, an ipvsadm -Ln listing, a
// conntrack -L listing or JSON; offline from --cluster, or from a running `svcplane run`
// through its metrics address (--server).
import type { Proxier, ProxyMode } from '../../modes/index.js'
import { CliError, UsageError } from '../errors.js'
import { dumpJson, formatConntrack, formatIpvsadm, virtualServers } from '../format/dump.js'
import { applyConfigFile, CLUSTER_OPTION, CONFIG_OPTION, MAX_INPUT_OPTION, JSON_OPTION, NODE_OPTIONS, proxierFromCluster, proxyModeOptions, selectedMode } from '../node-options.js'
import type { Command } from '../registry.js'
import type { IpvsadmView } from '../../ipvs/format-ipvsadm.js'

export const DUMP_FORMATS = ['iptables-save', 'nft', 'ipvsadm', 'ipset', 'conntrack', 'userspace', 'json'] as const
export type DumpFormat = (typeof DUMP_FORMATS)[number]
export const DUMP_PATH = '/debug/svcplane/dump'

export interface RenderedDump {
  contentType: string
  body: string
  /** For conntrack: the flow count (conntrack prints it on stderr). */
  count?: number
}

/** One dump of a Proxier (shared by this command and the running proxy's debug endpoint). */
export function renderDump(proxier: Proxier, format: DumpFormat, json: boolean, view: IpvsadmView | 'connections' = 'list'): RenderedDump {
  const asJson = (data: unknown): RenderedDump => ({ contentType: 'application/json', body: JSON.stringify(data, null, 2) + '\n' })
  const text = (body: string): RenderedDump => ({ contentType: 'text/plain; charset=utf-8', body })
  // Mode ipvs: what kube-proxy's IPVS proxier programs, as ipvsadm and ipset print it.
  const ipvs = proxier.ipvs
  if (ipvs !== undefined && format === 'ipvsadm') {
    if (json) return asJson(proxier.ipvsState().virtualServers)
    return text(view === 'connections' ? ipvs.ipvsadmConnections() : ipvs.ipvsadm({ view }))
  }
  if (format === 'ipset') {
    if (ipvs === undefined) throw new CliError('--format ipset shows the ipsets of IPVS mode: use --proxy-mode ipvs')
    return json ? asJson(proxier.ipvsState().ipsets) : text(ipvs.ipsetSave())
  }
  // Mode userspace: the portal rules its proxier writes, and its listener table.
  const inspected = proxier.inspect()
  if (inspected.mode === 'userspace') {
    const us = inspected.userspace
    if (format === 'iptables-save') return json ? asJson({ format, text: us.portalRules(), jumpRules: us.jumpRules() }) : text(us.portalRules())
    if (format === 'userspace') {
      if (json) return asJson({ servicePorts: us.servicePorts(), listeners: us.listeners(), counters: us.counters(), rules: us.portalRules(), jumpRules: us.jumpRules() })
      return text(`${us.listenerTable()}
${us.portalRules()}`)
    }
    if (format === 'json') return asJson({ ...dumpJson(proxier), userspace: { servicePorts: us.servicePorts(), listeners: us.listeners(), counters: us.counters() } })
  }
  if (format === 'userspace') throw new CliError('--format userspace shows the userspace proxier\'s listeners and portal rules: use --proxy-mode userspace')
  if (ipvs !== undefined && format === 'iptables-save') {
    const s = proxier.ipvsState()
    return json ? asJson({ format, text: s.iptables, ip6tables: s.ip6tables }) : text(s.iptables + s.ip6tables)
  }
  switch (format) {
    case 'iptables-save': {
      const text = proxier.iptablesRestore()
      return json ? asJson({ format, text }) : { contentType: 'text/plain; charset=utf-8', body: text.endsWith('\n') ? text : text + '\n' }
    }
    case 'nft': {
      // kube-proxy's nftables table(s), in the `add ...` form `nft -f` loads.
      const text = proxier.nftablesRuleset()
      return json ? asJson({ format, text }) : { contentType: 'text/plain; charset=utf-8', body: text }
    }
    case 'ipvsadm':
      return json ? asJson(virtualServers(proxier)) : { contentType: 'text/plain; charset=utf-8', body: formatIpvsadm(proxier) }
    case 'conntrack': {
      if (json) return asJson((dumpJson(proxier).conntrack as unknown[]) ?? [])
      const c = formatConntrack(proxier)
      return { contentType: 'text/plain; charset=utf-8', body: c.text, count: c.count }
    }
    case 'json':
      return asJson(dumpJson(proxier))
  }
}

async function fetchDump(server: string, format: DumpFormat, json: boolean): Promise<RenderedDump> {
  let base: URL
  try {
    base = new URL(/^https?:\/\//.test(server) ? server : `http://${server}`)
  } catch {
    throw new UsageError(`--server: invalid address ${JSON.stringify(server)}`, 'dump')
  }
  const url = new URL(DUMP_PATH, base)
  url.searchParams.set('format', format)
  if (json) url.searchParams.set('json', '1')
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new CliError(`cannot reach svcplane at ${base.origin}`, { cause: (err as { cause?: unknown }).cause ?? err })
  }
  const body = await res.text()
  if (!res.ok) throw new CliError(`svcplane at ${base.origin} answered ${res.status}: ${body.trim()}`)
  const count = res.headers.get('x-flow-count')
  return { contentType: res.headers.get('content-type') ?? '', body, count: count === null ? undefined : Number(count) }
}

export const dumpCommand: Command = {
  name: 'dump',
  summary: 'print the programmed state: iptables-save, nft, ipvsadm -Ln or conntrack -L style, or JSON',
  description:
    'iptables-save: the iptables-restore input kube-proxy (iptables mode) would write. nft: kube-proxy\'s nftables table (--proxy-mode nftables), as nft -f loads it. ipvsadm: virtual servers with scheduler and persistence, ' +
    'real servers with weight and active/inactive connections. conntrack: the tracked flows. userspace (--proxy-mode userspace): the listener table and the KUBE-PORTALS-* / KUBE-NODEPORT-* rules. json: the ServicePorts and every dataplane map. ' +
    'Offline with --cluster FILE, or from a running `svcplane run` with --server (its --metrics-bind-address).',
  options: [
    { name: 'format', short: 'f', type: 'string', valueName: 'FORMAT', choices: DUMP_FORMATS, description: 'what to print (default ipvsadm; userspace in --proxy-mode userspace)' },
    { name: 'server', type: 'string', valueName: 'HOST:PORT', description: 'ask a running `svcplane run` (its metrics address) instead of loading --cluster' },
    CLUSTER_OPTION,
    MAX_INPUT_OPTION,
    CONFIG_OPTION,
    ...proxyModeOptions(),
    ...NODE_OPTIONS,
    { ...JSON_OPTION, description: 'print the chosen dump as JSON data' },
    { name: 'stats', type: 'boolean', description: 'with --format ipvsadm in mode ipvs: counters, as ipvsadm -Ln --stats' },
    { name: 'rate', type: 'boolean', description: 'with --format ipvsadm in mode ipvs: rates, as ipvsadm -Ln --rate' },
    { name: 'connections', type: 'boolean', description: 'with --format ipvsadm in mode ipvs: the connection entries, as ipvsadm -Lnc' },
  ],
  examples: [
    'svcplane dump --cluster cluster.json --node-ip 192.168.0.2 --format ipvsadm',
    'svcplane dump --cluster cluster.json --node-ip 192.168.0.2 --format iptables-save',
    'svcplane dump --cluster cluster.json --node-ip 192.168.0.2 --proxy-mode nftables --format nft',
    'svcplane dump --cluster cluster.json --node-ip 192.168.0.2 --proxy-mode userspace',
    'svcplane dump --server 127.0.0.1:10249 --format conntrack',
  ],
  async run({ options: v, io, command, given }) {
    let format = (v.format ?? 'ipvsadm') as DumpFormat
    const json = v.json === true
    let out: RenderedDump
    if (v.server !== undefined) {
      if (v.cluster !== undefined) throw new UsageError('--server and --cluster are exclusive', command)
      out = await fetchDump(v.server as string, format, json)
    } else {
      await applyConfigFile(v, given, dumpCommand.options, io, command)
      const mode = selectedMode(v) as ProxyMode
      if (v.format === undefined && mode === 'userspace') format = 'userspace'
      if ((format === 'ipvsadm' || format === 'conntrack') && mode !== 'native' && !(format === 'ipvsadm' && mode === 'ipvs')) {
        throw new UsageError(`--format ${format} shows the native dataplane (or, for ipvsadm, IPVS mode): use --proxy-mode native or ipvs`, command)
      }
      if (format === 'ipset' && mode !== 'ipvs') throw new UsageError('--format ipset shows the ipsets of IPVS mode: use --proxy-mode ipvs', command)
      if (format === 'nft' && mode !== 'nftables') throw new UsageError('--format nft shows the nftables mode\'s table: use --proxy-mode nftables', command)
      if (format === 'userspace' && mode !== 'userspace') throw new UsageError('--format userspace shows the userspace proxier\'s listeners and portal rules: use --proxy-mode userspace', command)
      const { proxier } = await proxierFromCluster(v, io, command, mode)
      out = renderDump(proxier, format, json, v.connections === true ? 'connections' : v.rate === true ? 'rate' : v.stats === true ? 'stats' : 'list')
    }
    io.stdout.write(out.body)
    if (format === 'conntrack' && !json && out.count !== undefined) {
      io.stderr.write(`svcplane (conntrack -L style): ${out.count} flow entries have been shown.\n`)
    }
  },
}
