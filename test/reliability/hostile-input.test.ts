// Hostile input through the public API (fast-check): random and malformed Services,
// EndpointSlices, Lists, packets (tuples and raw frames), captures and iptables rule texts,
// and random calls of every public Dataplane, FlowBatch/DecisionBatch and Proxier method.
// Every call either succeeds or throws one of the library's typed errors (never a crash,
// never JavaScript's own "Cannot read properties of undefined"); a Dataplane call that throws
// changes nothing; and the maps' invariants (counts, links between services, frontends,
// reverse NAT, backends, conntrack, affinity, NAT ports; helpers/invariants.ts) hold after
// every step. At least 100,000 inputs in total (RELIABILITY_SCALE multiplies every count).
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  Dataplane,
  DecisionBatch,
  FlowBatch,
  IptablesEvaluator,
  PacketReplies,
  Proxier,
  addressFamily,
  canonicalAddress,
  objectKey,
  parseCidr,
  parseEndpointSlice,
  parseIptablesSave,
  parseObjects,
  parseService,
  readCapture,
  runPcap,
  serializeIptables,
  splitObjects,
} from '../../lib/index.js'
import type { Flow } from '../../lib/index.js'
import { checkInvariants } from './helpers/invariants.js'
import {
  CLIENT_IPS, CLUSTER_IPS, ENDPOINT_IPS, NODE_IP, PORTS, attempt, expectTyped, junk, maybe, routePacketArb, runs, serviceArb, sliceArb, tally, tallyTotal,
} from './helpers/hostile.js'
import { batch, build, pcapFile } from '../packet/builder.js'

const SEED = Number(process.env.RELIABILITY_SEED ?? 20261125)
const assertOpts = (numRuns: number) => ({ numRuns: runs(numRuns), seed: SEED, endOnFailure: true })

function invariantsHold(t: Test, dp: Dataplane | undefined, where: string): void {
  if (!dp) return
  const bad = checkInvariants(dp)
  if (bad.length) throw new Error(`${where}: map invariants broken:\n  ${bad.join('\n  ')}`)
}
// tap's Test type, without importing tap's internals.
t.test('object loaders: random and malformed Services and EndpointSlices', async (t) => {
  fc.assert(
    fc.property(serviceArb, (svc) => {
      tally.services++
      attempt('parseService', () => {
        const v = parseService(svc)
        if (typeof v.key !== 'string' || !v.key.includes('/')) throw new Error(`parseService gave a bad key ${v.key}`)
        for (const p of v.ports) if (!(p.port >= 1 && p.port <= 65535)) throw new Error(`parseService accepted port ${p.port}`)
      })
      attempt('objectKey(Service)', () => objectKey('Service', svc))
    }),
    assertOpts(20000),
  )
  fc.assert(
    fc.property(sliceArb, (slice) => {
      tally.endpointSlices++
      attempt('parseEndpointSlice', () => {
        const v = parseEndpointSlice(slice)
        for (const e of v.endpoints) if (v.addressType !== 'FQDN' && canonicalAddress(e.address) !== e.address) throw new Error(`endpoint address not canonical: ${e.address}`)
      })
      attempt('objectKey(EndpointSlice)', () => objectKey('EndpointSlice', slice))
    }),
    assertOpts(20000),
  )
  // Not even shaped like objects.
  fc.assert(
    fc.property(fc.anything({ maxDepth: 3 }), (x) => {
      tally.services++
      tally.endpointSlices++
      attempt('parseService(anything)', () => parseService(x))
      attempt('parseEndpointSlice(anything)', () => parseEndpointSlice(x))
    }),
    assertOpts(5000),
  )
  // Lists: arrays, List objects and JSON text (valid, truncated, garbage).
  const listArb = fc.oneof(
    fc.array(fc.oneof(serviceArb, sliceArb, junk), { maxLength: 6 }),
    fc.record({ kind: fc.constantFrom('List', 'ServiceList', 'EndpointSliceList', 'PodList'), items: fc.array(fc.oneof(serviceArb, sliceArb), { maxLength: 4 }) }),
    fc.tuple(fc.array(fc.oneof(serviceArb, sliceArb), { maxLength: 4 }), fc.nat(), fc.boolean()).map(([items, cut, truncate]) => {
      const text = JSON.stringify({ kind: 'List', items }, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))
      return truncate ? text.slice(0, cut % (text.length + 1)) : text
    }),
    fc.string({ maxLength: 40 }),
  )
  fc.assert(
    fc.property(listArb, (list) => {
      tally.lists++
      attempt('splitObjects', () => splitObjects(list))
      attempt('parseObjects', () => parseObjects(list))
    }),
    assertOpts(4000),
  )
  t.pass(`${tally.services} Services, ${tally.endpointSlices} EndpointSlices, ${tally.lists} lists: typed errors only`)
})

// ---------------------------------------------------------------------------------------
// Proxier: random sequences of every public method, invariants of its dataplane after each.

type ProxierOp =
  | ['applyService', unknown]
  | ['deleteService', unknown]
  | ['applyEndpointSlice', unknown]
  | ['deleteEndpointSlice', unknown]
  | ['applyList', unknown]
  | ['sync']
  | ['route', unknown]
  | ['explain', unknown]
  | ['healthChecks']
  | ['iptablesRestore', unknown]
  | ['tick', number]

const proxierOp: fc.Arbitrary<ProxierOp> = fc.oneof(
  { weight: 5, arbitrary: serviceArb.map((s): ProxierOp => ['applyService', s]) },
  { weight: 1, arbitrary: fc.oneof(serviceArb, fc.constantFrom('ns1/a', 'ns2/b', 'bogus', '/x')).map((s): ProxierOp => ['deleteService', s]) },
  { weight: 5, arbitrary: sliceArb.map((s): ProxierOp => ['applyEndpointSlice', s]) },
  { weight: 1, arbitrary: fc.oneof(sliceArb, fc.constantFrom('ns1/a-1', 'ns1/b-1', 'x')).map((s): ProxierOp => ['deleteEndpointSlice', s]) },
  { weight: 1, arbitrary: fc.array(fc.oneof(serviceArb, sliceArb), { maxLength: 4 }).map((l): ProxierOp => ['applyList', { kind: 'List', items: l }]) },
  { weight: 4, arbitrary: fc.constant<ProxierOp>(['sync']) },
  { weight: 8, arbitrary: routePacketArb.map((p): ProxierOp => ['route', p]) },
  { weight: 1, arbitrary: routePacketArb.map((p): ProxierOp => ['explain', p]) },
  { weight: 1, arbitrary: fc.constant<ProxierOp>(['healthChecks']) },
  // Not null: iptablesRestore(null) is a known bug (known-bugs.test.ts).
  { weight: 1, arbitrary: maybe(fc.record({ partial: fc.boolean() }, { requiredKeys: [] })).map((r): ProxierOp => ['iptablesRestore', r === null ? undefined : r]) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 200 }).map((s): ProxierOp => ['tick', s]) },
)

function runProxier(mode: 'native' | 'iptables', ops: ProxierOp[]): void {
  let clock = 1000
  const p = new Proxier({
    mode,
    nodeName: 'test-node',
    nodeIPs: [NODE_IP, '2001:db8::2'],
    podCIDRs: ['10.0.0.0/8', 'fd00:10::/64'],
    zone: 'a',
    seed: 7,
    native: { capacity: { services: 32, frontends: 128, backends: 64, conntrack: 128, affinity: 32 } },
    timeouts: { udp: 5, tcpSynSent: 20 },
    clock: () => clock,
  })
  for (const [i, op] of ops.entries()) {
    tally.proxierCalls++
    const where = `${mode} step ${i} ${op[0]}`
    switch (op[0]) {
      case 'applyService': tally.services++; attempt(where, () => p.applyService(op[1])); break
      case 'deleteService': attempt(where, () => p.deleteService(op[1])); break
      case 'applyEndpointSlice': tally.endpointSlices++; attempt(where, () => p.applyEndpointSlice(op[1])); break
      case 'deleteEndpointSlice': attempt(where, () => p.deleteEndpointSlice(op[1])); break
      case 'applyList': tally.lists++; attempt(where, () => p.applyList(op[1])); break
      case 'sync': {
        const s = p.sync()
        // A service whose programming failed keeps its previous state: the error must be typed.
        for (const e of s.errors) expectTyped(e.error, `${where}: sync error of ${e.service}`)
        break
      }
      case 'route':
      case 'explain': {
        tally.tuples++
        attempt(where, () => {
          const r = op[0] === 'route' ? p.route(op[1] as never) : p.explain(op[1] as never).result
          if (!['dnat', 'reject', 'drop', 'accept'].includes(r.action)) throw new Error(`${where}: unknown action ${r.action}`)
        })
        break
      }
      case 'healthChecks': p.healthChecks(); break
      case 'iptablesRestore': attempt(where, () => p.iptablesRestore(op[1] as never)); break
      case 'tick': clock += op[1]; break
    }
    if (op[0] === 'sync' || op[0] === 'route' || op[0] === 'explain') invariantsHold(t, p.dataplane, where)
  }
  p.dataplane?.destroy()
}

t.test('Proxier (native): random sequences of every public method keep the dataplane consistent', async (t) => {
  fc.assert(fc.property(fc.array(proxierOp, { minLength: 5, maxLength: 40 }), (ops) => runProxier('native', ops)), assertOpts(500))
  t.pass('typed errors only, invariants after every sync and route')
})

t.test('Proxier (iptables): random sequences render, parse and walk without untyped errors', async (t) => {
  fc.assert(fc.property(fc.array(proxierOp, { minLength: 5, maxLength: 25 }), (ops) => runProxier('iptables', ops)), assertOpts(100))
  t.pass('typed errors only')
})

// ---------------------------------------------------------------------------------------
// iptables-save text: grammar-built rule texts, and mutations of real dumps.

const fixtureDir = join(__dirname, '..', 'iptables', 'fixtures')
const FIXTURES = ['node-a.iptables-save.txt', 'calico-node.iptables-save.txt', 'kube-proxy-restore.txt'].map((f) => readFileSync(join(fixtureDir, f), 'utf8'))
const FIXTURE_LINES = FIXTURES.flatMap((f) => f.split('\n'))

const chain = fc.constantFrom('PREROUTING', 'OUTPUT', 'POSTROUTING', 'INPUT', 'FORWARD', 'KUBE-SERVICES', 'KUBE-SVC-ABC', 'KUBE-SEP-XYZ', 'KUBE-MARK-MASQ', 'NOPE')
const matchArb = fc.oneof(
  fc.ipV4().map((a) => `-d ${a}/32`),
  fc.ipV4().map((a) => `! -s ${a}/24`),
  fc.constantFrom('-p tcp', '-p udp', '-p sctp', '-p icmp', '-p 300', '-p'),
  fc.integer({ min: -1, max: 70000 }).map((p) => `-m tcp --dport ${p}`),
  fc.constantFrom('-m comment --comment "ns1/a:http cluster IP"', '-m comment --comment "unterminated', '-m addrtype --dst-type LOCAL', '-m conntrack --ctstate NEW,ESTABLISHED'),
  fc.double({ min: -1, max: 2 }).map((p) => `-m statistic --mode random --probability ${p}`),
  fc.constantFrom('-m mark --mark 0x4000/0x4000', '-m recent --name X --rcheck --seconds 10800 --reap', '-m set --match-set foo src', '-i eth0', '-o lo', '-m physdev --physdev-is-in', '--bogus-option'),
  fc.string({ maxLength: 10 }),
)
const targetArb = fc.oneof(
  chain.map((c) => `-j ${c}`),
  fc.constantFrom('-j ACCEPT', '-j DROP', '-j RETURN', '-j REJECT --reject-with icmp-port-unreachable', '-j MARK --or-mark 0x4000', '-j MASQUERADE --random-fully', '-j SNAT --to-source 1.2.3.4'),
  fc.tuple(fc.ipV4(), fc.integer({ min: -1, max: 70000 })).map(([a, p]) => `-j DNAT --to-destination ${a}:${p}`),
  fc.constantFrom('-j', '-g KUBE-SVC-ABC', ''),
)
const lineArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('*nat', '*filter', '*mangle', '*raw', '*bogus', 'COMMIT', '# comment', '', '   ') },
  { weight: 2, arbitrary: fc.tuple(chain, fc.constantFrom('-', 'ACCEPT', 'DROP', 'X'), fc.constantFrom('[0:0]', '[1:60]', '[x:1]', '')).map(([c, p, k]) => `:${c} ${p} ${k}`) },
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom('-A', '-I', '-D', '-R', '-N', '-X', '-F', '-P', '-E', '-Z', '--append', '-Q'), chain, fc.array(matchArb, { maxLength: 4 }), targetArb).map(([cmd, c, m, j]) => `${cmd} ${c} ${m.join(' ')} ${j}`) },
  { weight: 1, arbitrary: fc.constantFrom(...FIXTURE_LINES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
)
const grammarText = fc.array(lineArb, { maxLength: 14 }).map((lines) => lines.join('\n'))
const mutatedFixture = fc.tuple(fc.constantFrom(...FIXTURES), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 4 })).map(([text, edits]) => {
  let s = text
  for (const [at, del, ins] of edits) {
    const i = at % (s.length + 1)
    s = s.slice(0, i) + ins + s.slice(i + del)
  }
  return s
})
const wellFormed = fc.tuple(fc.constantFrom('*nat', '*filter'), fc.array(fc.tuple(fc.constantFrom('KUBE-SERVICES', 'KUBE-SVC-ABC', 'OUTPUT', 'PREROUTING'), fc.array(matchArb, { maxLength: 3 }), targetArb), { maxLength: 6 })).map(
  ([table, rules]) => `${table}\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-ABC - [0:0]\n:KUBE-SEP-XYZ - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n${rules.map(([c, m, j]) => `-A ${c} ${m.join(' ')} ${j}`).join('\n')}\nCOMMIT\n`,
)

t.test('iptables-save parser, serializer and evaluator: random and mutated rule texts', async (t) => {
  let parsed = 0
  let walked = 0
  fc.assert(
    fc.property(fc.oneof(grammarText, mutatedFixture, wellFormed), fc.boolean(), fc.boolean(), fc.array(routePacketArb, { maxLength: 3 }), (text, noflush, requireCommit, packets) => {
      tally.ruleTexts++
      let doc: ReturnType<typeof parseIptablesSave> | undefined
      attempt('parseIptablesSave', () => (doc = parseIptablesSave(text, { noflush, requireCommit })))
      if (!doc) return
      parsed++
      // What parses serializes, and that text parses again to the same text.
      const again = serializeIptables(doc)
      const doc2 = parseIptablesSave(again, { noflush, requireCommit })
      if (serializeIptables(doc2) !== again) throw new Error('serialize(parse(serialize(doc))) differs from serialize(doc)')
      let ev: IptablesEvaluator | undefined
      attempt('new IptablesEvaluator', () => (ev = new IptablesEvaluator(doc!)))
      if (!ev) return
      for (const p of packets) {
        tally.tuples++
        walked++
        // evaluate() is given EvalPackets of the right field types (bad values, but strings
        // where it wants strings): it does not check types (known-bugs.test.ts).
        const q = p as { src: unknown; dst: unknown; protocol: unknown; tcpFlags?: unknown }
        const text = (v: unknown) => (typeof v === 'string' ? v : String(v))
        const flags = q.tcpFlags
        const names = typeof flags === 'number' ? ['FIN', 'SYN', 'RST', 'PSH', 'ACK'].filter((_, i) => flags & (1 << i)) : undefined
        const protocol = typeof q.protocol === 'string' || typeof q.protocol === 'number' ? q.protocol : 'tcp'
        const hook = (p as { hook?: string }).hook === 'output' ? 'output' : 'prerouting'
        attempt('evaluate', () => ev!.evaluate({ ...(p as object), src: text(q.src), dst: text(q.dst), protocol, tcpFlags: names, hook } as never))
      }
      attempt('counters', () => ev!.counters({ all: true }))
    }),
    assertOpts(24000),
  )
  t.pass(`${tally.ruleTexts} rule texts (${parsed} parsed, ${walked} packets walked): typed errors only`)
})

// ---------------------------------------------------------------------------------------
// Dataplane: random calls of every public method.

const idArb = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: junk })
const addrArb = fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...CLUSTER_IPS, ...ENDPOINT_IPS, ...CLIENT_IPS) }, { weight: 1, arbitrary: junk })
const portArb = fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...PORTS) }, { weight: 1, arbitrary: junk })
const protoArb = fc.oneof({ weight: 10, arbitrary: fc.constantFrom('TCP', 'UDP', 'SCTP') }, { weight: 1, arbitrary: junk })
const scopeArb = fc.oneof({ weight: 10, arbitrary: fc.constantFrom('internal', 'external') }, { weight: 1, arbitrary: junk })
const flowArb = fc.record(
  { src: addrArb, sport: fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 65535 }) }, { weight: 1, arbitrary: junk }), dst: addrArb, dport: portArb, protocol: protoArb, scope: scopeArb, tcpFlags: maybe(fc.constantFrom(0, 2, 0x10, 0x12, 0x11, 4)), bytes: maybe(fc.nat()) },
  { requiredKeys: ['src', 'sport', 'dst', 'dport', 'protocol'] },
)
const backendArb = fc.record(
  { id: idArb, address: addrArb, port: portArb, state: maybe(fc.constantFrom('active', 'terminating', 'quarantined')), weight: maybe(fc.integer({ min: 1, max: 5 })), nodeLocal: maybe(fc.boolean()), zone: maybe(fc.constantFrom('a', 'b')) },
  { requiredKeys: ['id', 'address', 'port'] },
)
const frontendArb = maybe(
  fc.record(
    { address: addrArb, port: portArb, protocol: protoArb, scope: scopeArb, checkSourceRanges: maybe(fc.boolean()), masquerade: maybe(fc.constantFrom('never', 'always', 'outside-pod-cidrs', 'from-node')) },
    { requiredKeys: ['address', 'port', 'protocol', 'scope'] },
  ),
)
const serviceSpecArb = fc.record(
  {
    id: idArb,
    frontends: maybe(fc.array(frontendArb, { maxLength: 3 })),
    backends: maybe(fc.array(idArb, { maxLength: 5 })),
    scheduler: maybe(fc.constantFrom('random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh')),
    affinityTimeout: maybe(fc.constantFrom(0, 5, 10800)),
    sourceRanges: maybe(fc.array(maybe(fc.constantFrom('10.0.0.0/8', '203.0.113.0/24', 'fd00::/8')), { maxLength: 2 })),
    emptyVerdict: maybe(fc.constantFrom('reject', 'drop')),
  },
  { requiredKeys: ['id', 'frontends', 'backends'] },
)
const nowArb = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 400 }) }, { weight: 1, arbitrary: junk })

type DpOp = [string, ...unknown[]]
const dpOp: fc.Arbitrary<DpOp> = fc.oneof(
  { weight: 6, arbitrary: backendArb.map((b): DpOp => ['upsertBackend', b]) },
  { weight: 1, arbitrary: idArb.map((id): DpOp => ['deleteBackend', id]) },
  { weight: 6, arbitrary: serviceSpecArb.map((s): DpOp => ['upsertService', s]) },
  { weight: 1, arbitrary: idArb.map((id): DpOp => ['deleteService', id]) },
  { weight: 10, arbitrary: fc.tuple(flowArb, nowArb).map(([f, n]): DpOp => ['decide', f, n]) },
  { weight: 4, arbitrary: fc.tuple(fc.array(flowArb, { maxLength: 20 }), nowArb).map(([fs, n]): DpOp => ['decideBatch', fs, n]) },
  { weight: 2, arbitrary: flowArb.map((f): DpOp => ['lookupFlow', f]) },
  { weight: 1, arbitrary: maybe(fc.integer({ min: 1, max: 5 })).map((p): DpOp => ['flows', p]) },
  { weight: 1, arbitrary: idArb.map((id): DpOp => ['deleteFlowsByBackend', id]) },
  { weight: 1, arbitrary: idArb.map((id): DpOp => ['deleteFlowsByService', id]) },
  { weight: 1, arbitrary: fc.constant<DpOp>(['flushConntrack']) },
  { weight: 2, arbitrary: fc.tuple(nowArb, maybe(fc.integer({ min: 1, max: 64 }))).map(([n, b]): DpOp => ['gc', n, b]) },
  { weight: 1, arbitrary: maybe(fc.constantFrom('services', 'frontends', 'backends', 'revnat', 'affinity', 'conntrack')).map((n): DpOp => ['map', n]) },
  { weight: 1, arbitrary: idArb.map((id): DpOp => ['maglevTable', id]) },
  { weight: 1, arbitrary: maybe(fc.record({ udp: maybe(fc.integer({ min: 1, max: 100 })), tcpEstablished: maybe(fc.integer({ min: 1, max: 1000 })) }, { requiredKeys: [] })).map((x): DpOp => ['setTimeouts', x]) },
  {
    weight: 1,
    arbitrary: maybe(
      fc.record(
        {
          nodeAddresses: maybe(fc.array(addrArb, { maxLength: 2 })),
          podCIDRs: maybe(fc.array(maybe(fc.constantFrom('10.0.0.0/8', 'fd00:10::/64', '10.0.1.0/30')), { maxLength: 2 })),
          masqueradeAddresses: maybe(fc.array(addrArb, { maxLength: 2 })),
          masqueradeAll: maybe(fc.boolean()),
          natPortRange: maybe(fc.tuple(fc.integer({ min: 0, max: 65536 }), fc.integer({ min: 0, max: 65536 }))),
          fragmentTimeout: maybe(fc.integer({ min: 0, max: 60 })),
        },
        { requiredKeys: [] },
      ),
    ).map((c): DpOp => ['configurePackets', c]),
  },
  { weight: 3, arbitrary: fc.tuple(fc.array(fc.tuple(flowArb, fc.nat({ max: 6 })), { maxLength: 8 }), nowArb, fc.constantFrom('to-service', 'from-backend', 'sideways'), fc.boolean()).map(([fs, n, dir, eth]): DpOp => ['processPackets', fs, n, dir, eth]) },
  { weight: 1, arbitrary: fc.constantFrom<DpOp>(['maps'], ['services'], ['backends'], ['frontends'], ['revnat'], ['affinity'], ['counters'], ['packetCounters'], ['packetMaps'], ['natPorts'], ['packetConfig'], ['getTimeouts']) },
)

/** A frame built from a (possibly junk) flow: the builder's, then a few bytes mutated. */
function frameOf(f: Record<string, unknown>, mutate: number, ethernet: boolean): Uint8Array {
  const ok = (v: unknown, fallback: string) => (typeof v === 'string' && canonicalAddress(v) !== undefined ? v : fallback)
  let src = ok(f.src, '203.0.113.2')
  let dst = ok(f.dst, '172.30.0.1')
  if (addressFamily(src) !== addressFamily(dst)) dst = addressFamily(src) === 6 ? 'fd00:30::1' : '172.30.0.1'
  if (src.startsWith('::ffff:')) src = '203.0.113.2'
  const proto = f.protocol === 'UDP' || f.protocol === 'SCTP' ? f.protocol : 'TCP'
  const port = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : d)
  const b = build({ src, dst, proto, sport: port(f.sport, 40000), dport: port(f.dport, 80), flags: typeof f.tcpFlags === 'number' ? f.tcpFlags : 2, payload: 8, ethernet }).bytes
  for (let k = 0; k < mutate; k++) b[(k * 7919 + mutate * 31) % b.length] ^= 1 << k % 8
  return mutate > 4 ? b.subarray(0, (mutate * 13) % (b.length + 1)) : b
}

function snapshot(dp: Dataplane): string {
  return JSON.stringify({ s: dp.services(), b: dp.backends(), f: dp.frontends(), r: dp.revnat(), a: dp.affinity(), c: [...dp.flows()], m: dp.maps(), n: dp.natPorts(), k: dp.counters(), p: dp.packetConfig(), t: dp.getTimeouts() })
}

function runDataplane(ops: DpOp[], policy: 'evict-oldest' | 'refuse'): void {
  const dp = new Dataplane({
    seed: 3n,
    capacity: { services: 4, frontends: 8, backends: 6, conntrack: 24, affinity: 6, natPorts: 6, fragments: 4 },
    conntrackFullPolicy: policy,
    affinityFullPolicy: policy,
    maglevTableSize: 251,
  })
  const batchIn = new FlowBatch(20)
  const batchOut = new DecisionBatch(20)
  const replies = new PacketReplies(4096, 8)
  for (const [i, [name, ...args]] of ops.entries()) {
    tally.dataplaneCalls++
    const where = `step ${i} ${name}`
    const before = snapshot(dp)
    let threw = false
    try {
      switch (name) {
        case 'decide': tally.tuples++; dp.decide(args[0] as Flow, args[1] as number); break
        case 'decideBatch': {
          const flows = args[0] as Flow[]
          batchIn.length = 0
          for (const f of flows) {
            tally.tuples++
            // A bad flow is refused by push() before the batch is touched by the core.
            if (!attempt(`${where}: FlowBatch.push`, () => batchIn.push(f))) continue
          }
          dp.decideBatch(batchIn, args[1] as number, batchOut)
          for (let k = 0; k < batchIn.length; k++) {
            if (!['pass', 'forward', 'reply', 'reject', 'drop'].includes(batchOut.verdict(k))) throw new Error(`${where}: verdict ${batchOut.verdictCode(k)}`)
            batchOut.reason(k)
            batchOut.address(k)
          }
          break
        }
        case 'processPackets': {
          const [flows, now, dir, eth] = args as [Array<[Record<string, unknown>, number]>, number, string, boolean]
          const frames = flows.map(([f, m]) => frameOf(f, m, eth))
          tally.frames += frames.length
          const { buffer, offsets, lengths } = batch(frames.length ? frames : [new Uint8Array(0)])
          const n = frames.length
          dp.processPackets(buffer, offsets, lengths, n, { direction: dir as never, now, linkType: eth ? 'ethernet' : 'raw', replies }, new Uint8Array(n), new Uint8Array(n))
          break
        }
        case 'flows': Array.from(dp.flows(args[0] as number)); break
        case 'lookupFlow': dp.lookupFlow(args[0] as Flow); break
        default: (dp as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args)
      }
    } catch (e) {
      expectTyped(e, where)
      threw = true
    }
    if (threw && snapshot(dp) !== before) throw new Error(`${where}: threw and changed the dataplane`)
    invariantsHold(t, dp, where)
  }
  dp.destroy()
}

t.test('Dataplane: random calls of every public method', async (t) => {
  fc.assert(fc.property(fc.array(dpOp, { minLength: 10, maxLength: 60 }), fc.constantFrom('evict-oldest' as const, 'refuse' as const), runDataplane), assertOpts(450))
  t.pass('typed errors only; a call that throws changes nothing; invariants after every call')
})

t.test('raw frames: random bytes and mutated packets through processPackets; captures through readCapture/runPcap', async (t) => {
  const dp = new Dataplane({ seed: 5n, capacity: { services: 8, frontends: 16, backends: 8, conntrack: 64, affinity: 8, natPorts: 8, fragments: 8 } })
  dp.configurePackets({ nodeAddresses: [NODE_IP, '2001:db8::2'], podCIDRs: ['10.0.0.0/8', 'fd00:10::/64'] })
  ENDPOINT_IPS.forEach((a, i) => dp.upsertBackend({ id: i + 1, address: a, port: 8080 }))
  dp.upsertService({ id: 1, backends: [1, 2, 3], frontends: [{ address: '172.30.0.1', port: 80, protocol: 'TCP', scope: 'external', masquerade: 'outside-pod-cidrs' }, { address: '172.30.0.1', port: 53, protocol: 'UDP', scope: 'external', masquerade: 'always' }] })
  dp.upsertService({ id: 2, backends: [5, 6], frontends: [{ address: 'fd00:30::1', port: 80, protocol: 'TCP', scope: 'external', masquerade: 'always' }] })
  dp.upsertService({ id: 3, backends: [], frontends: [{ address: '172.30.0.2', port: 80, protocol: 'TCP', scope: 'external' }] })
  const replies = new PacketReplies(1 << 16, 32)
  let now = 1
  const frameArb = fc.oneof(
    fc.uint8Array({ maxLength: 120 }),
    fc.tuple(flowArb, fc.nat({ max: 10 }), fc.boolean()).map(([f, m, e]) => frameOf(f as Record<string, unknown>, m, e)),
  )
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 32 }), fc.constantFrom('to-service', 'from-backend'), fc.boolean(), fc.constantFrom('icmp-port-unreachable', 'tcp-reset', 'none'), (frames, direction, eth, rejectWith) => {
      tally.frames += frames.length
      const { buffer, offsets, lengths } = batch(frames)
      const v = new Uint8Array(frames.length)
      const r = new Uint8Array(frames.length)
      now += 0.5
      dp.processPackets(buffer, offsets, lengths, frames.length, { direction: direction as never, now, linkType: eth ? 'ethernet' : 'raw', replies, rejectWith: rejectWith as never }, v, r)
      for (let i = 0; i < frames.length; i++) if (v[i]! > 4 || r[i]! >= 18) throw new Error(`verdict ${v[i]} reason ${r[i]}`)
      if (replies.used > replies.buffer.length) throw new Error('reply buffer overrun')
      invariantsHold(t, dp, 'processPackets')
    }),
    assertOpts(700),
  )
  // Offsets and lengths that point outside the buffer: a RangeError, nothing processed.
  fc.assert(
    fc.property(fc.nat({ max: 200 }), fc.nat({ max: 200 }), fc.nat({ max: 100 }), (off, len, size) => {
      tally.frames++
      const before = dp.packetCounters().packets
      attempt('processPackets bounds', () => dp.processPackets(new Uint8Array(size), Uint32Array.of(off), Uint32Array.of(len), 1, { direction: 'to-service', now }, new Uint8Array(1), new Uint8Array(1)))
      if (off + len > size && dp.packetCounters().packets !== before) throw new Error('an out-of-bounds packet was processed')
    }),
    assertOpts(2000),
  )
  // Captures: random bytes, and valid pcap files with random frames, truncated anywhere.
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 4 }), fc.nat(), fc.constantFrom(1, 101, 228, 229, 7)).map(([fs, cut, lt]) => {
      const f = pcapFile(fs, lt)
      return f.subarray(0, cut % (f.length + 1) || f.length)
    })), (bytes) => {
      tally.captures++
      attempt('readCapture', () => readCapture(bytes))
      attempt('runPcap', () => runPcap({ dataplane: dp, in: bytes }))
    }),
    assertOpts(3000),
  )
  invariantsHold(t, dp, 'after captures')
  t.pass(`${tally.frames} frames, ${tally.captures} captures`)
})

t.test('address helpers: random text', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 45 }), fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.constant('1.2.3.4/33')), (s) => {
      tally.tuples++
      const c = canonicalAddress(s)
      if (c !== undefined && canonicalAddress(c) !== c) throw new Error(`canonicalAddress not idempotent: ${s} -> ${c} -> ${canonicalAddress(c)}`)
      const p = parseCidr(s)
      if (p && parseCidr(p.text)?.text !== p.text) throw new Error(`parseCidr not idempotent: ${s}`)
      attempt('addressFamily', () => addressFamily(s))
    }),
    assertOpts(6000),
  )
  t.pass('idempotent, typed errors only')
})

t.test('inputs tried in total', async (t) => {
  const total = tallyTotal()
  t.comment(`inputs: ${JSON.stringify(tally)} total ${total}`)
  if (runs(1) === 1 && Number(process.env.RELIABILITY_SCALE ?? 1) >= 1) t.ok(total >= 100_000, `${total} inputs (at least 100,000)`)
  else t.pass(`${total} inputs at RELIABILITY_SCALE=${process.env.RELIABILITY_SCALE}`)
})
