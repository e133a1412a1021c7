// svcplane pcap: a packet capture through the dataplane's packet path (lib/pcap's runPcap).
import * as path from 'node:path'
import { PcapFileError, runPcap } from '../../pcap/run-pcap.js'
import { CliError, UsageError } from '../errors.js'
import { CLUSTER_OPTION, MAX_INPUT_OPTION, JSON_OPTION, NODE_OPTIONS, proxierFromCluster } from '../node-options.js'
import type { Command } from '../registry.js'

export const pcapCommand: Command = {
  name: 'pcap',
  summary: 'send a packet capture through the native dataplane and write the translated packets',
  description:
    'Programs the cluster dump like kube-proxy on the given node (native mode), then decides every packet of --in (pcap or pcapng, Ethernet or raw IP): ' +
    'new flows to services are balanced and NATed, replies reverse-translated, others pass; dropped packets are left out and a rejected one is replaced by its REJECT reply. ' +
    'Time is the capture\'s own.',
  options: [
    { name: 'in', type: 'string', valueName: 'FILE', description: 'input capture (pcap or pcapng)' },
    { name: 'out', type: 'string', valueName: 'FILE', description: 'output capture (classic pcap)' },
    { name: 'batch-size', type: 'integer', valueName: 'N', default: 256, description: 'packets per dataplane call' },
    { name: 'start', type: 'number', valueName: 'SECONDS', default: 1, description: 'virtual time of the first packet' },
    { name: 'replies', type: 'boolean', default: true, description: 'write the reply a rejected packet gets (--no-replies: leave it out)' },
    CLUSTER_OPTION,
    MAX_INPUT_OPTION,
    ...NODE_OPTIONS,
    { ...JSON_OPTION, description: 'print the summary as JSON' },
  ],
  examples: ['svcplane pcap --cluster cluster.json --node-ip 192.168.0.2 --pod-cidr 10.244.0.0/16 --in client.pcap --out translated.pcap'],
  async run({ options: v, io, command }) {
    if (v.in === undefined) throw new UsageError('--in FILE is required', command)
    if (v.out === undefined) throw new UsageError('--out FILE is required', command)
    const { proxier } = await proxierFromCluster(v, io, command, 'native')
    let summary
    try {
      summary = runPcap({
        proxier,
        in: path.resolve(io.cwd, v.in as string),
        out: path.resolve(io.cwd, v.out as string),
        batchSize: v['batch-size'] as number,
        start: v.start as number,
        replies: v.replies as boolean,
        maxInputBytes: v['max-input-bytes'] as number,
      })
    } catch (err) {
      // Name the file as the user wrote it, and say which one is wrong.
      if (err instanceof PcapFileError) {
        const given = err.role === 'in' ? (v.in as string) : (v.out as string)
        const hint = (err.cause as { code?: unknown } | undefined)?.code === 'TOO_LARGE' ? '; --max-input-bytes raises it' : ''
        throw new CliError(`${err.message.split(err.file).join(given)}${hint}`)
      }
      throw new CliError(`cannot process ${v.in as string}`, { cause: err })
    } finally {
      proxier.dataplane?.destroy()
    }
    const { output: _output, ...data } = summary
    if (v.json) {
      io.stdout.write(JSON.stringify(data, null, 2) + '\n')
      return
    }
    const nonzero = (r: Record<string, number | undefined>) => Object.entries(r).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
    io.stdout.write(
      `${data.packets} packets (${data.format}, link type ${data.linkType}) -> ${data.written} written to ${v.out as string} (${data.replies} reject replies)\n` +
        `verdicts: ${nonzero(data.verdicts)}\nreasons: ${nonzero(data.reasons)}\n`,
    )
  },
}
