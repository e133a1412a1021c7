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
import { ADDR, errorsOf, installed, leftovers, parseClient, type Child } from './topology'
import { clusterObjects, NODE_PORT, runArgs, VIP, writeCluster } from './cluster'
import { endpointRemovalLosesNothing, serviceTrafficFlows, withTopology } from './scenarios'

const PORT_RANGE = { first: 36000, last: 36099 }
const EXTRA = ['--proxy-port-range', `${PORT_RANGE.first}-${PORT_RANGE.last}`]

/** The proxy ports the portal rules send ServicePort `name` ("ns/svc:port") to, from iptables-save. */
function redirectPorts(save: string, name: string): number[] {
  const lines = save.split('\n').filter((l) => l.startsWith('-A KUBE-PORTALS-CONTAINER') && l.includes(`"${name}"`))
  return lines.map((l) => Number(/--to-ports (\d+)/.exec(l)?.[1]))
}

/** The iptables binaries: the distribution's (nf_tables here), and iptables-legacy where installed. */
const BACKENDS: Record<string, { extra: string[]; save: string }> = {
  iptables: { extra: [], save: 'iptables-save' },
  'iptables-legacy': { extra: ['--iptables-backend', 'iptables-legacy'], save: 'iptables-legacy-save' },
}

withTopology('usnode-us', (topo, dir) => {
  for (const [backend, { extra, save: saveTool }] of Object.entries(BACKENDS)) {
    if (!installed(`${saveTool.replace('-save', '-restore')}`)) {
      t.test(backend, { skip: `${backend} is not installed` }, async () => undefined)
      continue
    }
    t.test(`userspace (${backend}): svcplane run --apply proxies Service traffic through its sockets`, async (t) => {
      const file = join(dir, `userspace-${backend}.json`)
      const args = [...EXTRA, ...extra]
      writeCluster(file, clusterObjects())
      let run: Child = topo.spawn('node', process.execPath, runArgs(file, 'userspace', args))
      t.teardown(() => run.stop())
      await run.waitFor(/applied full userspace rules/, 60_000)

      t.test('the portal rules REDIRECT to proxy ports in the range, and a socket listens on each', async (t) => {
        const save = topo.exec('node', saveTool, ['-t', 'nat'])
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

      t.test('from a pod and from the node itself (KUBE-PORTALS-HOST, KUBE-NODEPORT-HOST DNAT)', async (t) => {
        // A node's own connections need a route to the service CIDR before OUTPUT's DNAT (a real
        // node's default route); this one leads only to the client namespace, which forwards nothing.
        topo.exec('node', 'ip', ['route', 'add', ADDR.serviceCIDR, 'via', ADDR.client])
        t.teardown(() => void topo.exec('node', 'ip', ['route', 'del', ADDR.serviceCIDR, 'via', ADDR.client]))
        for (const [where, host, port, peer] of [['pod1', VIP.single, 80, ADDR.nodeBridge], ['node', VIP.single, 80, ADDR.nodeBridge], ['node', ADDR.nodeUplink, NODE_PORT.web, ADDR.nodeBridge]] as const) {
          const c = topo.clientProcess('tcp', host, port, 5, 2000, 0, where)
          await c.done(20_000)
          const rs = parseClient(c)
          t.same(errorsOf(rs), [], `${where} -> ${host}:${port}: every request answered`)
          if (host === VIP.single) t.same(new Set(rs.map((r) => r.reply)), new Set([`pod2 ${peer}`]), `${where} -> ${host}:${port}: pod2, from the node`)
          else t.equal(rs.length, 5, `${where} -> ${host}:${port}: 5 answers`)
        }
      })

      // The portal rules do not change with endpoints: the proxy's round-robin does, at the sync.
      t.test('an endpoint removed while a client keeps going: no request lost after the sync', (t) => endpointRemovalLosesNothing(t, topo, run, file, VIP.web, /applied/))

      t.test('a stop removes the portal rules and closes the sockets; --cleanup removes what a killed run left', async (t) => {
        t.equal(await run.stop(), 0, `stopped cleanly ${run.stderr.slice(-600)}`)
        t.same(leftovers(topo), [], 'no portal rule left after a stop')
        t.notMatch(topo.exec('node', 'ss', ['-Hltn']), /:360\d\d\b/, 'no proxy socket left')
        // Without --proxy-port-range the kernel picks each socket's port; the rules follow it.
        run = topo.spawn('node', process.execPath, runArgs(file, 'userspace', extra))
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
  }
})
