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
import type { Packet, RouteResult } from '../../lib/proxy/packet.js'
import { checkPacket } from '../../lib/proxy/packet.js'
import { classifySource, traceKubeProxy } from '../../lib/proxy/trace.js'
import { Explorer } from './explore'
import { lbStatus, makeService, makeSlice, port, testNodeIP, testNodeName, type EP } from '../fixtures/objects'

const RUNS = Number(process.env.SVCPLANE_DIFF_RUNS ?? 220)
const PACKETS_PER_CLUSTER = Number(process.env.SVCPLANE_DIFF_PACKETS ?? 520)

const endpointArb = fc.record({
  local: fc.boolean(),
  state: fc.constantFrom('ready', 'ready', 'ready', 'serving-terminating', 'terminating', 'not-ready'),
  hint: fc.constantFrom('none', 'zone-a', 'zone-b'),
})
const serviceArb = fc.record({
  type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'Headless', 'ExternalName'),
  etpLocal: fc.boolean(),
  itpLocal: fc.boolean(),
  affinity: fc.boolean(),
  externalIPs: fc.integer({ min: 0, max: 2 }),
  lbIPs: fc.integer({ min: 0, max: 2 }),
  sourceRanges: fc.constantFrom('none', 'none', 'clients', 'node', 'all'),
  protocols: fc.array(fc.constantFrom('TCP', 'UDP', 'SCTP'), { minLength: 1, maxLength: 2 }),
  endpoints: fc.array(endpointArb, { maxLength: 5 }),
  slices: fc.constantFrom(0, 1, 1, 1, 2),
})
const clusterArb = fc.record({
  services: fc.array(serviceArb, { minLength: 1, maxLength: 6 }),
  detector: fc.boolean(),
  zone: fc.constantFrom(undefined, 'zone-a'),
  masqueradeAll: fc.boolean(),
  localhostNodePorts: fc.boolean(),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
})
type ClusterSpec = typeof clusterArb extends fc.Arbitrary<infer T> ? T : never
type ServiceSpec = ClusterSpec['services'][number]

const CONDITIONS: Record<string, Pick<EP, 'ready' | 'serving' | 'terminating'>> = {
  ready: { ready: true, serving: true, terminating: false },
  'serving-terminating': { ready: false, serving: true, terminating: true },
  terminating: { ready: false, serving: false, terminating: true },
  'not-ready': { ready: false, serving: false, terminating: false },
}

function objectsOf(c: ClusterSpec, flip = -1): unknown[] {
  const out: unknown[] = []
  c.services.forEach((s: ServiceSpec, i) => {
    const name = `svc${i}`
    const ports = s.protocols.map((protocol, j) => port(s.protocols.length === 1 ? '' : `p${j}`, 80 + j, {
      protocol: protocol as 'TCP',
      targetPort: 8000 + j,
      ...(s.type === 'NodePort' || s.type === 'LoadBalancer' ? { nodePort: 30000 + i * 10 + j } : {}),
    }))
    const ranges = { none: [], clients: ['203.0.113.0/25'], node: ['192.168.0.0/24'], all: ['0.0.0.0/0'] }[s.sourceRanges]!
    const lbs = s.type === 'LoadBalancer' ? Array.from({ length: s.lbIPs }, (_, k) => `1.2.${i}.${k + 1}`) : []
    if (s.type === 'ExternalName') {
      out.push(makeService('ns', name, { type: 'ExternalName', externalName: 'example.com', ports } as never))
      return
    }
    out.push(makeService('ns', name, {
      type: s.type === 'Headless' ? 'ClusterIP' : s.type,
      clusterIP: s.type === 'Headless' ? 'None' : `172.30.${i}.1`,
      ports,
      externalIPs: Array.from({ length: s.externalIPs }, (_, k) => `192.168.99.${i * 4 + k + 1}`),
      ...(s.type !== 'ClusterIP' && s.type !== 'Headless' ? { externalTrafficPolicy: s.etpLocal ? 'Local' : 'Cluster' } : {}),
      internalTrafficPolicy: s.itpLocal ? 'Local' : 'Cluster',
      ...(s.affinity ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } } : {}),
      ...(s.type === 'LoadBalancer' ? { loadBalancerSourceRanges: ranges, healthCheckNodePort: s.etpLocal ? 32000 + i : undefined } : {}),
    } as never, lbs.length ? lbStatus(...lbs) : undefined))
    const slicePorts = s.protocols.map((protocol, j) => ({ name: s.protocols.length === 1 ? '' : `p${j}`, port: 8000 + j, protocol: protocol as 'TCP' }))
    const eps: EP[] = s.endpoints.map((e, k) => {
      const cond = CONDITIONS[i * 8 + k === flip ? (e.state === 'ready' ? 'terminating' : 'ready') : e.state]!
      return { ip: `10.${100 + i}.0.${k + 1}`, node: e.local ? testNodeName : 'node-b', ...cond, ...(e.hint !== 'none' ? { zones: [e.hint] } : {}) }
    })
    for (let n = 0; n < s.slices; n++) {
      const part = s.slices === 1 ? eps : eps.filter((_, k) => k % 2 === n)
      out.push(makeSlice('ns', name, n + 1, part, slicePorts))
    }
  })
  return out
}

interface Target {
  dst: string
  dport: number
  protocol: 'TCP' | 'UDP' | 'SCTP'
}

function packetsFor(p: Proxier, c: ClusterSpec, count: number, rand: () => number, sportBase: number, now: number): Packet[] {
  const frontends: Target[] = []
  for (const s of p.state.servicePorts()) for (const f of s.frontends) frontends.push({ dst: f.address, dport: f.port, protocol: f.protocol })
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const podIPs = c.services.flatMap((s: ServiceSpec, i) => s.endpoints.map((_, k) => `10.${100 + i}.0.${k + 1}`))
  const lbIPs = frontends.filter((f) => f.dst.startsWith('1.2.')).map((f) => f.dst)
  const out: Packet[] = []
  for (let n = 0; n < count; n++) {
    let target: Target
    const r = rand()
    if (frontends.length > 0 && r < 0.8) {
      target = { ...pick(frontends) }
      if (rand() < 0.08) target.protocol = pick(['TCP', 'UDP', 'SCTP'] as const)
      if (rand() < 0.04) target.dport += 1
    } else {
      target = { dst: pick(['10.99.0.1', '172.30.200.1', testNodeIP, '8.8.8.8']), dport: pick([80, 443, 30001]), protocol: pick(['TCP', 'UDP'] as const) }
    }
    let src: string
    if (target.dst === '127.0.0.1') src = '127.0.0.1'
    else {
      const s = rand()
      if (s < 0.3 && podIPs.length > 0) src = pick(podIPs)
      else if (s < 0.45) src = `10.0.${Math.floor(rand() * 4)}.${2 + Math.floor(rand() * 50)}`
      else if (s < 0.6) src = testNodeIP
      else if (s < 0.85) src = pick(['203.0.113.5', '203.0.113.200', '198.51.100.7', '192.168.0.77'])
      else if (lbIPs.length > 0 && s < 0.92) src = pick(lbIPs)
      else src = '198.51.100.99'
    }
    const hook = src === testNodeIP || src === '127.0.0.1' ? 'output' : 'prerouting'
    out.push({ src, sport: sportBase + n, ...target, hook, now })
  }
  return out
}

const hairpin = (src: string, endpoint: string) => endpoint.replace(/^\[?(.*?)\]?:\d+$/, '$1') === src

let packetsCompared = 0
let dnats = 0
let nodeToExternalWithoutEndpoints = 0
const MIN_PACKETS = 100_000

function compareCluster(c: ClusterSpec): void {
  const base = {
    nodeName: testNodeName, nodeIPs: [testNodeIP], podCIDRs: c.detector ? ['10.0.0.0/8'] : [],
    zone: c.zone, masqueradeAll: c.masqueradeAll, iptables: { localhostNodePorts: c.localhostNodePorts }, seed: c.seed,
    native: { capacity: { services: 64, frontends: 256, backends: 256, conntrack: 1 << 14, affinity: 1 << 12 } },
  }
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
