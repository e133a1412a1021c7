// svcplane compare: two proxy modes on one cluster, every probe they decide differently.
import { compareModes } from '../../compare/compare.js'
import { formatComparison } from '../../compare/format.js'
import { PROXY_MODE_NAMES, type ProxyMode } from '../../modes/index.js'
import { CliError, UsageError } from '../errors.js'
import { applyConfigFile, CLUSTER_OPTION, CONFIG_OPTION, JSON_OPTION, MAX_INPUT_OPTION, NODE_OPTIONS, proxierOptionsFrom, requireCluster } from '../node-options.js'
import type { Command } from '../registry.js'

export const compareCommand: Command = {
  name: 'compare',
  summary: 'compare two proxy modes on a cluster: every probe packet they decide differently, and why',
  description:
    'Loads the cluster dump into a Proxier of each mode and sends both, for every service port, one packet per class of client ' +
    '(pod, node, external, hairpin, localhost, source outside loadBalancerSourceRanges) and to what no Service serves (an unserved port ' +
    'of a cluster IP, an unallocated address of --service-cidr). Prints each probe the modes decide differently (verdict, service port, ' +
    'masquerading, refusal reason; endpoints are random picks and are not compared) with each mode\'s own reason. Exit status 1 when they differ.',
  options: [
    CLUSTER_OPTION,
    MAX_INPUT_OPTION,
    { name: 'from', type: 'string', valueName: 'MODE', choices: PROXY_MODE_NAMES, description: 'the mode the node runs now (default: the --config file\'s mode)' },
    { name: 'to', type: 'string', valueName: 'MODE', choices: PROXY_MODE_NAMES, description: 'the mode to move to' },
    CONFIG_OPTION,
    ...NODE_OPTIONS,
    JSON_OPTION,
  ],
  examples: [
    'svcplane compare --cluster cluster.json --from ipvs --to nftables --node-name node-a --node-ip 192.168.0.2 --pod-cidr 10.244.0.0/16 --service-cidr 172.30.0.0/16',
  ],
  async run({ options: v, io, command, given }) {
    const config = await applyConfigFile(v, given, compareCommand.options, io, command)
    // Without --from, the mode a --config file names is the one the node runs now.
    const from = (v.from ?? config?.proxier.mode) as ProxyMode | undefined
    const to = v.to as ProxyMode | undefined
    if (from === undefined || to === undefined) throw new UsageError('--from and --to are required (two of ' + PROXY_MODE_NAMES.join(', ') + ')', command)
    const { mode: _mode, ...shared } = proxierOptionsFrom(v, from, command)
    const dump = await requireCluster(v, io, command)
    let comparison
    try {
      comparison = compareModes(dump.items, { from, to, proxier: shared })
    } catch (err) {
      throw new CliError(`cannot compare ${from} with ${to} on ${dump.file}`, { cause: err })
    }
    if (v.json) io.stdout.write(JSON.stringify(comparison, null, 2) + '\n')
    else io.stdout.write(formatComparison(comparison))
    return comparison.differences.length === 0 ? 0 : 1
  },
}
