// Differential test over three modes: the random clusters and packets of the native/iptables
// differential test (test/fixtures/random-cluster.ts) through the native, iptables and nftables
// proxy modes. The nftables mode must agree with the other two on the action, the reject/drop
// details, the masquerade flag and the endpoint, and the endpoints a new connection can reach
// through its ruleset (walked by the general nft evaluator over every `numgen random mod N` branch)
// must be kube-proxy's candidates, except where kube-proxy's nftables mode differs by design:
//   - a ClusterIP's unserved port or protocol is rejected (cluster-ips-check), the others let it go;
//   - an address of the service CIDRs no Service has is dropped, the others let it go;
//   - there are no localhost NodePorts (127.0.0.1:nodePort): the others DNAT, reject or drop there;
//   - the node's own new connections to an external or load-balancer IP without endpoints are
//     rejected (kube-proxy jumps to service-endpoints-check from filter-output too), where
//     iptables' KUBE-EXTERNAL-SERVICES runs only in INPUT and FORWARD and lets them leave;
//   - a source outside loadBalancerSourceRanges to a load-balancer IP without endpoints is dropped
//     (firewall-check, in filter-prerouting, comes before the endpoints check, and kube-proxy's
//     nftables proxier writes the firewall chain with or without endpoints), where iptables,
//     which has the firewall only with endpoints, rejects it (or lets the node's own packet leave).
// Each of the three differences must occur and is counted; every other packet must agree.
// (The iptables side's reachable sets are walked by test/iptables/differential.test.ts.)
import t from 'tap'
import fc from 'fast-check'
import { seededRandom } from '../../lib/util/random.js'
import { Proxier } from '../../lib/modes/index.js'
import type { Packet, RouteResult } from '../../lib/proxy/packet.js'
import { checkPacket } from '../../lib/proxy/packet.js'
import { classifySource, traceKubeProxy, type KubeProxyTrace } from '../../lib/proxy/trace.js'
import { NftEvaluator } from '../../lib/nftables/nft/evaluator.js'
import { cidrContains, parseAddr, parseCidr } from '../../lib/util/address-words.js'
import { clusterArb, hairpin, nodeOptionsFor, objectsOf, packetsFor, type ClusterSpec } from '../fixtures/random-cluster'
import { testNodeIP } from '../fixtures/objects'

const RUNS = Number(process.env.SVCPLANE_DIFF_RUNS ?? 200)
const PACKETS_PER_CLUSTER = Number(process.env.SVCPLANE_DIFF_PACKETS ?? 520)
const MIN_PACKETS = 100_000
const SERVICE_CIDR = '172.30.0.0/16'
/** numgen draws per exploration: floor(k / DRAWS * N) for k < DRAWS reaches every branch of N <= DRAWS (the clusters have <= 5 endpoints a port; checked). */
const DRAWS = 5
/** Virtual seconds between exploration walks: longer than any affinity timeout, so no walk sees another's affinity entries. */
const EXPLORE_STEP = 1e6

type Difference = 'unserved ClusterIP port rejected' | 'unallocated service-CIDR address dropped' | 'no localhost NodePort' | 'node to external IP without endpoints rejected' | 'firewall drop before the no-endpoints reject'
const differences = new Map<Difference, number>([
  ['unserved ClusterIP port rejected', 0],
  ['unallocated service-CIDR address dropped', 0],
  ['no localhost NodePort', 0],
  ['node to external IP without endpoints rejected', 0],
  ['firewall drop before the no-endpoints reject', 0],
])
let packetsCompared = 0
let agreed = 0
let dnats = 0

/** The endpoints a new connection can reach through an nft ruleset: one walk per numgen branch, on fresh affinity sets. */
class NftExplorer {
  private draw = 0
  private draws = 0
  private clock = 0
  private readonly ev: NftEvaluator

  constructor(ruleset: string) {
    this.ev = new NftEvaluator(ruleset, {
      localAddresses: [testNodeIP],
      trace: 'none',
      random: () => {
        this.draws++
        return this.draw / DRAWS
      },
    })
  }

  /** The first walk's result (branch 0) and every endpoint reachable. */
  explore(p: Packet): { action: string; masquerade: boolean; reachable: Set<string> } {
    const reachable = new Set<string>()
    let first: { action: string; masquerade: boolean } | undefined
    for (let k = 0; k < DRAWS; k++) {
      this.draw = k
      this.draws = 0
      this.clock += EXPLORE_STEP
      const r = this.ev.evaluate({ src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, hook: p.hook ?? 'prerouting', now: this.clock })
      first ??= { action: r.action, masquerade: r.masquerade }
      if (r.action !== 'dnat') break
      reachable.add(r.endpoint!)
      if (this.draws === 0) break
    }
    return { ...first!, reachable }
  }
}

const serviceCIDR = parseCidr(SERVICE_CIDR)!

/** Which of nftables' documented differences explains this nftables answer, if any. */
function documentedDifference(pkt: Packet, other: RouteResult, nft: RouteResult, clusterIPs: Set<string>, tr: KubeProxyTrace): Difference | undefined {
  if (other.action === 'accept' && nft.action === 'reject' && nft.reason === 'invalid-port' && clusterIPs.has(pkt.dst)) return 'unserved ClusterIP port rejected'
  if (other.action === 'accept' && nft.action === 'drop' && nft.reason === 'unallocated-cluster-ip' && !clusterIPs.has(pkt.dst) && cidrContains(serviceCIDR, parseAddr(pkt.dst)!)) {
    return 'unallocated service-CIDR address dropped'
  }
  if (other.action !== 'accept' && nft.action === 'accept' && pkt.dst === '127.0.0.1') return 'no localhost NodePort'
  const external = tr.frontend?.kind === 'externalIP' || tr.frontend?.kind === 'loadBalancer'
  if (other.action === 'accept' && nft.action === 'reject' && nft.reason === 'no-endpoints' && pkt.hook === 'output' && external && !tr.state!.plan.hasEndpoints) {
    return 'node to external IP without endpoints rejected'
  }
  if ((other.action === 'accept' || (other.action === 'reject' && other.reason === 'no-endpoints')) && nft.action === 'drop' && nft.reason === 'source-range' && tr.frontend?.kind === 'loadBalancer' && !tr.state!.plan.hasEndpoints) {
    return 'firewall drop before the no-endpoints reject'
  }
  return undefined
}

function compareCluster(c: ClusterSpec): void {
  const base = nodeOptionsFor(c, { serviceCIDRs: [SERVICE_CIDR] })
  const native = new Proxier({ ...base, mode: 'native' })
  const ipt = new Proxier({ ...base, mode: 'iptables' })
  const nft = new Proxier({ ...base, mode: 'nftables' })
  const rand = seededRandom(c.seed)
  const flip = Math.floor(rand() * c.services.length * 8)
  for (const phase of [0, 1]) {
    const objects = objectsOf(c, phase === 0 ? -1 : flip)
    for (const p of [native, ipt, nft]) {
      p.applyList(objects)
      const errors = p.sync().errors
      if (errors.length > 0) throw errors[0]!.error
    }
    if (nft.nftables!.lastSyncError !== undefined) throw nft.nftables!.lastSyncError
    const explorer = new NftExplorer(nft.nftablesRuleset())
    const clusterIPs = new Set(native.state.servicePorts().map((s) => s.info.clusterIP))
    const packets = packetsFor(native, c, PACKETS_PER_CLUSTER / 2, rand, 1024 + phase * 30000, 10 + phase * 1000)
    for (const pkt of packets) {
      const a = native.route(pkt)
      const b = ipt.route(pkt)
      const n = nft.route(pkt)
      const checked = checkPacket(pkt)
      const tr = traceKubeProxy(native.state, checked, classifySource(native.state, checked))
      const where = `${pkt.hook} ${pkt.src}:${pkt.sport} -> ${pkt.dst}:${pkt.dport}/${pkt.protocol} (phase ${phase})`
      const fail = (why: string, extra: unknown = {}) => {
        throw new Error(`${why}: ${where}\nnative ${JSON.stringify(a)}\niptables ${JSON.stringify(b)}\nnftables ${JSON.stringify(n)}\n${JSON.stringify(extra)}\n${nft.nftablesRuleset()}`)
      }
      packetsCompared++
      if (a.action !== b.action) fail('native and iptables differ')
      const walked = explorer.explore(pkt)
      if (walked.action !== n.action) fail(`the nft evaluator says ${walked.action} over the mode's ruleset`)
      const difference = documentedDifference(pkt, a, n, clusterIPs, tr)
      if (difference !== undefined) {
        differences.set(difference, differences.get(difference)! + 1)
        continue
      }
      agreed++
      if (a.action !== n.action) fail('nftables differs')
      if (n.action === 'dnat' && a.action === 'dnat') {
        dnats++
        const candidates = new Set(tr.candidates.map((e) => e.endpoint))
        if (candidates.size > DRAWS) fail(`${candidates.size} candidates: the exploration reaches ${DRAWS} at most`)
        if (!candidates.has(n.endpoint)) fail(`endpoint ${n.endpoint} outside the candidates`, [...candidates])
        if (n.masquerade !== (tr.masquerade || hairpin(pkt.src, n.endpoint))) fail('masquerade differs', tr.steps)
        if (n.servicePort !== a.servicePort) fail('service port differs')
        if ([...walked.reachable].sort().join() !== [...candidates].sort().join()) fail('reachable endpoint sets differ', { reachable: [...walked.reachable], candidates: [...candidates] })
      } else if (n.action !== 'accept' && n.action !== 'dnat' && a.action !== 'accept' && a.action !== 'dnat') {
        if (n.servicePort !== a.servicePort || n.reason !== a.reason) fail('reject/drop details differ')
      }
    }
  }
}

t.test(`native, iptables and nftables modes agree (${RUNS} clusters x ${PACKETS_PER_CLUSTER} packets)`, async (t) => {
  const started = Date.now()
  fc.assert(fc.property(clusterArb, (c) => {
    compareCluster(c)
  }), { numRuns: RUNS, seed: Number(process.env.SVCPLANE_DIFF_SEED ?? 20261203), endOnFailure: false })
  if (RUNS * PACKETS_PER_CLUSTER >= MIN_PACKETS) t.ok(packetsCompared >= MIN_PACKETS, `${packetsCompared} packets compared, 0 mismatches`)
  for (const [what, count] of differences) t.ok(count > 0, `nftables' documented difference occurs: ${what} (${count} packets)`)
  t.equal(agreed + [...differences.values()].reduce((x, y) => x + y, 0), packetsCompared, 'every packet agrees or is one of the documented differences')
  t.comment(`${packetsCompared} packets compared in ${Date.now() - started} ms: ${agreed} agree (${dnats} DNATed), ${[...differences].map(([w, n]) => `${n} ${w}`).join(', ')}`)
})
