// svcplane run: models kube-proxy for this node. Watches the cluster's Services and
// EndpointSlices (or loads a dump with --cluster), programs the Proxier with kube-proxy's sync
// timing, and serves kube-proxy's metrics, /healthz, /livez and the health check node ports.
// Without --apply it forwards no traffic: it observes and models what kube-proxy would do. With
// --apply (iptables and nftables modes) it writes the mode's rules to this node after every sync,
// as kube-proxy does; in userspace mode it also opens the proxy sockets and forwards through
// them; --cleanup removes what any mode left.
import { watchFile, unwatchFile } from 'node:fs'
import type { SyncSummary } from '../../proxy/proxier.js'
import { ProxierHealth } from '../../metrics/health.js'
import { formatAddress, parseBindAddress } from '../../metrics/http.js'
import { ProxyMetrics } from '../../metrics/registry.js'
import { startHealthzServer, startMetricsServer, type RunningServer } from '../../metrics/servers.js'
import { ServiceHealthServers } from '../../metrics/service-health.js'
import { ClusterWatcher, type ObjectEvent } from '../../watch/informers.js'
import { objectKey } from '../../k8s/object-key.js'
import { APPLIABLE_MODES, cleanupNode, IPTABLES_BACKENDS, NodeApplier, type IptablesBackend } from '../../node/index.js'
import type { ClusterDump } from '../cluster-file.js'
import type { ProxyMode } from '../../modes/index.js'
import { conflictMessage } from '../../k8s/address-conflicts.js'
import { parseService, type ValidService } from '../../k8s/service.js'
import { loadKubeConfig } from '../../watch/kubeconfig.js'
import { ProxierSyncLoop, type SyncHooks, type SyncInfo } from '../../watch/sync-loop.js'
import { CliError, describeError, UsageError } from '../errors.js'
import { logger } from '../log.js'
import { applyConfigFile, CLUSTER_OPTION, CONFIG_OPTION, MAX_INPUT_OPTION, clusterFiles, JSON_OPTION, newProxier, NODE_OPTIONS, proxierOptionsFrom, proxyModeOptions, readCluster, selectedMode } from '../node-options.js'
import type { Command } from '../registry.js'
import { DUMP_FORMATS, DUMP_PATH, renderDump, type DumpFormat } from './dump.js'

function changes(s: SyncSummary): string {
  const c = (x: { added: number; changed: number; removed: number }) => `+${x.added} ~${x.changed} -${x.removed}`
  return `service ports ${c(s.servicePorts)}, endpoints ${c(s.endpoints)}`
}

function combine(...hooks: SyncHooks[]): SyncHooks {
  const out: SyncHooks = {}
  for (const key of ['onQueued', 'onServiceChange', 'onEndpointSliceChange', 'onSynced', 'onInvalid', 'onSyncError'] as const) {
    const fns = hooks.map((h) => h[key]).filter((f) => f !== undefined) as ((...a: unknown[]) => void)[]
    if (fns.length) (out as Record<string, unknown>)[key] = (...a: unknown[]) => fns.forEach((f) => f(...a))
  }
  return out
}

const nsPer = (ms: number, n: number) => (n > 0 ? ((ms * 1e6) / n).toFixed(0) : '0')

/** How often --cluster files are checked for changes (--apply follows them). */
const CLUSTER_POLL_MS = 250

/** Watch events that turn the objects of `before` into those of `after` (deletions first). */
function dumpEvents(before: ClusterDump | undefined, after: ClusterDump): Array<[kind: 'Service' | 'EndpointSlice', ObjectEvent, unknown]> {
  const out: Array<['Service' | 'EndpointSlice', ObjectEvent, unknown]> = []
  for (const [kind, list] of [['Service', 'services'], ['EndpointSlice', 'endpointSlices']] as const) {
    const now = new Set(after[list].map((o) => objectKey(kind, o).key))
    for (const o of before?.[list] ?? []) if (!now.has(objectKey(kind, o).key)) out.push([kind, 'delete', o])
  }
  for (const s of after.services) out.push(['Service', before ? 'update' : 'add', s])
  for (const s of after.endpointSlices) out.push(['EndpointSlice', before ? 'update' : 'add', s])
  return out
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }))
}

export const runCommand: Command = {
  name: 'run',
  summary: 'kube-proxy for this node: watch the cluster, sync with kube-proxy\'s timing, serve its metrics and health checks; --apply writes the rules to the node',
  description:
    'Without --apply it models and observes: the Proxier is programmed exactly as kube-proxy would be, but it forwards no traffic, so it does not replace kube-proxy on a node ' +
    '(`svcplane proxy` forwards in userspace). ' +
    'With --apply (modes iptables, nftables, userspace and native, needs root) every sync is written to this node as kube-proxy writes it: iptables-restore (full first, --noflush partial after) ' +
    'with the jumps from the built-in chains, or nft -f; forwarding and route_localnet are set in this network namespace; a restart takes over what a previous run left; ' +
    'a --cluster file is then followed (re-read when it changes). With --apply in native mode the kernel does no Service NAT: Service packets are routed into a TUN device ' +
    '(svcp0) and rewritten by the native dataplane in batches (docs/node.md); a stop hands the persistent device and the flows (--state-file) to the next run, so established connections survive a restart. ' +
    'In userspace mode --apply opens one proxy socket per service port (on --proxy-port-range, else kernel-picked ports) that forwards to the endpoints, ' +
    'writes kube-proxy\'s userspace portal rules (KUBE-PORTALS-CONTAINER/-HOST, KUBE-NODEPORT-CONTAINER/-HOST) and, on stop, removes them and closes the sockets. ' +
    '--cleanup removes everything any mode installed and exits. ' +
    'The cluster is --kubeconfig PATH, else the in-cluster service account when running in a pod, else $KUBECONFIG or ~/.kube/config; ' +
    '--cluster FILE runs offline from a dump instead. Services and EndpointSlices are listed and watched (bookmarks, reconnects with backoff, relist on 410 Gone); ' +
    'changes are batched by --min-sync-period and a full sync runs every --sync-period. ' +
    'A bind address of "" or "0" disables that server; port 0 picks a free port. Stops on SIGINT / SIGTERM.',
  options: [
    { name: 'kubeconfig', type: 'string', valueName: 'PATH', description: 'kubeconfig file of the cluster to watch' },
    { name: 'context', type: 'string', valueName: 'NAME', description: 'kubeconfig context to use instead of the current one' },
    CLUSTER_OPTION,
    MAX_INPUT_OPTION,
    CONFIG_OPTION,
    ...proxyModeOptions(),
    ...NODE_OPTIONS,
    { name: 'min-sync-period', type: 'duration', valueName: 'DURATION', default: 1, description: 'minimum time between syncs; changes within it are batched' },
    { name: 'sync-period', type: 'duration', valueName: 'DURATION', default: 30, description: 'maximum time between syncs (a full resync)' },
    { name: 'metrics-bind-address', type: 'string', valueName: 'IP:PORT', default: '127.0.0.1:10249', description: 'serve /metrics (and /healthz, /proxyMode, /configz, dumps) here' },
    { name: 'healthz-bind-address', type: 'string', valueName: 'IP:PORT', default: '127.0.0.1:10256', description: 'serve kube-proxy\'s /healthz and /livez here' },
    { name: 'health-check-bind-address', type: 'list', valueName: 'IP', description: 'addresses of the health check node port servers (default: every address with --apply, as kube-proxy; loopback otherwise, because a node that forwards nothing must not tell a load balancer it is healthy)' },
    { name: 'apply', type: 'boolean', description: 'write the mode\'s rules to this node after every sync (iptables, nftables, userspace modes; native: move the packets through a TUN device; root)' },
    { name: 'proxy-port-range', type: 'string', valueName: 'FIRST-LAST', description: 'userspace mode with --apply: the ports its proxy sockets take ("first-last" or "first+count"; kube-proxy\'s flag; default: kernel-picked)' },
    { name: 'cleanup', type: 'boolean', description: 'remove every iptables chain and jump and nft table any mode installed on this node (and native mode\'s policy rules), then exit (kube-proxy --cleanup)' },
    { name: 'state-file', type: 'string', valueName: 'PATH', description: 'native mode with --apply: where a stop (SIGTERM/SIGINT) leaves the flows for the next run to take over, written atomically (default /run/svcplane/native-flows.bin); --cleanup deletes it' },
    { name: 'iptables-backend', type: 'string', valueName: 'NAME', choices: IPTABLES_BACKENDS, default: 'iptables', description: 'with --apply in iptables mode: the iptables binaries (iptables picks the distribution\'s backend)' },
    { name: 'label-selector', type: 'string', hidden: true, description: 'override the label selector of the watches' },
    { name: 'once', type: 'boolean', description: 'list, sync once, print the summary and exit' },
    { ...JSON_OPTION, description: 'with --once, print the summary as JSON; otherwise log lines as JSON' },
  ],
  examples: [
    'svcplane run --kubeconfig ~/.kube/config --node-name node-a --node-ip 192.168.0.2 --pod-cidr 10.244.0.0/16',
    'svcplane run --cluster cluster.json --node-ip 192.168.0.2 --metrics-bind-address 127.0.0.1:0',
    'svcplane run --kubeconfig kc.yaml --node-ip 192.168.0.2 --once --json',
    'svcplane run --cluster cluster.json --mode nftables --node-ip 192.168.0.2 --pod-cidr 10.244.0.0/16 --apply',
    'svcplane run --cluster cluster.json --proxy-mode userspace --node-ip 192.168.0.2 --proxy-port-range 36000-36999 --apply',
    'svcplane run --cleanup',
  ],
  async run({ options: v, io, command, given }) {
    await applyConfigFile(v, given, runCommand.options, io, command)
    const json = v.json === true
    const once = v.once === true
    const log = logger(io, json && !once)
    if (v.cleanup === true) {
      const report = await cleanupNode({ stateFile: v['state-file'] as string | undefined }).catch((err: Error) => {
        throw new CliError(`cleanup failed: ${err.message}`, { cause: err })
      })
      if (json) io.stdout.write(JSON.stringify(report, null, 2) + '\n')
      else io.stdout.write(report.removed.length === 0 ? 'nothing to clean up\n' : report.removed.map((r) => `removed ${r}\n`).join(''))
      return 0
    }
    const apply = v.apply === true
    const files = clusterFiles(v)
    if (files !== undefined && (v.kubeconfig !== undefined || v.context !== undefined)) throw new UsageError('--cluster and --kubeconfig/--context are exclusive', command)
    const minSyncPeriod = v['min-sync-period'] as number
    const syncPeriod = v['sync-period'] as number
    if (syncPeriod <= 0) throw new UsageError('--sync-period must be greater than 0', command)
    if (minSyncPeriod > syncPeriod) throw new UsageError('--min-sync-period must not exceed --sync-period', command)
    let metricsAddr, healthzAddr
    try {
      metricsAddr = parseBindAddress(v['metrics-bind-address'] as string, 10249, '--metrics-bind-address')
      healthzAddr = parseBindAddress(v['healthz-bind-address'] as string, 10256, '--healthz-bind-address')
    } catch (err) {
      throw new UsageError((err as Error).message, command)
    }

    const mode = selectedMode(v) as ProxyMode
    if (apply && !(APPLIABLE_MODES as readonly string[]).includes(mode)) throw new UsageError(`--apply: mode ${mode} cannot be applied to a node yet (${APPLIABLE_MODES.join(', ')} can)`, command)
    const proxierOptions = proxierOptionsFrom(v, mode, command)
    // Userspace on a node: the Proxier opens its proxy sockets, the applier points the portal rules at them.
    if (mode === 'userspace' && apply) proxierOptions.userspace = { listen: true, ...(v['proxy-port-range'] !== undefined ? { portRange: v['proxy-port-range'] as string } : {}) }
    else if (v['proxy-port-range'] !== undefined) throw new UsageError('--proxy-port-range is for --proxy-mode userspace with --apply', command)
    const proxier = newProxier(proxierOptions)
    const signal = io.signal
    // The node side: probed and sysctls set before the first sync, so its text uses what it found.
    let applier: NodeApplier | undefined
    if (apply) {
      applier = await NodeApplier.create(proxier, {
        iptablesBackend: v['iptables-backend'] as IptablesBackend,
        onApplied: (a) => log.info(`applied ${a.full ? 'full' : 'partial'} ${a.mode} rules (${a.bytes} bytes) in ${a.durationMs.toFixed(1)} ms`),
        onError: (err) => log.error(`applying the rules failed (the node keeps its previous rules; the next apply is full): ${err.message}`),
        onPacketError: (err) => log.error(`native packet pump: ${err.message}`),
        stateFile: v['state-file'] as string | undefined,
        onTakeover: (i) => log.info(`native: took over the previous run's device and ${i.imported} flows (${i.dropped} dropped: service or endpoint gone) after a ${i.gapMs.toFixed(0)} ms gap`),
      }).catch((err: Error) => {
        throw new CliError(`--apply: ${err.message}`, { cause: err })
      })
      const f = applier.probed()
      if (f) log.info(`${f.version}: --random-fully ${f.randomFully ? 'supported' : 'not supported'}, nfacct ${f.nfacct ? 'available' : 'not available'}`)
    }
    const defaultHealthAddresses = apply ? [proxier.options.node.families.includes('IPv6') ? '::' : '0.0.0.0'] : ['127.0.0.1']

    // Where objects come from.
    let watcher: ClusterWatcher | undefined
    let source: string
    let firstError: Error | undefined
    const cleanup: (() => Promise<void> | void)[] = []
    let metrics: ProxyMetrics | undefined = undefined
    const health = new ProxierHealth(2 * syncPeriod * 1000)
    const hcServers = new ServiceHealthServers({
      addresses: (v['health-check-bind-address'] as string[] | undefined) ?? defaultHealthAddresses,
      proxyHealthy: () => health.healthy,
      onError: (service, err) => log.error(`health check server of ${service}: ${err.message}`),
    })
    cleanup.push(() => hcServers.close())

    // The Services as last seen, to name both sides of an address clash (the dataplane gives ids).
    const seen = new Map<string, ValidService>()
    const remember = (event: ObjectEvent, obj: unknown) => {
      try {
        const svc = parseService(obj)
        if (event === 'delete') seen.delete(svc.key)
        else seen.set(svc.key, svc)
      } catch {
        // Invalid objects are reported by the sync loop.
      }
    }
    const ownHooks: SyncHooks = {
      onQueued: () => health.queuedUpdate(),
      onSynced: (summary: SyncSummary, info: SyncInfo) => {
        if (summary.errors.length === 0) health.updated()
        for (const e of summary.errors) log.error(`programming ${e.service} failed (retried at the next sync): ${conflictMessage(e.service, [...seen.values()]) ?? describeError(e.error)}`)
        const changed = summary.servicePorts.added + summary.servicePorts.changed + summary.servicePorts.removed + summary.endpoints.added + summary.endpoints.changed + summary.endpoints.removed
        if (changed > 0 || info.trigger === 'initial') log.info(`sync (${info.trigger}): ${changes(summary)} in ${summary.durationMs.toFixed(1)} ms`)
        void hcServers.sync(proxier.healthChecks())
        applier?.synced(info.trigger)
      },
      onInvalid: (kind, key, err) => log.warn(`ignoring invalid ${kind} ${key}: ${err.message}`),
      onSyncError: (err) => log.error(`sync failed: ${describeError(err)}`),
    }
    const loopHooks: SyncHooks[] = [ownHooks]
    const loop = new ProxierSyncLoop(proxier, { minSyncPeriod, syncPeriod, hooks: combine(...loopHooks, { onQueued: (t) => metrics?.queued(t), onServiceChange: () => metrics?.serviceChanged(), onEndpointSliceChange: () => metrics?.endpointSliceChanged(), onSynced: (s, i) => metrics?.synced(s, i) }) })
    cleanup.push(() => loop.stop())

    metrics = new ProxyMetrics(proxier, {
      watchStats: files === undefined ? () => watcher?.stats() ?? ({} as ReturnType<ClusterWatcher['stats']>) : undefined,
      defaultMetrics: !once,
    })
    metrics.setPendingSource(() => loop.pending)

    try {
      if (files !== undefined) {
        let dump = await readCluster(files, v, io, command)
        source = `cluster file ${dump.file}`
        const feed = (before: ClusterDump | undefined, after: ClusterDump) => {
          for (const [kind, event, obj] of dumpEvents(before, after)) {
            if (kind === 'Service') {
              remember(event, obj)
              loop.serviceEvent(event, obj)
            } else loop.endpointSliceEvent(event, obj)
          }
        }
        feed(undefined, dump)
        // A node that applies follows its cluster file, as it would follow the API server.
        if (apply && !once && !files.includes('-')) {
          let reading = false
          const reread = () => {
            if (reading) return
            reading = true
            readCluster(files, v, io, command)
              .then((next) => {
                feed(dump, next)
                dump = next
                log.info(`re-read ${source}`)
              })
              .catch((err: Error) => log.warn(`keeping the last good ${source}: ${describeError(err)}`))
              .finally(() => (reading = false))
          }
          for (const f of files) watchFile(f, { interval: CLUSTER_POLL_MS }, (cur, prev) => cur.mtimeMs !== prev.mtimeMs && reread())
          cleanup.push(() => files.forEach((f) => unwatchFile(f)))
        }
      } else {
        const kc = await loadKubeConfig({ kubeconfig: v.kubeconfig as string | undefined, context: v.context as string | undefined, env: io.env }).catch((err: Error) => {
          throw new CliError(err.message)
        })
        source = `${kc.server} (${kc.source})`
        watcher = new ClusterWatcher(kc.kc, {
          onService: (e, o) => (remember(e, o), loop.serviceEvent(e, o)),
          onEndpointSlice: (e, o) => loop.endpointSliceEvent(e, o),
          onError: (resource, err, retryInMs) => {
            firstError ??= err
            if (!once) log.warn(`${resource}: ${err.message}; retrying in ${(retryInMs / 1000).toFixed(1)} s`)
          },
        }, { labelSelector: v['label-selector'] as string | undefined })
        const w = watcher
        cleanup.push(() => w.stop())
      }

      const m = metrics

      if (watcher !== undefined) {
        await watcher.start()
        if (once) {
          // Fail fast: the first list error ends --once.
          const synced = await Promise.race([
            watcher.waitForSync(signal),
            new Promise<false>((resolve) => {
              const t = setInterval(() => firstError && (clearInterval(t), resolve(false)), 20)
              signal.addEventListener('abort', () => (clearInterval(t), resolve(false)), { once: true })
              void watcher!.waitForSync().then(() => clearInterval(t))
            }),
          ])
          if (!synced) throw new CliError(`cannot list Services and EndpointSlices from ${source}`, { cause: firstError })
        } else {
          log.info(`watching Services and EndpointSlices of ${source}`)
          if (!(await watcher.waitForSync(signal))) return 0
        }
      }
      const initial = loop.sync('initial')
      if (once && applier) {
        await applier.idle()
        if (applier.lastError) throw new CliError(`--apply: ${applier.lastError.message}`, { cause: applier.lastError })
      }
      if (once) {
        const result = { source, mode, node: proxier.options.node, servicePorts: proxier.state.servicePorts().length, sync: initial, healthChecks: proxier.healthChecks() }
        if (json) io.stdout.write(JSON.stringify(result, (k, x) => (x instanceof Error ? x.message : x), 2) + '\n')
        else io.stdout.write(`${source}: ${result.servicePorts} service ports programmed in mode ${mode} on node ${proxier.options.node.name} (${initial ? changes(initial) : 'sync failed'})\n`)
        return initial && initial.errors.length === 0 ? 0 : 1
      }

      // Serve.
      const servers: RunningServer[] = []
      cleanup.push(() => Promise.all(servers.map((s) => s.close())).then(() => undefined))
      const config = { mode, nodeName: proxierOptions.nodeName, nodeIPs: proxierOptions.nodeIPs, podCIDRs: proxierOptions.podCIDRs, zone: proxierOptions.zone, scheduler: proxierOptions.native?.scheduler, minSyncPeriod, syncPeriod, source }
      if (metricsAddr) {
        const s = await startMetricsServer(metricsAddr, {
          metrics: m,
          mode,
          config,
          routes: {
            [DUMP_PATH]: (_req, res, url) => {
              const format = (url.searchParams.get('format') ?? 'json') as DumpFormat
              if (!DUMP_FORMATS.includes(format)) {
                res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`format must be one of ${DUMP_FORMATS.join(', ')}\n`)
                return
              }
              try {
                const d = renderDump(proxier, format, url.searchParams.has('json'))
                res.writeHead(200, { 'Content-Type': d.contentType, ...(d.count !== undefined ? { 'X-Flow-Count': String(d.count) } : {}) }).end(d.body)
              } catch (err) {
                res.writeHead(501, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${describeError(err)}\n`)
              }
            },
          },
        })
        servers.push(s)
        log.info(`serving metrics on ${s.url}/metrics (${formatAddress(s.address)})`)
      }
      if (healthzAddr) {
        const s = await startHealthzServer(healthzAddr, health, m)
        servers.push(s)
        log.info(`serving healthz on ${s.url}/healthz (${formatAddress(s.address)})`)
      }
      loop.start()
      if (!apply) log.info(`model only: nothing is forwarded or written to this node${mode === 'userspace' ? ' (no proxy sockets opened, no portal rules written; `svcplane dump --proxy-mode userspace` shows what they would be)' : ''}; --apply makes it forward`)
      log.info(`running in ${mode} mode as node ${proxier.options.node.name} (${proxier.options.node.ips.join(', ')}), min-sync-period ${minSyncPeriod}s, sync-period ${syncPeriod}s`)
      await untilAborted(signal)
      log.info('stopping')
      // What is being written lands; the rules stay (a restart takes them over, as kube-proxy's do),
      // and native mode hands its device and flows to the next run.
      const stopped = await applier?.stop({ handOff: true })
      if (stopped?.flowsHandedOff !== undefined) log.info(`native: ${stopped.flowsHandedOff} flows handed off in ${stopped.stateFile}; the TUN device, its rules and table stay for the next run (--cleanup removes them)`)
      return 0
    } finally {
      for (const c of cleanup.reverse()) {
        try {
          await c()
        } catch {
          // Shutting down: nothing more useful to do with it.
        }
      }
      const pump = applier?.native?.stats.pump
      if (pump) log.info(`native packet pump: ${pump.packets} packets in ${pump.batches} batches (${pump.written} written back, ${pump.errors} failed batches), ${nsPer(pump.busyMs, pump.packets)} ns/packet, ${nsPer(pump.processMs, pump.packets)} of them in processPackets`)
      // Stopped by an error instead of a signal: native mode's device, rules and table go before
      // the dataplane (after a handoff above, this does nothing).
      await applier?.stop({ handOff: false }).catch((err: Error) => log.error(`removing the native mode's device and rules failed: ${err.message}`))
      proxier.dataplane?.destroy()
    }
  },
}
