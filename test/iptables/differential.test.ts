// Differential test: random clusters (every service type, both traffic policies, affinity,
// terminating endpoints, topology hints, source ranges) and random packets through the native
// and the iptables proxy modes. Both must agree on the action, on the masquerade flag (the rules'
// decision plus hairpin for the endpoint each chose), and on the set of endpoints a new
// connection can reach: the iptables side by walking every branch of the statistic rules, the
// native side by checking its choices against kube-proxy's decision from the model.
import t from 'tap'
import fc from 'fast-check'
import { seededRandom } from '../../lib/util/random.js'
import { Proxier } from '../../lib/modes/index.js'
import type { RouteResult } from '../../lib/proxy/packet.js'
import { checkPacket } from '../../lib/proxy/packet.js'
import { classifySource, traceKubeProxy } from '../../lib/proxy/trace.js'
import { Explorer } from './explore'
import { clusterArb, hairpin, nodeOptionsFor, objectsOf, packetsFor, type ClusterSpec } from '../fixtures/random-cluster'
import { testNodeIP } from '../fixtures/objects'

const RUNS = Number(process.env.SVCPLANE_DIFF_RUNS ?? 220)
const PACKETS_PER_CLUSTER = Number(process.env.SVCPLANE_DIFF_PACKETS ?? 520)

let packetsCompared = 0
let dnats = 0
let nodeToExternalWithoutEndpoints = 0
const MIN_PACKETS = 100_000

function compareCluster(c: ClusterSpec): void {
  const base = nodeOptionsFor(c)
  const native = new Proxier({ ...base, mode: 'native' })
  const ipt = new Proxier({ ...base, mode: 'iptables' })
  const rand = seededRandom(c.seed)
  const flip = Math.floor(rand() * c.services.length * 8)
  for (const phase of [0, 1]) {
    const objects = objectsOf(c, phase === 0 ? -1 : flip)
    for (const p of [native, ipt]) p.applyList(objects)
    if (ipt.sync().errors.length) throw new Error('the iptables mode failed to sync')
    const errors = native.sync().errors
    if (errors.length > 0) throw errors[0]!.error
    const explorer = new Explorer(ipt.iptables!.ruleset('IPv4'), [testNodeIP])
    const packets = packetsFor(native, c, PACKETS_PER_CLUSTER / 2, rand, 1024 + phase * 30000, 10 + phase * 1000)
    for (const pkt of packets) {
      const a = native.route(pkt)
      const b = ipt.route(pkt)
      const checked = checkPacket(pkt)
      const tr = traceKubeProxy(native.state, checked, classifySource(native.state, checked))
      const where = `${pkt.hook} ${pkt.src}:${pkt.sport} -> ${pkt.dst}:${pkt.dport}/${pkt.protocol} (phase ${phase})`
      const fail = (why: string, extra: unknown = {}) => {
        throw new Error(`${why}: ${where}\nnative ${JSON.stringify(a)}\niptables ${JSON.stringify(b)}\n${JSON.stringify(extra)}\n${ipt.iptables!.ruleset('IPv4')}`)
      }
      packetsCompared++
      // The node's own packets to a non-local external IP without endpoints leave the node
      // (kube-proxy rejects them only for INPUT and FORWARD): counted, and compared like the rest.
      if (pkt.hook === 'output' && b.action === 'accept' && (tr.frontend?.kind === 'externalIP' || tr.frontend?.kind === 'loadBalancer') && !tr.state!.plan.hasEndpoints) {
        nodeToExternalWithoutEndpoints++
      }
      if (a.action !== b.action) fail('action differs')
      if (a.action !== tr.action) fail('native differs from the model trace', tr.steps)
      if (a.action === 'dnat' && b.action === 'dnat') {
        dnats++
        const candidates = new Set(tr.candidates.map((e) => e.endpoint))
        for (const r of [a, b] as Extract<RouteResult, { action: 'dnat' }>[]) {
          if (!candidates.has(r.endpoint)) fail(`endpoint ${r.endpoint} outside the candidates`, [...candidates])
          if (r.masquerade !== (tr.masquerade || hairpin(pkt.src, r.endpoint))) fail('masquerade differs', tr.steps)
          if (r.servicePort !== tr.state!.info.name) fail('service port differs')
        }
        const reachable = explorer.reachable(pkt)
        if ([...reachable].sort().join() !== [...candidates].sort().join()) fail('reachable endpoint sets differ', { reachable: [...reachable], candidates: [...candidates] })
      } else if (a.action !== 'accept' && b.action !== 'accept' && a.action === b.action) {
        const [ra, rb] = [a, b] as Extract<RouteResult, { action: 'reject' | 'drop' }>[]
        if (ra!.servicePort !== rb!.servicePort || ra!.reason !== rb!.reason) fail('reject/drop details differ')
      }
    }
  }
}

t.test(`native and iptables modes agree (${RUNS} clusters x ${PACKETS_PER_CLUSTER} packets)`, async (t) => {
  const started = Date.now()
  fc.assert(fc.property(clusterArb, (c) => {
    compareCluster(c)
  }), { numRuns: RUNS, seed: Number(process.env.SVCPLANE_DIFF_SEED ?? 20261125), endOnFailure: false })
  if (RUNS * PACKETS_PER_CLUSTER >= MIN_PACKETS) t.ok(packetsCompared >= MIN_PACKETS, `${packetsCompared} packets compared, 0 mismatches`)
  t.comment(`${packetsCompared} packets compared (${dnats} DNATed) in ${Date.now() - started} ms; ${nodeToExternalWithoutEndpoints} of them node-to-external-IP packets without endpoints (both modes let them leave)`)
})
