// svcplane run --proxy-mode native --apply restarted under live traffic: in network namespaces
// this test creates (topology.ts), long-lived flows from the client keep exchanging requests
// across a stop (SIGTERM) and a second start, because the stop leaves the TUN device
// persistent with its routes, rules and nft table and hands the dataplane's flows over in the
// state file, which the next run imports after its first sync. One TCP connection through a
// ClusterIP (masqueraded: the client is outside the pod CIDR) and one through a NodePort, and
// one UDP flow, go on. The same restart with the state file taken away breaks the connection
// (the handoff is what keeps it). --cleanup afterwards leaves no device, rule, table or state
// file. Needs root and /dev/net/tun (skipped with a message otherwise); every client is bounded
// in count and time; the namespaces are deleted in teardown.
import t from 'tap'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { ADDR, REPO, type Child } from './topology'
import { clusterObjects, NODE_NAME, runArgs, VIP, writeCluster } from './cluster'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { nativeInstalled as installed, withTopology } from './scenarios'

const STREAM_PORT = 9000
const STREAM_VIP = '10.96.0.20'
const STREAM_NODE_PORT = 30090
const PEERS = join(REPO, 'test', 'node', 'stream-peers.js')

interface Reply {
  i: number
  start: number
  ms?: number
  reply?: string
  error?: string
}
const replies = (c: Child): Reply[] => c.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Reply)

const streamObjects = () => [
  makeService('ns', 'stream', { type: 'NodePort', clusterIP: STREAM_VIP, ports: [port('s', STREAM_PORT, { targetPort: STREAM_PORT, nodePort: STREAM_NODE_PORT })] }),
  makeSlice('ns', 'stream', 1, [{ ip: ADDR.pod1, node: NODE_NAME }, { ip: ADDR.pod2, node: NODE_NAME }], [{ name: 's', port: STREAM_PORT }]),
]

if (!existsSync('/dev/net/tun')) {
  t.plan(0, 'skipped: no /dev/net/tun (load the tun module)')
} else {
  withTopology('handoff', (topo, dir) => {
    const file = join(dir, 'cluster.json')
    const state = join(dir, 'flows.bin')
    const args = runArgs(file, 'native', ['--state-file', state])
    const start = async (): Promise<Child> => {
      const run = topo.spawn('node', process.execPath, args)
      await run.waitFor(/applied full native/, 60_000)
      return run
    }
    const stream = (where: 'tcp' | 'udp', host: string, p: number, count: number, timeoutMs: number) =>
      topo.spawn('client', process.execPath, [PEERS, where, host, String(p), String(count), '50', String(timeoutMs)])

    t.before(async () => {
      writeCluster(file, [...clusterObjects(), ...streamObjects()])
      await Promise.all((['pod1', 'pod2'] as const).map((pod) => topo.spawn(pod, process.execPath, [PEERS, 'server', pod, String(STREAM_PORT)]).waitFor(/^listening$/, 30_000)))
    })

    t.test('established flows survive a stop and a second start', async (t) => {
      const run1 = await start()
      const viaVip = stream('tcp', STREAM_VIP, STREAM_PORT, 120, 20_000)
      const viaNodePort = stream('tcp', ADDR.nodeUplink, STREAM_NODE_PORT, 120, 20_000)
      const dns = stream('udp', VIP.web, 53, 120, 1000)
      for (const c of [viaVip, viaNodePort, dns]) await c.waitFor(/"i":20,/, 30_000)

      const stopAt = Date.now()
      t.equal(await run1.stop(), 0, `the first run stopped cleanly ${run1.stderr.slice(-400)}`)
      const handed = /native: (\d+) flows handed off/.exec(run1.stderr)
      t.ok(handed && Number(handed[1]) >= 3, `flows handed off: ${handed?.[1]}`)
      t.ok(existsSync(state), 'the state file is written')
      const left = installed(topo).join('\n')
      for (const what of [/^link svcp0$/m, /^rule 10:.*fwmark 0x200000\/0x200000 lookup 21334$/m, /^route default dev svcp0 table 21334/m, /^table ip svcplane-native$/m])
        t.match(left, what, `left for the next run: ${what.source}`)

      const run2 = await start()
      t.teardown(() => run2.stop())
      const took = await run2.waitFor(/took over the previous run's device and (\d+) flows \((\d+) dropped.*after a (\d+) ms gap/, 30_000)
      const [, imported, dropped, gap] = /and (\d+) flows \((\d+) dropped.*after a (\d+) ms gap/.exec(took.line)!
      t.ok(Number(imported) >= 3, `${imported} flows imported, ${dropped} dropped, state file written ${gap} ms before the import`)
      t.notOk(existsSync(state), 'the state file is deleted once imported')
      const upAt = Date.now()

      for (const [what, c] of [['ClusterIP', viaVip], ['NodePort', viaNodePort]] as const) {
        await c.done(120 * 100 + 60_000)
        const rs = replies(c)
        t.same(rs.filter((r) => r.error !== undefined).map((r) => `#${r.i}: ${r.error}`), [], `${what}: one connection, no request failed`)
        t.equal(rs.length, 120, `${what}: all 120 requests answered on the one connection`)
        t.equal(new Set(rs.map((r) => r.reply!.split(' ')[0])).size, 1, `${what}: one pod throughout`)
        t.same(new Set(rs.map((r) => r.reply!.split(' ')[1])), new Set([ADDR.nodeBridge]), `${what}: masqueraded throughout`)
        t.ok(rs.some((r) => r.start >= upAt), `${what}: requests made after the restart were answered`)
        t.ok(rs.some((r) => r.start < stopAt), `${what}: the same connection served requests before the stop`)
        const slowest = Math.max(...rs.map((r) => r.ms!))
        t.comment(`${what}: slowest request ${slowest} ms (the restart gap, TCP retransmitting)`)
      }
      await dns.done(120 * 1100 + 10_000)
      const us = replies(dns)
      const before = us.filter((r) => r.start < stopAt && r.reply !== undefined)
      const after = us.filter((r) => r.start > upAt && r.reply !== undefined)
      t.ok(after.length >= 10, `UDP: replies keep coming after the restart (${after.length}, ${us.filter((r) => r.error).length} lost in the gap)`)
      t.same(new Set(after.map((r) => r.reply!.split(' ')[0])), new Set(before.map((r) => r.reply!.split(' ')[0])), 'UDP: the same pod answers the same flow')

      t.test('without the handoff (state file taken away) the same restart breaks the connection', async (t) => {
        const conn = stream('tcp', STREAM_VIP, STREAM_PORT, 100, 8000)
        await conn.waitFor(/"i":10,/, 30_000)
        t.equal(await run2.stop(), 0, 'stopped')
        rmSync(state)
        const run3 = await start()
        t.teardown(() => run3.stop())
        await conn.done(100 * 100 + 30_000)
        const rs = replies(conn)
        const failed = rs.find((r) => r.error !== undefined)
        t.ok(failed !== undefined && rs.length < 100, `the connection broke: ${failed ? `#${failed.i} ${failed.error}` : 'no failure'}`)
        t.equal(await run3.stop(), 0, 'the third run stopped')
      })

      t.test('--cleanup leaves no device, rule, table or state file', async (t) => {
        t.ok(existsSync(state), 'a stop left a state file')
        const out = topo.exec('node', process.execPath, ['bin/svcplane.js', 'run', '--cleanup', '--state-file', state])
        t.match(out, /removed TUN device svcp0/, out.trim())
        t.match(out, /removed state file/)
        t.same(installed(topo), [], 'nothing of svcplane left')
        t.notOk(existsSync(state), 'no state file')
        t.match(topo.exec('node', 'ip', ['-4', 'rule', 'show']), /^0:\s+from all lookup local/m, 'the local rule is back at preference 0')
      })
    })
  })
}
