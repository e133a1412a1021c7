// svcplane run --proxy-mode native --apply on a real node: in network namespaces this test
// creates (client, node, two pods; see topology.ts), the kernel does no Service NAT. Packets to
// Services and their replies are routed into the TUN device svcp0 and rewritten by the native
// dataplane (processPackets) in batches. Real clients reach real servers: ClusterIP and
// NodePort over both pods, masqueraded when kube-proxy masquerades, UDP request/reply, an
// endpoint removed while a client keeps going, explain agreeing with the packet, no NAT rule in
// the kernel, a stop leaving the node to the next run, nothing left after a kill and --cleanup,
// or a cleanup run twice. Needs
// root (skipped with a message otherwise). Every loop is bounded in count and time; the
// namespaces are deleted in teardown and at exit.
import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR, errorsOf, parseClient, peerOf, podOf, Topology, type Child } from './topology'
import { clusterObjects, NODE_PORT, runArgs, VIP, writeCluster } from './cluster'
import { makeService, port } from '../fixtures/objects'
import { endpointRemovalLosesNothing, localNodePortKeepsClient, nativeInstalled as installed, reachesBothPods, serviceTrafficFlows } from './scenarios'

const EMPTY_VIP = '10.96.0.30'
const topo = existsSync('/dev/net/tun') ? Topology.create('tun') : { skip: 'no /dev/net/tun (load the tun module)' }


/** The TUN's packet counters (rx: written back by svcplane, tx: routed into it). */
function tunPackets(topo: Topology): { rx: number; tx: number } {
  const s = JSON.parse(topo.exec('node', 'ip', ['-j', '-s', 'link', 'show', 'dev', 'svcp0']))[0].stats64
  return { rx: s.rx.packets, tx: s.tx.packets }
}

if ('skip' in topo) {
  t.plan(0, `skipped: ${topo.skip}`)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'svcplane-tun-'))
  t.teardown(async () => {
    await topo.remove()
    rmSync(dir, { recursive: true, force: true })
  })

  t.before(async () => {
    await topo.startBackends()
  })

  t.test('native: svcplane run --apply moves the packets through processPackets', async (t) => {
    const file = join(dir, 'native.json')
    // Plus a Service without endpoints, which kube-proxy rejects.
    writeCluster(file, [...clusterObjects(), makeService('ns', 'empty', { clusterIP: EMPTY_VIP, ports: [port('http', 80, { targetPort: 8080 })] })])
    // --service-cidr: the node's own clients reach ClusterIPs too.
    const state = join(dir, 'flows.bin')
    const args = runArgs(file, 'native', ['--service-cidr', ADDR.serviceCIDR, '--state-file', state])
    let run: Child = topo.spawn('node', process.execPath, args)
    t.teardown(() => run.stop())
    await run.waitFor(/applied full native/, 60_000)
    t.equal(topo.exec('node', 'cat', ['/proc/sys/net/ipv4/ip_forward']).trim(), '1', 'forwarding set in the node namespace')
    const mine = installed(topo).join('\n')
    for (const what of [/^link svcp0$/m, /^rule 10:\s+from all fwmark 0x200000\/0x200000 lookup 21334$/m, /^rule 11:\s+from all lookup local$/m, /^route default dev svcp0 table 21334/m, /^table ip svcplane-native$/m,
      /^rule 10:\s+from all to 10\.96\.0\.0\/16 iif lo lookup 21334$/m])
      t.match(mine, what, `installed: ${what.source}`)
    t.notMatch(topo.exec('node', 'ip', ['-4', 'rule', 'show']), /^0:/m, 'the local rule left preference 0')

    t.test('ClusterIP and NodePort reach both pods, masqueraded (the client is outside the pod CIDR), through the TUN', async (t) => {
      for (const [what, host, port] of [['ClusterIP', VIP.web, 80], ['NodePort', ADDR.nodeUplink, NODE_PORT.web]] as const) {
        const before = tunPackets(topo)
        await reachesBothPods(t, topo, 'tcp', [[what, host, port]], ADDR.nodeBridge, 40)
        const after = tunPackets(topo)
        // Each request is at least SYN, SYN-ACK, ACK, request, reply and two FINs each way through the TUN.
        t.ok(after.tx - before.tx >= 40 * 6, `${what}: ${after.tx - before.tx} packets went into the TUN`)
        t.ok(after.rx - before.rx >= 40 * 6, `${what}: ${after.rx - before.rx} packets came back out of it`)
      }
    })

    t.test('a client on the node itself reaches the ClusterIP, masqueraded as kube-proxy does for node sources', async (t) => {
      const c = topo.clientProcess('tcp', VIP.web, 80, 20, 2000, 0, 'node')
      await c.done(60_000)
      const rs = parseClient(c)
      t.same(errorsOf(rs), [], 'every request answered')
      t.same(new Set(rs.map(podOf)), new Set(['pod1', 'pod2']), 'both endpoints reached')
      t.same(new Set(rs.map(peerOf)), new Set([ADDR.nodeBridge]), 'the pods see the node address towards them')
      const udp = topo.clientProcess('udp', VIP.web, 53, 10, 2000, 0, 'node')
      await udp.done(30_000)
      t.same(errorsOf(parseClient(udp)), [], 'UDP from the node too')
    })

    t.test('a Service without endpoints: the client is refused at once (ICMP port unreachable built by processPackets)', async (t) => {
      const rs = await topo.client('tcp', EMPTY_VIP, 80, 3, 2000)
      t.same(rs.map((r) => r.error), ['connect ECONNREFUSED 10.96.0.30:80', 'connect ECONNREFUSED 10.96.0.30:80', 'connect ECONNREFUSED 10.96.0.30:80'])
      t.ok(rs.every((r) => r.ms === undefined), 'no reply')
    })

    t.test('externalTrafficPolicy Local: NodePort to the local pod keeps the client address', (t) => localNodePortKeepsClient(t, topo))

    // TCP and UDP through ClusterIP and NodePort, ClientIP affinity, explain against the real requests.
    serviceTrafficFlows(t, topo, file, 'native', /"masquerade":true/)

    t.test('the kernel does no Service NAT: no KUBE chains, no kube-proxy table, no nat statement', async (t) => {
      const save = topo.exec('node', 'iptables-save', [])
      t.same(save.split('\n').filter((l) => /KUBE-|DNAT|SNAT|MASQUERADE/.test(l)), [], 'iptables-save: nothing of kube-proxy')
      const ruleset = topo.exec('node', 'nft', ['list', 'ruleset'])
      t.notMatch(ruleset, /kube-proxy/, 'no kube-proxy table')
      t.notMatch(ruleset, /\b(dnat|snat|masquerade|redirect)\b/, 'no NAT statement anywhere')
      t.match(ruleset, /table ip svcplane-native[\s\S]*10\.96\.0\.10 \. tcp \. 80/, 'only the marking table, with the frontends set')
    })

    t.test('an endpoint removed while a client keeps going: no request lost after the sync', (t) => endpointRemovalLosesNothing(t, topo, run, file, VIP.web, /applied partial/))

    t.test('a stop hands the node to the next run; a killed run leaves rules that --cleanup removes', async (t) => {
      const stopAt = Date.now()
      const code = await run.stop()
      t.equal(code, 0, `stopped cleanly in ${Date.now() - stopAt} ms ${run.stderr.slice(-600)}`)
      t.match(run.stderr, /native packet pump: \d+ packets in \d+ batches/, 'the pump reported its work')
      t.match(installed(topo).join('\n'), /rule 10:[\s\S]*svcplane-native[\s\S]*link svcp0/, 'a stop leaves rules, table and the persistent device (restart-native.test.ts)')
      t.ok(existsSync(state), 'and the flows in the state file')
      run = topo.spawn('node', process.execPath, args)
      await run.waitFor(/applied full native/, 60_000)
      const rs = await topo.client('tcp', VIP.web, 80, 10)
      t.same(errorsOf(rs), [], 'traffic flows after the restart')
      run.proc.kill('SIGKILL')
      await run.done(5_000)
      t.match(installed(topo).join('\n'), /rule 10:[\s\S]*svcplane-native/, 'a killed run leaves its rules and table')
      const first = topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup', '--state-file', state])
      t.match(first, /removed nft table ip svcplane-native/, `cleanup: ${first.trim()}`)
      t.same(installed(topo), [], 'nothing of svcplane left')
      t.match(topo.exec('node', 'ip', ['-4', 'rule', 'show']), /^0:\s+from all lookup local/m, 'the local rule is back at preference 0')
      t.match(topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup']), /nothing to clean up/, 'idempotent')
      const after = await topo.client('tcp', VIP.web, 80, 1, 500)
      t.match(after[0]?.error ?? '', /timeout|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/, 'the ClusterIP is gone')
    })
  })
}
