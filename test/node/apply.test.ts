// svcplane run --apply on a real node: in network namespaces this test creates (client, node,
// two pods; see topology.ts), svcplane runs inside the node namespace in iptables and nftables
// mode, and real clients reach real servers through the rules it wrote: ClusterIP and NodePort
// spread over both pods, masqueraded exactly when kube-proxy masquerades, UDP request/reply,
// affinity, an endpoint removed while a client keeps going, explain agreeing with the packet, a
// restart taking over, and --cleanup. Needs root (skipped with a message otherwise). Every
// loop is bounded in count and time; the namespaces are deleted in teardown and at exit.
import t from 'tap'
import { join } from 'node:path'
import { ADDR, errorsOf, installed, leftovers, parseClient, podOf, type Child } from './topology'
import { clusterObjects, NODE_PORT, runArgs, VIP, writeCluster } from './cluster'
import { endpointRemovalLosesNothing, serviceTrafficFlows, withTopology } from './scenarios'

withTopology('apply', (topo, dir) => {
  // iptables with the distribution's backend (nf_tables here), with iptables-legacy, and nftables.
  const variants: Record<string, { mode: 'iptables' | 'nftables'; extra: string[] }> = {
    iptables: { mode: 'iptables', extra: [] },
    'iptables-legacy': { mode: 'iptables', extra: ['--iptables-backend', 'iptables-legacy'] },
    nftables: { mode: 'nftables', extra: [] },
  }
  // APPLY_VARIANTS=nftables picks some while working on one.
  for (const name of (process.env.APPLY_VARIANTS ?? Object.keys(variants).join(',')).split(',')) {
    const { mode, extra } = variants[name]!
    if (name === 'iptables-legacy' && !installed('iptables-legacy-restore')) {
      t.test(name, { skip: 'iptables-legacy is not installed' }, async () => undefined)
      continue
    }
    t.test(`${name}: svcplane run --apply makes Service traffic flow`, async (t) => {
      const file = join(dir, `${name}.json`)
      writeCluster(file, clusterObjects())
      let run: Child = topo.spawn('node', process.execPath, runArgs(file, mode, extra))
      t.teardown(() => run.stop())
      await run.waitFor(/applied full/, 60_000)
      t.equal(topo.exec('node', 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), '1', 'forwarding set in the node namespace')

      serviceTrafficFlows(t, topo, file, mode, /"masquerade":true/)

      t.test('externalTrafficPolicy Local: NodePort to the local pod keeps the client address', async (t) => {
        const rs = await topo.client('tcp', ADDR.nodeUplink, NODE_PORT.local, 10)
        t.same(errorsOf(rs), [])
        t.same(new Set(rs.map((r) => r.reply)), new Set([`pod1 ${ADDR.client}`]), 'not masqueraded')
      })

      t.test('traffic from a pod to a ClusterIP is not masqueraded', async (t) => {
        const c = topo.clientProcess('tcp', VIP.single, 80, 5, 2000, 0, 'pod1')
        await c.done(20_000)
        const rs = parseClient(c)
        t.same(errorsOf(rs), [])
        t.same(new Set(rs.map((r) => r.reply)), new Set([`pod2 ${ADDR.pod1}`]))
      })

      t.test('an endpoint removed while a client keeps going: no request lost after the sync', (t) => endpointRemovalLosesNothing(t, topo, run, file, VIP.web, /applied partial/))

      t.test('a restart takes over the rules a previous run left; --cleanup removes them', async (t) => {
        t.equal(await run.stop(), 0, `stopped cleanly ${run.stderr.slice(-600)}`)
        t.not(leftovers(topo).length, 0, 'the rules stay after a stop')
        run = topo.spawn('node', process.execPath, runArgs(file, mode, extra))
        await run.waitFor(/applied full/, 60_000)
        const rs = await topo.client('tcp', VIP.web, 80, 20)
        t.same(errorsOf(rs), [], 'traffic flows after the restart')
        t.same(new Set(rs.map(podOf)), new Set(['pod1', 'pod2']))
        t.equal(await run.stop(), 0)
        const first = topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup'])
        t.match(first, /removed/, `cleanup: ${first.trim()}`)
        t.same(leftovers(topo), [], 'nothing of svcplane left')
        t.match(topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup']), /nothing to clean up/, 'idempotent')
        const after = await topo.client('tcp', VIP.web, 80, 1, 500)
        t.match(after[0]?.error ?? '', /timeout|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/, 'the ClusterIP is gone')
      })
    })
  }
})
