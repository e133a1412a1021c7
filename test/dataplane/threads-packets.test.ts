// Dataplane({ threads: N }).processPackets fans a batch out over N native threads: on a mixed
// batch (IPv4/IPv6 TCP/UDP/SCTP towards services, rejects with replies, traffic to no service,
// fragments, ICMP errors both ways, replies from the backends) every output frame, verdict,
// reason, reject reply and counter is what one thread gives; masqueraded flows' replies come
// home through their NAT port's shard; an empty batch and destroy while idle are harmless.
import t from 'tap'
import { Dataplane } from '../../lib/dataplane/dataplane.js'
import { PACKET_REASONS, PACKET_VERDICT, PacketReplies } from '../../lib/dataplane/packets.js'
import { addrAt, batch, build, checksumProblems, expectedIpv4Checksum, onesSum, portAt, type Proto } from '../packet/builder.js'

const VIP = '172.30.0.41'
const VIP6 = 'fd00::41'
const VIP_EMPTY = '172.30.0.99'
const NODE = '192.168.0.2'
const BACKENDS = ['10.180.0.1', '10.180.0.2', '10.180.0.3', '10.180.0.4']
const BACKENDS6 = ['fd00:1::1', 'fd00:1::2']

function client(k: number): string {
  return `192.168.${1 + (k >> 7)}.${(k & 127) + 1}`
}

function makeDataplane(threads: number, masquerade: 'never' | 'always' = 'never'): Dataplane {
  const dp = new Dataplane({ threads, seed: 7n, capacity: { services: 8, frontends: 32, backends: 16, conntrack: 8192, affinity: 64, natPorts: 4096, fragments: 64 } })
  BACKENDS.forEach((address, i) => dp.upsertBackend({ id: i + 1, address, port: 8080 }))
  BACKENDS6.forEach((address, i) => dp.upsertBackend({ id: 11 + i, address, port: 8080 }))
  const fes = (address: string) => (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({ address, port: 80, protocol, scope: 'external' as const, masquerade }))
  dp.upsertService({ id: 1, frontends: fes(VIP), backends: [1, 2, 3, 4], scheduler: 'maglev' })
  dp.upsertService({ id: 2, frontends: fes(VIP6), backends: [11, 12], scheduler: 'maglev' })
  dp.upsertService({ id: 3, frontends: fes(VIP_EMPTY), backends: [] })
  if (masquerade !== 'never') dp.configurePackets({ nodeAddresses: [NODE] })
  return dp
}

function setIpv4(p: Uint8Array, totalLength: number, fragmentField: number): Uint8Array {
  p[2] = totalLength >> 8
  p[3] = totalLength & 0xff
  p[6] = fragmentField >> 8
  p[7] = fragmentField & 0xff
  p[10] = p[11] = 0
  const c = expectedIpv4Checksum(p, 0)
  p[10] = c >> 8
  p[11] = c & 0xff
  return p
}

/** An IPv4 UDP datagram in two fragments: the first with the UDP header, then the rest. */
function fragments(src: string, dst: string, sport: number, dport: number, ipId: number): [Uint8Array, Uint8Array] {
  const whole = build({ src, dst, proto: 'UDP', sport, dport, payload: 48, ipId }).bytes
  const first = setIpv4(whole.slice(0, 20 + 24), 20 + 24, 0x2000)
  const later = new Uint8Array(20 + 32)
  later.set(whole.subarray(0, 20))
  later.set(whole.subarray(20 + 24), 20)
  return [first, setIpv4(later, 20 + 32, 24 / 8)]
}

/** ICMPv4 port unreachable from `src` to `dst` quoting the first 28 bytes of `quoted`. */
function icmpError(src: string, dst: string, quoted: Uint8Array): Uint8Array {
  const p = build({ src, dst, proto: 'ICMP', payload: 28 }).bytes
  p[20] = 3
  p[21] = 3
  p[22] = p[23] = 0
  p.fill(0, 24, 28)
  p.set(quoted.subarray(0, 28), 28)
  const c = ~onesSum(p, 20, p.length) & 0xffff
  p[22] = c >> 8
  p[23] = c & 0xff
  return setIpv4(p, p.length, 0)
}

type Run = { out: Uint8Array[]; verdicts: number[]; reasons: string[]; replies: Uint8Array[]; used: number }

function run(dp: Dataplane, packets: Uint8Array[], direction: 'to-service' | 'from-backend', now: number): Run {
  const b = batch(packets)
  const verdicts = new Uint8Array(packets.length)
  const reasons = new Uint8Array(packets.length)
  const replies = new PacketReplies(1 << 16, packets.length)
  dp.processPackets(b.buffer, b.offsets, b.lengths, packets.length, { direction, now, linkType: 'raw', replies }, verdicts, reasons)
  return {
    out: packets.map((_, i) => b.buffer.slice(b.offsets[i], b.offsets[i] + b.lengths[i])),
    verdicts: [...verdicts],
    reasons: [...reasons].map((r) => PACKET_REASONS[r]),
    replies: packets.map((_, i) => replies.reply(i) ?? new Uint8Array(0)),
    used: replies.used,
  }
}

/** Every packet of the mixed batch towards the services, and what the test needs to answer it. */
function towardsServices(clients: number): { packets: Uint8Array[]; flows: Array<{ i: number; src: string; sport: number; proto: Proto }> } {
  const packets: Uint8Array[] = []
  const flows: Array<{ i: number; src: string; sport: number; proto: Proto }> = []
  const add = (p: Uint8Array, flow?: { src: string; sport: number; proto: Proto }) => {
    if (flow) flows.push({ i: packets.length, ...flow })
    packets.push(p)
  }
  for (let k = 0; k < clients; k++) {
    const src = client(k)
    const proto: Proto = (['TCP', 'UDP', 'SCTP'] as const)[k % 3]
    add(build({ src, dst: VIP, proto, sport: 20000 + k, payload: k % 17 }).bytes, { src, sport: 20000 + k, proto })
    // One busy client: many flows from one address spread over the shards.
    add(build({ src: client(0), dst: VIP, sport: 30000 + k, payload: 5 }).bytes, { src: client(0), sport: 30000 + k, proto: 'TCP' })
    if (k % 5 === 0) add(build({ src: `2001:db8::${k + 1}`, dst: VIP6, proto: 'UDP', sport: 21000 + k }).bytes)
    if (k % 7 === 0) add(build({ src, dst: VIP_EMPTY, sport: 22000 + k, payload: 3 }).bytes)
    if (k % 11 === 0) add(build({ src, dst: '172.31.0.1', sport: 23000 + k }).bytes)
    if (k % 13 === 0) for (const f of fragments(src, VIP, 24000 + k, 80, 0x100 + k)) add(f)
  }
  return { packets, flows }
}

t.test('threads 2 and 4: a mixed batch gives byte-identical frames, verdicts, reasons, replies and counters', async (t) => {
  const { packets, flows } = towardsServices(300)
  t.ok(packets.length > 4096 / 8, `${packets.length} packets: several of the addon's 256-packet chunks`)
  const one = makeDataplane(1)
  const want = run(one, packets.map((p) => p.slice()), 'to-service', 1)
  t.ok(want.verdicts.includes(PACKET_VERDICT.forward) && want.verdicts.includes(PACKET_VERDICT.reject) && want.verdicts.includes(PACKET_VERDICT.pass), 'the batch has forwards, rejects and passes')
  t.ok(want.used > 0, 'rejects got replies')
  // The backends answer each flow from where its packet went; some answer with an ICMP error.
  const answers: Uint8Array[] = []
  for (const f of flows) {
    const p = want.out[f.i]
    const backend = addrAt(p, 16, 4)
    const back = build({ src: backend, dst: f.src, proto: f.proto, sport: portAt(p, 22), dport: f.sport, flags: 0x12, payload: 2 }).bytes
    answers.push(back)
    if (f.sport % 9 === 0) answers.push(icmpError(backend, f.src, p))
  }
  const wantBack = run(one, answers.map((p) => p.slice()), 'from-backend', 2)
  // Clients answer some replies with an ICMP error about them.
  const complaints = flows.filter((f) => f.sport % 4 === 0).map((f) => icmpError(f.src, VIP, wantBack.out[answers.findIndex((a) => portAt(a, 22) === f.sport && addrAt(a, 16, 4) === f.src)]))
  const wantComplaints = run(one, complaints.map((p) => p.slice()), 'to-service', 3)
  const counts = one.packetCounters().counts
  t.ok(counts.icmpErrorsTranslated > 0 && counts.firstFragments > 0 && counts.laterFragments > 0, 'ICMP errors translated and fragments seen')
  t.ok(wantBack.verdicts.every((v) => v === PACKET_VERDICT.reply), 'every answer is reverse-NATed')

  for (const threads of [2, 4]) {
    const dp = makeDataplane(threads)
    t.equal(dp.threads, threads)
    const got = run(dp, packets.map((p) => p.slice()), 'to-service', 1)
    t.strictSame(got.verdicts, want.verdicts, `threads ${threads}: verdicts`)
    t.strictSame(got.reasons, want.reasons, `threads ${threads}: reasons`)
    t.ok(got.out.every((p, i) => Buffer.compare(p, want.out[i]) === 0), `threads ${threads}: every frame byte-identical`)
    t.ok(got.replies.every((p, i) => Buffer.compare(p, want.replies[i]) === 0) && got.used === want.used, `threads ${threads}: the same replies`)
    const back = run(dp, answers.map((p) => p.slice()), 'from-backend', 2)
    t.strictSame(back.verdicts, wantBack.verdicts, `threads ${threads}: answers' verdicts`)
    t.ok(back.out.every((p, i) => Buffer.compare(p, wantBack.out[i]) === 0), `threads ${threads}: answers byte-identical`)
    t.strictSame(back.out.filter((p) => p[9] !== 1).flatMap((p) => checksumProblems(p, 0)), [], `threads ${threads}: answers' checksums`)
    const c = run(dp, complaints.map((p) => p.slice()), 'to-service', 3)
    t.strictSame([c.verdicts, c.reasons], [wantComplaints.verdicts, wantComplaints.reasons], `threads ${threads}: clients' ICMP errors`)
    t.ok(c.out.every((p, i) => Buffer.compare(p, wantComplaints.out[i]) === 0), `threads ${threads}: clients' ICMP errors byte-identical`)
    t.strictSame(dp.packetCounters(), one.packetCounters(), `threads ${threads}: packet counters`)
    t.strictSame(dp.counters(), one.counters(), `threads ${threads}: counters`)
    const key = (f: { src: string; sport: number; protocol: string }) => `${f.src}:${f.sport}/${f.protocol}`
    t.strictSame([...dp.flows(64)].map(key).sort(), [...one.flows()].map(key).sort(), `threads ${threads}: the same flows, listed across shards`)
    t.equal(dp.map('conntrack').size, one.map('conntrack').size)
    dp.destroy()
  }
  one.destroy()
})

t.test('masquerade with threads 3: NAT ports of every shard, replies come home to their clients', async (t) => {
  const dp = makeDataplane(3, 'always')
  const clients = Array.from({ length: 120 }, (_, k) => ({ src: client(k), sport: 40000 + k }))
  const r = run(dp, clients.map((c) => build({ src: c.src, dst: VIP, sport: c.sport }).bytes), 'to-service', 1)
  t.ok(r.verdicts.every((v) => v === PACKET_VERDICT.forward))
  t.ok(r.out.every((p) => addrAt(p, 12, 4) === NODE), 'sources rewritten to the node address')
  const natPorts = r.out.map((p) => portAt(p, 20))
  t.strictSame(new Set(natPorts.map((p) => p % 3)), new Set([0, 1, 2]), 'NAT ports of all three shards')
  t.equal(dp.natPorts().length, clients.length)
  const back = run(dp, r.out.map((p, i) => build({ src: addrAt(p, 16, 4), dst: NODE, sport: 8080, dport: natPorts[i], flags: 0x12 }).bytes), 'from-backend', 2)
  t.ok(back.verdicts.every((v) => v === PACKET_VERDICT.reply), 'every reply found its flow')
  back.out.forEach((p, i) => {
    if (addrAt(p, 16, 4) !== clients[i].src || portAt(p, 22) !== clients[i].sport || addrAt(p, 12, 4) !== VIP) t.fail(`reply ${i} goes to ${addrAt(p, 16, 4)}:${portAt(p, 22)}`)
  })
  t.strictSame(checksumProblems(back.out[0], 0), [])
  t.throws(() => dp.configurePackets({ nodeAddresses: [NODE], natPortRange: [5000, 5001] }), { name: 'RangeError', code: 'INVALID', message: /natPortRange has fewer ports than the 3 threads/ })
  t.equal(dp.packetConfig().natPortRange[0], 1024, 'the refused config changed nothing')
  dp.destroy()
})

t.test('threads 2: an empty batch, then destroy while idle', async (t) => {
  const dp = makeDataplane(2)
  const none = new Uint8Array(0)
  const z32 = new Uint32Array(0)
  t.equal(dp.processPackets(none, z32, z32, 0, { direction: 'to-service', now: 1 }, none, none), 0)
  const r = run(dp, [build({ src: client(1), dst: VIP }).bytes, build({ src: client(2), dst: VIP }).bytes], 'to-service', 1)
  t.strictSame(r.verdicts, [PACKET_VERDICT.forward, PACKET_VERDICT.forward])
  dp.destroy()
  t.throws(() => run(dp, [build({ src: client(1), dst: VIP }).bytes], 'to-service', 2), { code: 'DESTROYED' })
  t.throws(() => dp.decide({ src: client(1), sport: 1, dst: VIP, dport: 80, protocol: 'TCP' }, 2), { code: 'DESTROYED' })
  t.doesNotThrow(() => dp.destroy(), 'a second destroy is harmless')
})
