// svcplane doctor: checks every Service of a cluster dump from every node's point of view and
// says what is wrong, why, and the fix; --perf measures the proxy on the same objects.
import { canonicalAddress } from '../../util/address.js'
import type { K8sProtocol } from '../../k8s/types.js'
import { diagnose, nodesToCheck, type DoctorObjects, type DoctorOptions } from '../../doctor/diagnose.js'
import { formatPerf, formatReport } from '../../doctor/format.js'
import { splitNodesAndPods } from '../../doctor/nodes.js'
import { measurePerf, type PerfReport } from '../../doctor/perf.js'
import { parseConntrackList } from '../../doctor/stale.js'
import { loadClusterFiles, MAX_INPUT_OPTION, printNotices, readInputText } from '../cluster-file.js'
import { CliError, UsageError } from '../errors.js'
import type { CliIO } from '../io.js'
import { applyConfigFile, cidrFlag, CONFIG_OPTION, JSON_OPTION, NODEPORT_ADDRESSES_OPTION, nodePortAddressesFlag, proxyModeOptions, SERVICE_CIDR_OPTION } from '../node-options.js'
import type { ProxyMode } from '../../modes/index.js'
import { parseEndpoint } from '../packet-args.js'
import type { Command } from '../registry.js'
import { checkNftRuleset, type NftRulesetReport } from '../../doctor/nft-ruleset.js'

/** Exit status with --fail-on-findings when there is an error or a warning (0 success, 1 failure, 2 usage are taken). */
export const EXIT_FINDINGS = 3

/** Services, EndpointSlices, Nodes (and Pods) of `kubectl get services,endpointslices,nodes -A -o json` dumps (several merged). */
export async function loadDoctorObjects(files: string[], io: CliIO, maxBytes?: number, command = 'doctor'): Promise<DoctorObjects> {
  const dump = await loadClusterFiles(files, io, { maxBytes })
  printNotices(io, command, dump.notices)
  let extra
  try {
    extra = splitNodesAndPods(dump.items)
  } catch (err) {
    throw new CliError(`cluster file ${dump.file} holds an invalid object`, { cause: err })
  }
  return { services: dump.services, endpointSlices: dump.endpointSlices, nodes: extra.nodes, pods: extra.pods.length > 0 ? extra.pods : undefined, notProxied: dump.notProxied }
}

function nodePortRange(text: string, command: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(text.trim())
  const lo = m ? Number(m[1]) : NaN
  const hi = m ? Number(m[2]) : NaN
  if (!m || lo < 1 || hi > 65535 || lo > hi) throw new UsageError(`--node-port-range: must be FROM-TO within 1-65535, got ${JSON.stringify(text)}`, command)
  return [lo, hi]
}

/** --nft-ruleset FILE: the node's `nft list ruleset` text. */
async function readNftRuleset(v: Record<string, unknown>, io: CliIO, command: string): Promise<{ file: string; report: NftRulesetReport } | undefined> {
  const file = v['nft-ruleset'] as string | undefined
  if (file === undefined) return undefined
  if ((v.cluster as string[] | undefined ?? []).length === 0 && (v.perf === true || v.conntrack !== undefined)) {
    throw new UsageError('--nft-ruleset alone checks the ruleset; --perf and --conntrack need --cluster', command)
  }
  const text = await readInputText(file, io, 'nft ruleset', { maxBytes: v['max-input-bytes'] as number | undefined })
  try {
    return { file, report: checkNftRuleset(text, (v['node-name'] as string | undefined) ?? file) }
  } catch (err) {
    throw new CliError(`nft ruleset ${file}: ${(err as Error).message}`, { cause: err })
  }
}

function printReport(report: NftRulesetReport, v: Record<string, unknown>, io: CliIO): number {
  io.stdout.write(v.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report))
  return v['fail-on-findings'] === true && report.findings.some((f) => f.severity !== 'info') ? EXIT_FINDINGS : 0
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'find why Services do not route: every Service checked from every node, with what is wrong, why and the fix',
  description:
    'Loads a `kubectl get services,endpointslices,nodes -A -o json` dump (pods too, if you add them: endpoints are then checked against them), ' +
    'programs it on every node (or --node-name) as kube-proxy would, sends probe packets from a pod, from the node and from outside to every frontend, ' +
    'and reports each problem with the probe\'s decision. A healthy Service prints nothing. ' +
    'Name Services with --service to also see notes (behaviour by design that explains what you observe, like session affinity). ' +
    '--client IP checks reachability from that client outside the cluster; --dst IP:PORT the address a client connects to. ' +
    '--conntrack FILE checks a `conntrack -L` listing of the node for connections stuck on old endpoints. ' +
    '--perf measures the proxy on these objects in both modes. ' +
    `Exit status 0 (also with findings) unless --fail-on-findings, which exits ${EXIT_FINDINGS} when there is an error or a warning.`,
  options: [
    { name: 'cluster', type: 'string', repeatable: true, valueName: 'FILE', description: 'a `kubectl get services,endpointslices,nodes -A -o json` (or -o yaml; v1 Endpoints are read too) dump; "-" reads stdin; repeat to merge several files' },
    MAX_INPUT_OPTION,
    { name: 'node-name', type: 'string', valueName: 'NAME', description: 'check from this node only (default: every node of the dump)' },
    { name: 'node-ip', type: 'list', valueName: 'IP', description: 'the node\'s addresses, when the dump has no Node for --node-name' },
    { name: 'pod-cidr', type: 'list', valueName: 'CIDR', description: 'kube-proxy\'s --cluster-cidr (default: each node\'s spec.podCIDRs)' },
    { name: 'zone', type: 'string', valueName: 'ZONE', description: 'the node\'s zone, when the dump has no Node for --node-name' },
    { name: 'service', type: 'list', valueName: 'NS/NAME', description: 'check only these Services, and show their notes too' },
    { name: 'client', type: 'string', valueName: 'IP', description: 'an external client: can it reach the Services from outside?' },
    { name: 'dst', type: 'string', valueName: 'IP:PORT', description: 'the address and port a client connects to (a NodePort, a load-balancer IP...)' },
    { name: 'proto', type: 'string', valueName: 'PROTO', choices: ['tcp', 'udp', 'sctp'], default: 'tcp', description: 'protocol of --dst' },
    { name: 'node-port-range', type: 'string', valueName: 'FROM-TO', default: '30000-32767', description: 'the API server\'s --service-node-port-range' },
    { name: 'localhost-node-ports', type: 'boolean', default: true, description: 'kube-proxy opens NodePorts on 127.0.0.1 (--iptables-localhost-nodeports; --no-localhost-node-ports for ipvs/nftables or when disabled)' },
    { name: 'masquerade-all', type: 'boolean', description: 'kube-proxy runs with --masquerade-all' },
    ...proxyModeOptions([], 'iptables', 'the proxy mode your nodes run (kube-proxy\'s --proxy-mode; its default is iptables): probes run through it, ipvs adds IPVS mode\'s own checks; --perf compares it with native'),
    CONFIG_OPTION,
    SERVICE_CIDR_OPTION,
    NODEPORT_ADDRESSES_OPTION,
    { name: 'perf', type: 'boolean', description: 'measure the proxy on these objects: rules, rules walked and cost per new connection, sync times, both modes side by side' },
    { name: 'perf-budget', type: 'duration', valueName: 'DURATION', default: 0.2, description: 'time budget per measurement of --perf' },
    { name: 'conntrack', type: 'string', valueName: 'FILE', description: 'the node\'s `conntrack -L` (or `svcplane dump --format conntrack`) listing: connections pinned to old endpoints' },
    { name: 'nft-ruleset', type: 'string', valueName: 'FILE', description: 'check a node\'s `nft list ruleset` (kube-proxy nftables mode): services without endpoints, chains that reach no endpoint, missing jumps or masquerade, refused packets by counter; --cluster becomes optional' },
    { name: 'clear-stale', type: 'boolean', description: 'with --conntrack: print only the `conntrack -D` commands that clear the stale flows (run them on the node)' },
    { name: 'all', type: 'boolean', description: 'also show notes (info findings) for every Service' },
    { name: 'fail-on-findings', type: 'boolean', description: `exit ${EXIT_FINDINGS} when there is an error or a warning` },
    { name: 'seed', type: 'integer', valueName: 'N', description: 'seed of the probes\' backend choice (default 1)' },
    JSON_OPTION,
  ],
  examples: [
    'kubectl get services,endpointslices,nodes -A -o json > cluster.json && svcplane doctor --cluster cluster.json',
    'svcplane doctor --cluster cluster.json --service shop/web --client 198.51.100.7',
    'svcplane doctor --cluster cluster.json --dst 192.168.0.3:31080',
    'svcplane doctor --cluster cluster.json --node-name node-a --conntrack conntrack.txt --clear-stale',
    'svcplane doctor --cluster cluster.json --perf --proxy-mode iptables',
    'nft -a list ruleset > node-a.nft && svcplane doctor --nft-ruleset node-a.nft --node-name node-a',
    'svcplane doctor --cluster cluster.json --config kube-proxy-config.yaml --node-name node-a',
  ],
  async run({ options: v, io, command, given }) {
    const files = v.cluster as string[] | undefined
    const nftRuleset = await readNftRuleset(v, io, command)
    if (nftRuleset !== undefined && (files === undefined || files.length === 0)) return printReport(nftRuleset.report, v, io)
    if (files === undefined || files.length === 0) throw new UsageError('--cluster FILE is required (a `kubectl get services,endpointslices,nodes -A -o json` dump)', command)
    const config = await applyConfigFile(v, given, doctorCommand.options, io, command)
    // The probes run in the nodes' mode only when it is named: by default the native model decides (as iptables mode does).
    const mode = given?.has('proxy-mode') === true || config !== undefined ? (v['proxy-mode'] as ProxyMode) : undefined
    const serviceCIDRs = cidrFlag(v, 'service-cidr', '10.96.0.0/12', command)
    const nodePortAddresses = nodePortAddressesFlag(v, command)
    const options: DoctorOptions = {
      nodeName: v['node-name'] as string | undefined,
      nodeIPs: v['node-ip'] as string[] | undefined,
      podCIDRs: v['pod-cidr'] as string[] | undefined,
      zone: v.zone as string | undefined,
      services: v.service as string[] | undefined,
      nodePortRange: nodePortRange(v['node-port-range'] as string, command),
      localhostNodePorts: v['localhost-node-ports'] !== false,
      masqueradeAll: v['masquerade-all'] === true,
      includeInfo: v.all === true ? true : undefined,
      seed: v.seed as number | undefined,
      ...(mode !== undefined ? { mode } : {}),
      ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}),
      ...(nodePortAddresses !== undefined ? { nodePortAddresses } : {}),
      ...(config !== undefined ? { sections: { iptables: config.proxier.iptables, ipvs: config.proxier.ipvs, nftables: config.proxier.nftables, timeouts: config.proxier.timeouts } } : {}),
    }
    for (const ip of options.nodeIPs ?? []) if (canonicalAddress(ip) === undefined) throw new UsageError(`--node-ip: ${JSON.stringify(ip)} is not an IP address`, command)
    if (options.nodeIPs !== undefined && options.nodeName === undefined) throw new UsageError('--node-ip needs --node-name', command)
    for (const s of options.services ?? []) if (!/^[^/\s]+\/[^/\s]+$/.test(s)) throw new UsageError(`--service: must be NAMESPACE/NAME, got ${JSON.stringify(s)}`, command)
    if (v.client !== undefined) {
      const c = canonicalAddress(v.client as string)
      if (c === undefined) throw new UsageError(`--client: ${JSON.stringify(v.client)} is not an IP address`, command)
      options.client = c
    }
    if (v.dst !== undefined) {
      const t = parseEndpoint(v.dst as string, '--dst', command)
      options.target = { address: t.ip, port: t.port, protocol: (v.proto as string).toUpperCase() as K8sProtocol }
    }
    if (v['clear-stale'] === true && v.conntrack === undefined) {
      throw new UsageError('--clear-stale needs --conntrack FILE (the node\'s `conntrack -L`); a running svcplane is cleared through the API (clearStaleFlows)', command)
    }
    const maxBytes = v['max-input-bytes'] as number | undefined
    const objects = await loadDoctorObjects(files, io, maxBytes, command)
    if (v.conntrack !== undefined) {
      const ct = v.conntrack as string
      const text = await readInputText(ct, io, 'conntrack listing', { maxBytes })
      try {
        options.conntrack = parseConntrackList(text)
      } catch (err) {
        throw new CliError(`conntrack listing ${ct}: ${(err as Error).message}`)
      }
    }
    let report
    try {
      report = diagnose(objects, options)
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message, command)
      throw new CliError(`diagnosing ${files.join(', ')} failed`, { cause: err })
    }
    if (v['clear-stale'] === true) {
      if (v.json) io.stdout.write(JSON.stringify({ staleFlows: report.staleFlows, commands: report.clearCommands }, null, 2) + '\n')
      else for (const c of report.clearCommands) io.stdout.write(`${c}\n`)
      io.stderr.write(`${report.staleFlows.length} stale flow(s), ${report.clearCommands.length} command(s)\n`)
      return 0
    }
    let perf: PerfReport | undefined
    if (v.perf === true) {
      const node = nodesToCheck(objects, options)[0]
      perf = measurePerf(node, objects, options, { mode: v['proxy-mode'] as ProxyMode, budgetMs: (v['perf-budget'] as number) * 1000 })
      report.findings.push(...perf.findings)
    }
    if (nftRuleset !== undefined) report.findings.push(...nftRuleset.report.findings)
    if (v.json) {
      io.stdout.write(JSON.stringify(perf === undefined ? report : { ...report, perf }, null, 2) + '\n')
    } else {
      io.stdout.write(formatReport(report))
      if (perf !== undefined) io.stdout.write('\n' + formatPerf(perf))
    }
    const serious = report.findings.some((f) => f.severity !== 'info')
    return v['fail-on-findings'] === true && serious ? EXIT_FINDINGS : 0
  },
}
