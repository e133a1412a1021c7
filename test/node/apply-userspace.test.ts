// svcplane run --proxy-mode userspace --apply on a real node: in network namespaces this test
// creates (client, node, two pods; see topology.ts), svcplane opens one proxy socket per
// service port on --proxy-port-range and writes kube-proxy's userspace portal rules
// (KUBE-PORTALS-CONTAINER REDIRECTs and KUBE-NODEPORT-CONTAINER ones); real clients reach real
// servers through the proxy: ClusterIP and NodePort TCP spread over both pods, which see the
// node's address (the proxy dials them itself), UDP request/reply, an endpoint removed while a
// client keeps going, explain agreeing with the packet; on stop the rules go and the sockets
// close; a restart without --proxy-port-range works on kernel-picked ports; --cleanup removes
// what a killed run left. Needs root (skipped with a message otherwise). Every loop is
// bounded in count and time; the namespaces are deleted afterwards.
import t from 'tap'
import { join } from 'node:path'
import { errorsOf, leftovers, type Child } from './topology'
import { clusterObjects, NODE_PORT, runArgs, VIP, writeCluster } from './cluster'
import { endpointRemovalLosesNothing, serviceTrafficFlows, withTopology } from './scenarios'

const PORT_RANGE = { first: 36000, last: 36099 }
const EXTRA = ['--proxy-port-range', `${PORT_RANGE.first}-${PORT_RANGE.last}`]

/** The proxy ports the portal rules send ServicePort `name` ("ns/svc:port") to, from iptables-save. */
function redirectPorts(save: string, name: string): number[] {
  const lines = save.split('\n').filter((l) => l.startsWith('-A KUBE-PORTALS-CONTAINER') && l.includes(`"${name}"`))
  return lines.map((l) => Number(/--to-ports (\d+)/.exec(l)?.[1]))
}

withTopology('usnode-us', (topo, dir) => {
  t.test('userspace: svcplane run --apply proxies Service traffic through its sockets', async (t) => {
    const file = join(dir, 'userspace.json')
    writeCluster(file, clusterObjects())
    let run: Child = topo.spawn('node', process.execPath, runArgs(file, 'userspace', EXTRA))
    t.teardown(() => run.stop())
    await run.waitFor(/applied full userspace rules/, 60_000)

    t.test('the portal rules REDIRECT to proxy ports in the range, and a socket listens on each', async (t) => {
      const save = topo.exec('node', 'iptables-save', ['-t', 'nat'])
      t.match(save, /-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER/)
      t.match(save, /-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST/)
      t.match(save, new RegExp(`-A KUBE-PORTALS-CONTAINER -d ${VIP.web}/32 -p tcp -m comment --comment "ns/web:http" -m tcp --dport 80 -j REDIRECT --to-ports \\d+`))
      t.match(save, new RegExp(`-A KUBE-NODEPORT-CONTAINER -p udp -m comment --comment "ns/web:dns" -m udp --dport ${NODE_PORT.webUdp} -j REDIRECT --to-ports \\d+`))
      const [tcp] = redirectPorts(save, 'ns/web:http')
      const [udp] = redirectPorts(save, 'ns/web:dns')
      for (const p of [tcp!, udp!]) t.ok(p >= PORT_RANGE.first && p <= PORT_RANGE.last, `proxy port ${p} in --proxy-port-range`)
      t.match(topo.exec('node', 'ss', ['-Hltn']), new RegExp(`0\\.0\\.0\\.0:${tcp}\\b`), `TCP socket on ${tcp}`)
      t.match(topo.exec('node', 'ss', ['-Hlun']), new RegExp(`0\\.0\\.0\\.0:${udp}\\b`), `UDP socket on ${udp}`)
    })

    serviceTrafficFlows(t, topo, file, 'userspace', /KUBE-PORTALS-CONTAINER/)

    // The portal rules do not change with endpoints: the proxy's round-robin does, at the sync.
    t.test('an endpoint removed while a client keeps going: no request lost after the sync', (t) => endpointRemovalLosesNothing(t, topo, run, file, VIP.web, /applied/))

    t.test('a stop removes the portal rules and closes the sockets; --cleanup removes what a killed run left', async (t) => {
      t.equal(await run.stop(), 0, `stopped cleanly ${run.stderr.slice(-600)}`)
      t.same(leftovers(topo), [], 'no portal rule left after a stop')
      t.notMatch(topo.exec('node', 'ss', ['-Hltn']), /:360\d\d\b/, 'no proxy socket left')
      // Without --proxy-port-range the kernel picks each socket's port; the rules follow it.
      run = topo.spawn('node', process.execPath, runArgs(file, 'userspace'))
      await run.waitFor(/applied full/, 60_000)
      const rs = await topo.client('tcp', VIP.web, 80, 10)
      t.same(errorsOf(rs), [], 'traffic flows after a restart, on kernel-picked proxy ports')
      run.proc.kill('SIGKILL')
      await run.done(5_000)
      t.not(leftovers(topo).length, 0, 'a killed run leaves its rules')
      const first = topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup'])
      t.match(first, /removed/, `cleanup: ${first.trim()}`)
      t.same(leftovers(topo), [], 'nothing of svcplane left')
      t.match(topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup']), /nothing to clean up/, 'idempotent')
    })
  })
})
