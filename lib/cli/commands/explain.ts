// svcplane explain: what kube-proxy does with one packet, and why, in both proxy modes.
import type { Explanation } from '../../proxy/explain.js'
import type { Packet } from '../../proxy/packet.js'
import { isRecord } from '../../k8s/fields.js'
import { canonicalAddress } from '../../util/address.js'
import type { ClusterDump } from '../cluster-file.js'
import type { ProxyMode } from '../../modes/index.js'
import { CliError, UsageError } from '../errors.js'
import { describePacket, sameDecision, sideBySide } from '../format/explain.js'
import { applyConfigFile, CLUSTER_OPTION, CONFIG_OPTION, MAX_INPUT_OPTION, JSON_OPTION, loadInto, newProxier, NODE_OPTIONS, proxierOptionsFrom, proxyModeOptions, requireCluster, selectedMode } from '../node-options.js'
import { packetFrom } from '../packet-args.js'
import type { Command } from '../registry.js'
import { explainNftRuleset } from './explain-nft-ruleset.js'

/** The Service kube-proxy skips (another proxy's, headless-labelled) that owns the packet's destination address, with why. */
function skippedOwner(dump: ClusterDump, packet: Packet): { service: string; reason: string } | undefined {
  for (const n of dump.notProxied) {
    if (n.kind !== 'Service') continue
    const svc = dump.items.find((i) => isRecord(i) && i.kind === 'Service' && isRecord(i.metadata) && `${String(i.metadata.namespace)}/${String(i.metadata.name)}` === n.key)
    const spec = isRecord(svc) && isRecord(svc.spec) ? svc.spec : {}
    const status = isRecord(svc) && isRecord(svc.status) && isRecord(svc.status.loadBalancer) ? svc.status.loadBalancer : {}
    const addresses = [spec.clusterIP, ...(Array.isArray(spec.clusterIPs) ? spec.clusterIPs : []), ...(Array.isArray(spec.externalIPs) ? spec.externalIPs : []), ...(Array.isArray(status.ingress) ? status.ingress.map((i) => (isRecord(i) ? i.ip : undefined)) : [])]
    if (addresses.some((a) => typeof a === 'string' && canonicalAddress(a) === packet.dst)) return { service: n.key, reason: n.reason }
  }
  return undefined
}

export const explainCommand: Command = {
  name: 'explain',
  summary: 'show the decision for one packet and the steps behind it, native and iptables modes side by side',
  description:
    'Loads the cluster dump, programs it like kube-proxy on the given node, and sends one packet. ' +
    'With --proxy-mode both (the default) the native dataplane and the iptables rules are shown side by side when the iptables mode is available; ' +
    'otherwise the native mode alone, saying so. A different decision in the two modes makes the exit status 1. ' +
    'With --nft-ruleset FILE (a node\'s `nft list ruleset`) the packet goes through that ruleset instead, and the rules it visits are printed.',
  options: [
    { name: 'src', type: 'string', valueName: 'IP[:PORT]', description: 'source address and port (port default 40000)' },
    { name: 'dst', type: 'string', valueName: 'IP:PORT', description: 'destination address and port' },
    { name: 'proto', type: 'string', valueName: 'PROTO', choices: ['tcp', 'udp', 'sctp'], default: 'tcp', description: 'protocol' },
    { name: 'hook', type: 'string', valueName: 'HOOK', choices: ['prerouting', 'output'], default: 'prerouting', description: 'output: sent by a process on this node; prerouting: arriving from a pod or the network' },
    { name: 'now', type: 'number', valueName: 'SECONDS', description: 'virtual time of the packet' },
    CLUSTER_OPTION,
    { name: 'nft-ruleset', type: 'string', valueName: 'FILE', description: 'walk the packet through a node\'s `nft list ruleset` (or `nft -a list ruleset`, or an `nft -f` file) instead of a cluster dump: the decision and the rules visited; --node-ip names the node\'s addresses' },
    MAX_INPUT_OPTION,
    CONFIG_OPTION,
    ...proxyModeOptions(['both'], 'both', 'the proxy mode (kube-proxy\'s --proxy-mode); both: native and iptables side by side'),
    ...NODE_OPTIONS,
    JSON_OPTION,
  ],
  examples: [
    'svcplane explain --cluster cluster.json --node-name node-a --node-ip 192.168.0.2 --pod-cidr 10.244.0.0/16 --src 10.244.0.9 --dst 172.30.10.5:80',
    'svcplane explain --cluster cluster.json --node-ip 192.168.0.2 --src 203.0.113.7:5555 --dst 192.168.0.2:30080 --json',
    'nft -a list ruleset > node-a.nft && svcplane explain --nft-ruleset node-a.nft --node-ip 192.168.0.2 --src 10.244.0.9 --dst 172.30.10.5:80',
  ],
  async run({ options: v, io, command, given }) {
    await applyConfigFile(v, given, explainCommand.options, io, command)
    const packet = packetFrom(v, command)
    if (v['nft-ruleset'] !== undefined) {
      if (v.cluster !== undefined) throw new UsageError('--nft-ruleset and --cluster: give one (the ruleset is the node\'s state)', command)
      return explainNftRuleset({ file: v['nft-ruleset'] as string, packet, nodeIPs: (v['node-ip'] as string[] | undefined) ?? [], seed: v.seed as number | undefined, maxBytes: v['max-input-bytes'] as number | undefined, json: v.json === true }, io)
    }
    const asked = selectedMode(v)
    const modes: ProxyMode[] = asked === 'both' ? ['native', 'iptables'] : [asked as ProxyMode]
    const dump = await requireCluster(v, io, command)
    const results: { mode: ProxyMode; explanation: Explanation }[] = []
    const options = proxierOptionsFrom(v, modes[0]!, command)
    // Which node the packet is decided on matters (local endpoints, node ports): say what was assumed.
    const node = {
      name: options.nodeName,
      ips: options.nodeIPs,
      podCIDRs: options.podCIDRs ?? [],
      assumed: [...(v['node-name'] === undefined ? ['name (the host name; --node-name)'] : []), ...(v['node-ip'] === undefined ? ['addresses (the host\'s; --node-ip)'] : [])],
    }
    for (const mode of modes) {
      const proxier = newProxier({ ...options, mode })
      loadInto(proxier, dump, io)
      let explanation: Explanation
      try {
        explanation = proxier.explain(packet)
      } catch (err) {
        throw new CliError(`cannot explain ${describePacket(packet)}`, { cause: err })
      }
      results.push({ mode, explanation })
    }
    const skipped = results.every((r) => r.explanation.result.action === 'accept') ? skippedOwner(dump, packet) : undefined
    const agree = results.length < 2 || sameDecision(results[0].explanation, results[1].explanation)
    if (v.json) {
      const out: Record<string, unknown> = { packet: { ...packet, hook: packet.hook ?? 'prerouting' }, node }
      if (skipped !== undefined) out.notProxied = skipped
      for (const r of results) out[r.mode] = { result: r.explanation.result, steps: r.explanation.steps }
      if (results.length === 2) out.agree = agree
      io.stdout.write(JSON.stringify(out, null, 2) + '\n')
    } else {
      const assumed = node.assumed.length > 0 ? ` (assumed: ${node.assumed.join(', ')})` : ''
      io.stdout.write(`${describePacket(packet)}\non node ${node.name}, addresses ${node.ips.join(', ')}, pod CIDRs ${node.podCIDRs.join(', ') || 'none'}${assumed}\n\n`)
      if (results.length === 2) {
        io.stdout.write(sideBySide({ title: 'native', text: results[0].explanation.text }, { title: 'iptables', text: results[1].explanation.text }))
        io.stdout.write(agree ? '\nBoth modes agree.\n' : '\nThe modes DISAGREE.\n')
      } else {
        io.stdout.write(`${results[0].mode}:\n${results[0].explanation.text}\n`)
      }
      if (skipped !== undefined) io.stdout.write(`\n${packet.dst} belongs to Service ${skipped.service}, which kube-proxy does not program: it is ${skipped.reason}.\n`)
    }
    return agree ? 0 : 1
  },
}
