// Scenario 5: after a rolling update traffic does not reach the new pods. Connections tracked
// before the update stay pinned to the old pods (terminating, or deleted: kube-proxy clears only
// UDP flows); EndpointSlices that still list pods that are gone. The doctor shows the stale
// flows and clears them, in a running Proxier of either mode and from a `conntrack -L` listing.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { clearStaleFlows, diagnose, diagnoseProxier, loadNode, staleFlows } from '../../lib/doctor/index.js'
import { list, node, NODES, objectsOf, pod, service, slice, svcplane, writeDump, type Pod, MODES, serviceFindings } from './cluster.js'

const v1: Pod[] = [
  { ip: '10.244.0.81', node: 'node-a', pod: 'web-6d5c4b7f9-aaaaa' },
  { ip: '10.244.1.81', node: 'node-b', pod: 'web-6d5c4b7f9-bbbbb' },
  { ip: '10.244.2.81', node: 'node-c', pod: 'web-6d5c4b7f9-ccccc' },
]
const v2: Pod[] = [
  { ip: '10.244.0.91', node: 'node-a', pod: 'web-58f9d6c8b-ddddd' },
  { ip: '10.244.1.91', node: 'node-b', pod: 'web-58f9d6c8b-eeeee' },
  { ip: '10.244.2.91', node: 'node-c', pod: 'web-58f9d6c8b-fffff' },
]
const PORTS = [{ name: 'http', port: 8080 }]
const webService = service('shop', 'web', '10.96.40.10', [{ name: 'http', port: 80, targetPort: 8080 }])

export const before = list(...NODES.map(node), webService, slice('shop', 'web', 'abcde', v1, PORTS))
// Mid-update: v2 ready; one v1 pod still terminating (serving its last requests), the others gone.
const afterSlice = slice('shop', 'web', 'abcde', [...v2, { ...v1[0], terminating: true, ready: false, serving: true }], PORTS)
export const after = list(...NODES.map(node), webService, afterSlice)

const CLIENTS = ['10.244.0.15', '10.244.0.16', '10.244.0.17', '10.244.0.18', '10.244.0.19', '10.244.0.20']

function openConnections(proxier: ReturnType<typeof loadNode>) {
  const chosen: string[] = []
  for (const [i, src] of CLIENTS.entries()) {
    const p = { src, sport: 43000 + i, dst: '10.96.40.10', dport: 80, protocol: 'TCP' as const, now: 10 }
    const r = proxier.route({ ...p, tcpFlags: 0x02 })
    proxier.route({ src: r.action === 'dnat' ? r.endpoint.split(':')[0] : '', sport: 8080, dst: src, dport: 43000 + i, protocol: 'TCP', now: 10, tcpFlags: 0x12 })
    proxier.route({ ...p, tcpFlags: 0x10 })
    if (r.action === 'dnat') chosen.push(r.endpoint)
  }
  return chosen
}

for (const mode of ['native', 'iptables'] as const) {
  t.test(`a running proxy (${mode} mode): connections pinned to old pods, shown and cleared`, async (t) => {
    const objects = objectsOf(before)
    const proxier = loadNode(objects.nodes[0], objects, { seed: 7 }, mode)
    const chosen = openConnections(proxier)
    t.equal(chosen.length, 6)
    t.ok(chosen.every((e) => v1.some((p) => e === `${p.ip}:8080`)), 'every connection went to a v1 pod')
    t.same(staleFlows(proxier, 20), [], 'nothing stale before the update')

    proxier.applyEndpointSlice(afterSlice)
    proxier.sync()
    const stale = staleFlows(proxier, 20)
    const expected = chosen.filter((e) => mode === 'iptables' || e === '10.244.0.81:8080')
    t.equal(stale.length, expected.length, mode === 'native' ? 'native: flows of deleted backends went with them; those of the terminating pod stay' : 'iptables: TCP flows stay, whether the pod is terminating or deleted')
    t.ok(stale.length > 0)
    for (const s of stale) {
      t.equal(s.servicePort, 'shop/web:http')
      t.equal(s.why, s.endpoint === '10.244.0.81:8080' ? 'terminating' : 'deleted')
    }

    const r = diagnoseProxier(proxier, { now: 20 })
    const f = r.findings.find((x) => x.code === 'stale-flows')!
    t.ok(f)
    t.match(f.what, new RegExp(`^${stale.length} tracked connection\\(s\\) still go to \\d old endpoint\\(s\\)`))
    t.match(f.why, /never reach the new pods \(10\.244\.0\.91:8080, 10\.244\.1\.91:8080, 10\.244\.2\.91:8080\)/)
    t.match(f.fix, /conntrack -D -p tcp --orig-dst 10\.96\.40\.10 --orig-port-dst 80 --dst-nat 10\.244\.\d\.81/)
    t.equal(r.staleFlows.length, stale.length)

    const cleared = clearStaleFlows(proxier, undefined, 20)
    t.equal(cleared.flows.length, stale.length)
    t.equal(cleared.cleared, stale.length)
    t.same(staleFlows(proxier, 20), [])
    // The same client's next connection goes to a new pod.
    const again = proxier.route({ src: CLIENTS[0], sport: 43000, dst: '10.96.40.10', dport: 80, protocol: 'TCP', now: 21, tcpFlags: 0x02 })
    t.match(again, { action: 'dnat' })
    t.ok(v2.some((p) => (again as { endpoint: string }).endpoint === `${p.ip}:8080`), 'reaches a v2 pod')
    proxier.dataplane?.destroy()
  })
}

// EndpointSlices still listing old pods: the dump has the pods too.
const stuckSlice = slice('shop', 'web', 'abcde', [...v2, v1[1]], PORTS)
export const stuck = list(...NODES.map(node), webService, stuckSlice, ...v2.map((p) => pod('shop', p)))

// In both the native model and ipvs mode: the slices are what both read.
for (const m of MODES) t.test(`${m.name}: EndpointSlices still listing a pod that is gone`, async (t) => {
  const r = serviceFindings(diagnose(objectsOf(stuck), m.mode))
  t.same(r.findings.map((f) => f.code), ['stale-endpoints'])
  t.match(r.findings[0], { severity: 'warning', servicePort: 'shop/web:http' })
  t.match(r.findings[0].what, /the EndpointSlices list 1 endpoint\(s\) with no pod behind them: 10\.244\.1\.81:8080/)
  t.same(r.findings[0].details!.withoutPod, ['10.244.1.81:8080'])
  // A pod being deleted but still ready in the slice.
  const deleting = list(...NODES.map(node), webService, slice('shop', 'web', 'abcde', v2, PORTS), pod('shop', v2[0], true), pod('shop', v2[1]), pod('shop', v2[2]))
  const d = serviceFindings(diagnose(objectsOf(deleting), m.mode))
  t.match(d.findings[0].what, /list 1 deleted pod\(s\) as ready: 10\.244\.0\.91:8080/)
})

const CONNTRACK = `tcp      6 86390 ESTABLISHED src=10.244.0.15 dst=10.96.40.10 sport=43000 dport=80 src=10.244.1.81 dst=10.244.0.15 sport=8080 dport=43000 [ASSURED] mark=0 use=1
tcp      6 86385 ESTABLISHED src=10.244.0.16 dst=10.96.40.10 sport=43001 dport=80 src=10.244.0.81 dst=10.244.0.16 sport=8080 dport=43001 [ASSURED] mark=0 use=1
tcp      6 86399 ESTABLISHED src=10.244.0.17 dst=10.96.40.10 sport=43002 dport=80 src=10.244.2.91 dst=10.244.0.17 sport=8080 dport=43002 [ASSURED] mark=0 use=1
udp      17 25 src=10.244.0.15 dst=10.96.0.10 sport=53211 dport=53 src=10.244.1.5 dst=10.244.0.15 sport=53 dport=53211 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
`

t.test('svcplane doctor --conntrack and --clear-stale', async (t) => {
  const dir = t.testdir()
  const file = writeDump(dir, after)
  const ct = path.join(dir, 'conntrack.txt')
  fs.writeFileSync(ct, CONNTRACK)
  const r = await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--conntrack', ct)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /\nshop\/web:http \(TCP\)\n  WARNING stale-flows \(node-a\)\n    what:  2 tracked connection\(s\) still go to 2 old endpoint\(s\): 10\.244\.1\.81:8080, 10\.244\.0\.81:8080\n/)
  t.match(r.out, /\nStale flows \(2\):\n  tcp  10\.244\.0\.15:43000 -> 10\.96\.40\.10:80 pinned to 10\.244\.1\.81:8080 \(deleted, ESTABLISHED, expires in 86390 s\)\n  tcp  10\.244\.0\.16:43001 -> 10\.96\.40\.10:80 pinned to 10\.244\.0\.81:8080 \(terminating, ESTABLISHED, expires in 86385 s\)\n/)
  t.match(r.out, /To clear them on a kube-proxy node:\n  conntrack -D -p tcp --orig-dst 10\.96\.40\.10 --orig-port-dst 80 --dst-nat 10\.244\.1\.81\n  conntrack -D -p tcp --orig-dst 10\.96\.40\.10 --orig-port-dst 80 --dst-nat 10\.244\.0\.81\n$/)
  const clear = await svcplane('doctor', '--cluster', file, '--node-name', 'node-a', '--conntrack', ct, '--clear-stale')
  t.equal(clear.out, 'conntrack -D -p tcp --orig-dst 10.96.40.10 --orig-port-dst 80 --dst-nat 10.244.1.81\nconntrack -D -p tcp --orig-dst 10.96.40.10 --orig-port-dst 80 --dst-nat 10.244.0.81\n')
  t.match(clear.err, /2 stale flow\(s\), 2 command\(s\)/)
  const many = await svcplane('doctor', '--cluster', file, '--conntrack', ct)
  t.equal(many.code, 2, 'a listing belongs to one node')
  t.match(many.err, /conntrack listing belongs to one node/)
})
