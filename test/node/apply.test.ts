// svcplane run --apply on a real node: in network namespaces this test creates (client, node,
// two pods; see topology.ts), svcplane runs inside the node namespace in iptables and nftables
// mode, and real clients reach real servers through the rules it wrote: ClusterIP and NodePort
// spread over both pods, masqueraded exactly when kube-proxy masquerades, UDP request/reply,
// affinity, an endpoint removed while a client keeps going, explain agreeing with the packet, a
// restart taking over, and --cleanup. Needs root (skipped with a message otherwise). Every
// loop is bounded in count and time; the namespaces are deleted in teardown and at exit.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR, parseClient, sh, Topology, type Child } from './topology'
import { clusterObjects, NODE_PORT, runArgs, VIP, writeCluster } from './cluster'
import { affinityKeepsOnePod, endpointRemoval, errorsOf, explainAgrees, localNodePortKeepsClient, podOf, reachesBothPodsMasqueraded, udpThroughServices } from './scenarios'

const topo = Topology.create('apply')


/** svcplane's own rules in the node namespace: iptables KUBE-* chains and the nft kube-proxy tables. */
function leftovers(topo: Topology): string[] {
  const out: string[] = []
  for (const save of ['iptables-nft-save', 'iptables-legacy-save'].filter(installed)) {
    const text = topo.exec('node', save, [])
    out.push(...text.split('\n').filter((l) => /^:KUBE-|-j KUBE-/.test(l)).map((l) => `${save}: ${l}`))
  }
  out.push(...topo.exec('node', 'nft', ['list', 'tables']).split('\n').filter((l) => l.includes('kube-proxy')))
  return out
}

function installed(cmd: string): boolean {
  return sh('sh', ['-c', `command -v ${cmd}`]).ok
}

if ('skip' in topo) {
  t.plan(0, `skipped: ${topo.skip}`)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'svcplane-apply-'))
  t.teardown(async () => {
    await topo.remove()
    rmSync(dir, { recursive: true, force: true })
  })

  t.before(async () => {
    await topo.startBackends()
  })

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

      t.test('ClusterIP and NodePort reach both pods, masqueraded (the client is outside the pod CIDR)', async (t) => {
        await reachesBothPodsMasqueraded(t, topo, 'ClusterIP', 'tcp', VIP.web, 80, 40)
        await reachesBothPodsMasqueraded(t, topo, 'NodePort', 'tcp', ADDR.nodeUplink, NODE_PORT.web, 40)
      })

      t.test('externalTrafficPolicy Local: NodePort to the local pod keeps the client address', (t) => localNodePortKeepsClient(t, topo))

      t.test('traffic from a pod to a ClusterIP is not masqueraded', async (t) => {
        const c = topo.clientProcess('tcp', VIP.single, 80, 5, 2000, 0, 'pod1')
        await c.done(20_000)
        const rs = parseClient(c)
        t.same(errorsOf(rs), [])
        t.same(new Set(rs.map((r) => r.reply)), new Set([`pod2 ${ADDR.pod1}`]))
      })

      t.test('UDP request/reply through the ClusterIP and the NodePort', (t) => udpThroughServices(t, topo))

      t.test('ClientIP affinity keeps the client on one pod', (t) => affinityKeepsOnePod(t, topo))

      t.test('explain names the endpoint the real packet reached', (t) => explainAgrees(t, topo, file, mode))

      t.test('an endpoint removed while a client keeps going: no request lost after the sync', (t) => endpointRemoval(t, topo, file, run))

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
}
