// What the node tests share: a tap file's topology (built once, backends started, everything
// deleted in teardown) and the scenarios every mode runs the same way.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR, errorsOf, parseClient, peerOf, podOf, Topology, type Child, type PodName } from './topology'
import { clusterObjects, NODE_NAME, NODE_PORT, VIP, writeCluster } from './cluster'

type Tap = Test

/**
 * Builds the topology for this tap file and runs `body` with it and a scratch directory; skips
 * the whole file with the reason when it cannot be built (not root, tools missing). The
 * backends of pod1 and pod2 are started before the first test.
 */
export function withTopology(tag: string, body: (topo: Topology, dir: string) => void, pods?: readonly PodName[]): void {
  const topo = Topology.create(tag, pods)
  if ('skip' in topo) {
    t.plan(0, `skipped: ${topo.skip}`)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), `svcplane-${tag}-`))
  t.teardown(async () => {
    await topo.remove()
    rmSync(dir, { recursive: true, force: true })
  })
  t.before(async () => {
    await topo.startBackends()
  })
  body(topo, dir)
}

/** `count` requests of each case reach both pods, every one answered, each pod seeing `peer`. */
export async function reachesBothPods(t: Tap, topo: Topology, proto: 'tcp' | 'udp', cases: ReadonlyArray<readonly [what: string, host: string, port: number]>, peer: string, count: number): Promise<void> {
  for (const [what, host, port] of cases) {
    const rs = await topo.client(proto, host, port, count)
    t.same(errorsOf(rs), [], `${what}: every request answered`)
    t.same(new Set(rs.map(podOf)), new Set(['pod1', 'pod2']), `${what}: both endpoints reached`)
    t.same(new Set(rs.map(peerOf)), new Set([peer]), `${what}: the pods see ${peer}`)
  }
}

/**
 * pod2 is removed from Service web's endpoints while a client makes 300 requests to its
 * ClusterIP (port 80): none fails, none started after the apply reaches pod2, whose server is
 * stopped once the rules no longer name it. Then pod2 is back, serving again.
 */
export async function endpointRemovalLosesNothing(t: Tap, topo: Topology, run: Child, file: string, vip: string, applied: RegExp): Promise<void> {
  const loop = topo.clientProcess('tcp', vip, 80, 300, 2000, 10)
  await loop.waitFor(/"i":29,/, 30_000)
  const from = run.lines.length
  writeCluster(file, clusterObjects([ADDR.pod1]))
  await run.waitFor(applied, 30_000, from)
  const appliedAt = Date.now()
  // The endpoint is gone from the rules: its server may now stop, as a terminated pod's does.
  await topo.backends.get('pod2')!.stop()
  await loop.done(300 * 2100 + 10_000)
  const rs = parseClient(loop)
  t.equal(rs.length, 300, 'the client finished')
  t.same(errorsOf(rs), [], 'no request failed')
  t.ok(rs.some((r) => r.start < appliedAt && podOf(r) === 'pod2'), 'pod2 served before the change')
  t.same(rs.filter((r) => r.start > appliedAt && podOf(r) !== 'pod1').map((r) => `#${r.i} ${r.reply}`), [], 'after the sync, pod1 only')
  await topo.startBackends(['pod2'])
  const back = run.lines.length
  writeCluster(file, clusterObjects())
  await run.waitFor(applied, 30_000, back)
}

/**
 * The subtests every mode passes alike, svcplane running in `mode` on the node from `file`:
 * ClusterIP and NodePort, TCP and UDP, reach both pods masqueraded (the client is outside the
 * pod CIDR; the userspace proxy dials from the node anyway); ClientIP affinity holds; `explain`
 * names the endpoint the requests reach, its decision matching `explainShows`.
 */
export function serviceTrafficFlows(t: Tap, topo: Topology, file: string, mode: string, explainShows: RegExp): void {
  t.test('ClusterIP and NodePort reach both pods, masqueraded', async (t) => {
    await reachesBothPods(t, topo, 'tcp', [['ClusterIP', VIP.web, 80], ['NodePort', ADDR.nodeUplink, NODE_PORT.web]], ADDR.nodeBridge, 40)
  })

  t.test('UDP request/reply through the ClusterIP and the NodePort', async (t) => {
    await reachesBothPods(t, topo, 'udp', [['ClusterIP', VIP.web, 53], ['NodePort', ADDR.nodeUplink, NODE_PORT.webUdp]], ADDR.nodeBridge, 30)
  })

  t.test('ClientIP affinity keeps the client on one pod', async (t) => {
    const rs = await topo.client('tcp', VIP.sticky, 80, 15)
    t.same(errorsOf(rs), [])
    t.equal(new Set(rs.map(podOf)).size, 1, `one pod: ${[...new Set(rs.map(podOf))].join(', ')}`)
  })

  t.test('explain names the endpoint the real request reached', async (t) => {
    const explain = topo.exec('client', process.execPath, [
      'bin/svcplane.js', 'explain', '--cluster', file, '--proxy-mode', mode, '--node-name', NODE_NAME, '--node-ip', ADDR.nodeUplink,
      '--pod-cidr', ADDR.podCIDR, '--src', `${ADDR.client}:40000`, '--dst', `${VIP.single}:80`, '--json',
    ])
    const decision = JSON.stringify(JSON.parse(explain))
    t.match(decision, `${ADDR.pod2}:8080`, 'explain: the only endpoint, pod2')
    t.match(decision, explainShows, `explain: ${explainShows}`)
    const rs = await topo.client('tcp', VIP.single, 80, 5)
    t.same(new Set(rs.map((r) => r.reply)), new Set([`pod2 ${ADDR.nodeBridge}`]), 'the requests: pod2, from the node address')
  })
}

/** externalTrafficPolicy Local: a NodePort to the node's own pod keeps the client's address. */
export async function localNodePortKeepsClient(t: Tap, topo: Topology): Promise<void> {
  const rs = await topo.client('tcp', ADDR.nodeUplink, NODE_PORT.local, 10)
  t.same(errorsOf(rs), [])
  t.same(new Set(rs.map((r) => r.reply)), new Set([`pod1 ${ADDR.client}`]), 'not masqueraded')
}

/** What native mode installs in the node namespace, as the kernel lists it (rules, routes, nft tables, the TUN device). */
export function nativeInstalled(topo: Topology): string[] {
  const out: string[] = []
  out.push(...topo.exec('node', 'ip', ['-4', 'rule', 'show']).split('\n').filter((l) => /^(10|11):|21334/.test(l)).map((l) => `rule ${l.trim()}`))
  out.push(...topo.exec('node', 'ip', ['-4', 'route', 'show', 'table', 'all']).split('\n').filter((l) => /svcp0|table 21334/.test(l)).map((l) => `route ${l.trim()}`))
  out.push(...topo.exec('node', 'nft', ['list', 'tables']).split('\n').filter((l) => /svcplane|kube-proxy/.test(l)))
  out.push(...topo.exec('node', 'ip', ['-o', 'link', 'show']).split('\n').filter((l) => l.includes('svcp0')).map((l) => `link ${l.split(':')[1]!.trim()}`))
  return out
}
