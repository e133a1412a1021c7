// The node tests' traffic checks that every mode must pass the same way (apply.test.ts,
// apply-native.test.ts): each is the body of one subtest, run against a svcplane already
// applying `file` in the node namespace. Bounded like the client: count and per-request timeout.
import type { Test } from 'tap'
import { ADDR, parseClient, type Child, type ClientResult, type Topology } from './topology'
import { clusterObjects, NODE_NAME, NODE_PORT, VIP, writeCluster } from './cluster'

export const podOf = (r: ClientResult) => r.reply?.split(' ')[0]
export const peerOf = (r: ClientResult) => r.reply?.split(' ')[1]
export const errorsOf = (rs: ClientResult[]) => rs.filter((r) => r.error !== undefined).map((r) => `#${r.i}: ${r.error}`)

/** `count` requests to host:port answered by both pods, which see the node's bridge address. */
export async function reachesBothPodsMasqueraded(t: Test, topo: Topology, what: string, proto: 'tcp' | 'udp', host: string, port: number, count: number): Promise<void> {
  const rs = await topo.client(proto, host, port, count)
  t.same(errorsOf(rs), [], `${what}: every request answered`)
  t.same(new Set(rs.map(podOf)), new Set(['pod1', 'pod2']), `${what}: both endpoints reached`)
  t.same(new Set(rs.map(peerOf)), new Set([ADDR.nodeBridge]), `${what}: the pods see the node's address`)
}

export async function localNodePortKeepsClient(t: Test, topo: Topology): Promise<void> {
  const rs = await topo.client('tcp', ADDR.nodeUplink, NODE_PORT.local, 10)
  t.same(errorsOf(rs), [])
  t.same(new Set(rs.map((r) => r.reply)), new Set([`pod1 ${ADDR.client}`]), 'not masqueraded')
}

export async function udpThroughServices(t: Test, topo: Topology): Promise<void> {
  for (const [what, host, port] of [['ClusterIP', VIP.web, 53], ['NodePort', ADDR.nodeUplink, NODE_PORT.webUdp]] as const) {
    await reachesBothPodsMasqueraded(t, topo, what, 'udp', host, port, 30)
  }
}

export async function affinityKeepsOnePod(t: Test, topo: Topology): Promise<void> {
  const rs = await topo.client('tcp', VIP.sticky, 80, 15)
  t.same(errorsOf(rs), [])
  t.equal(new Set(rs.map(podOf)).size, 1, `one pod: ${[...new Set(rs.map(podOf))].join(', ')}`)
}

export async function explainAgrees(t: Test, topo: Topology, file: string, mode: string): Promise<void> {
  const explain = topo.exec('client', process.execPath, [
    'bin/svcplane.js', 'explain', '--cluster', file, '--mode', mode, '--node-name', NODE_NAME, '--node-ip', ADDR.nodeUplink,
    '--pod-cidr', ADDR.podCIDR, '--src', `${ADDR.client}:40000`, '--dst', `${VIP.single}:80`, '--json',
  ])
  const decision = JSON.stringify(JSON.parse(explain))
  t.match(decision, `${ADDR.pod2}:8080`, 'explain: the only endpoint, pod2')
  t.match(decision, /"masquerade":true/, 'explain: masqueraded')
  const rs = await topo.client('tcp', VIP.single, 80, 5)
  t.same(new Set(rs.map((r) => r.reply)), new Set([`pod2 ${ADDR.nodeBridge}`]), 'the packets: pod2, from the node address')
}

/** pod2 leaves Service web while a client makes 300 requests; its server stops after the sync; then it comes back. */
export async function endpointRemoval(t: Test, topo: Topology, file: string, run: Child): Promise<void> {
  const loop = topo.clientProcess('tcp', VIP.web, 80, 300, 2000, 10)
  await loop.waitFor(/"i":29,/, 30_000)
  const from = run.lines.length
  writeCluster(file, clusterObjects([ADDR.pod1]))
  await run.waitFor(/applied partial/, 30_000, from)
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
  await run.waitFor(/applied partial/, 30_000, back)
}
