// svcplane proxy: a userspace service proxy (lib/service-proxy) that really forwards TCP and
// UDP for the Services of a dump file, re-read when the file changes.
import * as path from 'node:path'
import { runProxyFromFile } from '../../service-proxy/run-from-file.js'
import { loadClusterFiles, printNotices } from '../cluster-file.js'
import { CliError, describeError } from '../errors.js'
import { logger } from '../log.js'
import { CLUSTER_OPTION, MAX_INPUT_OPTION, JSON_OPTION, NODE_OPTIONS, proxyModeOptions, proxierOptionsFrom, requireCluster, requireMode, selectedMode } from '../node-options.js'
import type { Command } from '../registry.js'

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'forward TCP and UDP to the endpoints of the Services in a dump file (a userspace kube-proxy), reloading it on change',
  description:
    'Listens on cluster IPs and NodePorts (and external / load-balancer IPs local to this host) and forwards each new connection or UDP flow where the Proxier decides. ' +
    'The --cluster files (JSON or YAML, like every command; several are merged) are re-read when one changes; input that does not parse changes nothing. ' +
    '"-" reads stdin once (nothing to watch). Stops on SIGINT / SIGTERM, letting open connections drain.',
  options: [
    CLUSTER_OPTION,
    MAX_INPUT_OPTION,
    ...proxyModeOptions(),
    ...NODE_OPTIONS,
    { name: 'watch', type: 'boolean', default: true, description: 're-read the file when it changes (--no-watch: read it once)' },
    { name: 'connect-timeout', type: 'duration', valueName: 'DURATION', default: 5, description: 'connect timeout towards an endpoint' },
    { name: 'udp-idle-timeout', type: 'duration', valueName: 'DURATION', default: 30, description: 'a UDP flow idle this long is closed' },
    { name: 'drain', type: 'duration', valueName: 'DURATION', default: 5, description: 'on stop, how long open TCP connections may finish' },
    { ...JSON_OPTION, description: 'log lines as JSON' },
  ],
  examples: ['svcplane proxy --cluster cluster.json --node-ip 192.168.0.2 --pod-cidr 10.244.0.0/16'],
  async run({ options: v, io, command }) {
    const log = logger(io, v.json === true)
    const mode = selectedMode(v) as 'native' | 'iptables'
    requireMode(mode)
    const { mode: _m, ...node } = proxierOptionsFrom(v, mode, command)
    const first = await requireCluster(v, io, command) // a clear error for a missing or invalid file first
    const files = first.files
    const maxBytes = v['max-input-bytes'] as number | undefined
    let pending: unknown[] | undefined = first.items
    // The first load is the one just checked (stdin can be read once); a reload reads the files again.
    const load = async () => {
      if (pending !== undefined) {
        const items = pending
        pending = undefined
        return items
      }
      const dump = await loadClusterFiles(files, io, { maxBytes })
      printNotices(io, command, dump.notices)
      return dump.items
    }
    const watch = v.watch === true && !files.includes('-')
    let running
    try {
      running = await runProxyFromFile(files.map((f) => path.resolve(io.cwd, f)), {
        ...node,
        mode,
        load,
        watch,
        connectTimeoutMs: (v['connect-timeout'] as number) * 1000,
        udpIdleTimeoutMs: (v['udp-idle-timeout'] as number) * 1000,
        onError: (err, context) => log.warn(`${context}: ${err.message}`),
        onReload: (r) => {
          if (r.ok) log.info(`loaded ${first.file}: ${r.services} Services, ${r.endpointSlices} EndpointSlices${r.deleted ? `, ${r.deleted} deleted` : ''}${r.sync ? `; listeners +${r.sync.listenersOpened} -${r.sync.listenersClosed}${r.sync.listenersFailed ? `, ${r.sync.listenersFailed} failed` : ''}` : ''}`)
          else log.error(`reloading ${first.file} failed, keeping the previous state: ${describeError(r.error)}`)
        },
      })
    } catch (err) {
      throw new CliError(`cannot start the proxy from ${first.file}`, { cause: err })
    }
    for (const l of running.proxy.listeners()) if (l.state === 'failed') log.warn(`cannot listen on ${l.protocol} ${l.address}:${l.port} (${l.servicePort})${'error' in l && l.error ? `: ${String(l.error)}` : ''}`)
    log.info(`proxying ${running.proxy.listeners().filter((l) => l.state === 'listening').length} frontends`)
    await new Promise<void>((resolve) => (io.signal.aborted ? resolve() : io.signal.addEventListener('abort', () => resolve(), { once: true })))
    log.info('stopping')
    await running.close({ drainMs: (v.drain as number) * 1000 })
  },
}
