// A Deployment's rolling update on a real node, in every mode a node can run: svcplane run
// --apply follows the cluster file while a client keeps making requests to the ClusterIP, and
// the endpoints of Service web are replaced one by one as a rolling update with maxSurge 1,
// maxUnavailable 0 does it (new pod started and ready; old pod terminating, its server stopping
// gracefully once the rules no longer send it new connections; old pod removed). No request
// may fail, and after the update only the new pods answer. Needs root (skipped with a message
// otherwise); namespaces client, node, pod1..pod4 are this test's own and deleted afterwards;
// the client is bounded in count and time.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { EP } from '../fixtures/objects'
import { ADDR, errorsOf, parseClient, podOf, type Child, type PodName, type Topology } from './topology'
import { clusterObjects, runArgs, VIP, writeCluster } from './cluster'
import { withTopology } from './scenarios'

interface RollingMode {
  /** --proxy-mode */
  mode: string
  extra: string[]
  /** The log line of an apply that follows a change of the cluster file. */
  applied: RegExp
}

/** One row per mode a node runs (native only where /dev/net/tun exists, as apply-native.test.ts). */
const MODES: Record<string, RollingMode> = {
  iptables: { mode: 'iptables', extra: [], applied: /applied partial/ },
  nftables: { mode: 'nftables', extra: [], applied: /applied partial/ },
  userspace: { mode: 'userspace', extra: ['--proxy-port-range', '36100-36199'], applied: /applied/ },
  ...(existsSync('/dev/net/tun') ? { native: { mode: 'native', extra: [], applied: /applied partial/ } } : {}),
}

const ready = (pod: PodName): EP => ({ ip: ADDR[pod], ready: true })
const terminating = (pod: PodName): EP => ({ ip: ADDR[pod], ready: false, serving: true, terminating: true })

/** pod1 and pod2 serve, pod3 and pod4 do not: where every row starts. */
async function oldPodsOnly(topo: Topology): Promise<void> {
  for (const pod of ['pod3', 'pod4'] as const) await topo.backends.get(pod)?.stop()
  for (const pod of ['pod1', 'pod2'] as const) {
    const server = topo.backends.get(pod)
    if (server === undefined || server.exited !== undefined) await topo.startBackends([pod])
  }
}

withTopology('usnode-ru', (topo, dir) => {
  // ROLLING_MODES=userspace picks some while working on one.
  for (const name of (process.env.ROLLING_MODES ?? Object.keys(MODES).join(',')).split(',')) {
    const row = MODES[name]!
    t.test(`${name}: a rolling update loses no request`, async (t) => {
      await oldPodsOnly(topo)
      const file = join(dir, `${name}.json`)
      writeCluster(file, clusterObjects([ready('pod1'), ready('pod2')]))
      const run: Child = topo.spawn('node', process.execPath, runArgs(file, row.mode, row.extra))
      t.teardown(async () => {
        await run.stop()
        topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup'])
      })
      await run.waitFor(/applied full/, 60_000)
      const sync = async (endpoints: EP[]) => {
        const from = run.lines.length
        writeCluster(file, clusterObjects(endpoints))
        await run.waitFor(row.applied, 30_000, from)
      }

      const client = topo.clientProcess('tcp', VIP.web, 80, 5000, 2000, 5)
      t.teardown(() => client.stop())
      await client.waitFor(/"i":19,/, 30_000)
      const steps: Array<[old: PodName, next: PodName, kept: PodName]> = [['pod1', 'pod3', 'pod2'], ['pod2', 'pod4', 'pod3']]
      for (const [old, next, kept] of steps) {
        await topo.startBackends([next])
        await sync([ready(old), ready(kept), ready(next)])
        await sync([terminating(old), ready(kept), ready(next)])
        // No new connection goes to the old pod now; it finishes the ones it has and exits.
        await topo.backends.get(old)!.stop()
        await sync([ready(kept), ready(next)])
      }
      const doneAt = Date.now()
      // Some more requests after the update, then the client stops (only whole lines count).
      await client.waitFor(/^\{/, 60_000, client.lines.length + 40)
      await client.stop()
      const rs = parseClient(client)
      t.ok(rs.length > 60, `${rs.length} requests`)
      t.same(errorsOf(rs), [], 'no request failed')
      t.same(new Set(rs.map(podOf)), new Set(['pod1', 'pod2', 'pod3', 'pod4']), 'old and new pods served')
      const after = rs.filter((r) => r.start > doneAt)
      t.same(new Set(after.map(podOf)), new Set(['pod3', 'pod4']), 'after the update: the new pods only')
    })
  }
}, ['pod1', 'pod2', 'pod3', 'pod4'])
