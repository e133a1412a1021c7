// Dataplane.processPackets on real packets: DNAT and reverse NAT for IPv4/IPv6 TCP/UDP/SCTP,
// checksums checked with the tests' own implementation, masquerade through configurePackets,
// reject replies, counters, and argument checking that leaves everything untouched.
import t from 'tap'
import { Dataplane } from '../../lib/dataplane/dataplane.js'
import { PACKET_REASONS, PACKET_VERDICT, PacketReplies } from '../../lib/dataplane/packets.js'
import { addrBytes, batch, build, checksumProblems, portAt, type PacketSpec } from './builder.js'

const CLIENT = '192.168.1.10'
const VIP = '172.30.0.41'
const BACKEND = '10.180.0.1'
const NODE = '192.168.0.2'
const CLIENT6 = '2001:db8::10'
const VIP6 = 'fd00::41'
const BACKEND6 = 'fd00:1::1'

function makeDataplane(masquerade: 'never' | 'always' | 'outside-pod-cidrs' | 'from-node' = 'never', withBackends = true): Dataplane {
  const dp = new Dataplane({ seed: 1n, capacity: { services: 8, frontends: 16, backends: 8, conntrack: 256, affinity: 16, natPorts: 64, fragments: 16 } })
  dp.upsertBackend({ id: 1, address: BACKEND, port: 8080 })
  dp.upsertBackend({ id: 2, address: BACKEND6, port: 8080 })
  const fes = (address: string) =>
    (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({ address, port: 80, protocol, scope: 'external' as const, masquerade }))
  dp.upsertService({ id: 1, frontends: fes(VIP), backends: withBackends ? [1] : [] })
  dp.upsertService({ id: 2, frontends: fes(VIP6), backends: withBackends ? [2] : [] })
  return dp
}

function run(dp: Dataplane, packets: Uint8Array[], direction: 'to-service' | 'from-backend', extra: Partial<Parameters<Dataplane['processPackets']>[4]> = {}) {
  const b = batch(packets)
  const verdicts = new Uint8Array(packets.length)
  const reasons = new Uint8Array(packets.length)
  dp.processPackets(b.buffer, b.offsets, b.lengths, packets.length, { direction, now: 1, linkType: 'raw', ...extra }, verdicts, reasons)
  const out = packets.map((_, i) => b.buffer.slice(b.offsets[i], b.offsets[i] + b.lengths[i]))
  return { out, verdicts: [...verdicts], reasons: [...reasons].map((r) => PACKET_REASONS[r]) }
}

const same = (p: Uint8Array, at: number, addr: string) => addrBytes(addr).every((b, i) => p[at + i] === b)

t.test('IPv4 and IPv6 TCP/UDP/SCTP: DNAT, then replies reverse-NATed; every checksum right', async (t) => {
  const dp = makeDataplane()
  const specs: PacketSpec[] = []
  for (const proto of ['TCP', 'UDP', 'SCTP'] as const)
    for (const payload of [0, 1, 37]) {
      specs.push({ src: CLIENT, dst: VIP, proto, payload, sport: 1000 + specs.length })
      specs.push({ src: CLIENT6, dst: VIP6, proto, payload, sport: 1000 + specs.length })
    }
  const r = run(dp, specs.map((s) => build(s).bytes), 'to-service')
  t.strictSame(r.verdicts, specs.map(() => PACKET_VERDICT.forward))
  r.out.forEach((p, i) => {
    const v4 = !specs[i].src.includes(':')
    t.ok(same(p, v4 ? 16 : 24, v4 ? BACKEND : BACKEND6), `packet ${i} goes to the backend`)
    t.equal(portAt(p, v4 ? 22 : 42), 8080)
    t.strictSame(checksumProblems(p, 0), [], `packet ${i} (${specs[i].proto}, ${specs[i].payload} bytes) checksums`)
  })
  const replies = specs.map((s) => build({ src: s.src.includes(':') ? BACKEND6 : BACKEND, dst: s.src, proto: s.proto, sport: 8080, dport: s.sport, flags: 0x12, payload: 3 }).bytes)
  const back = run(dp, replies, 'from-backend')
  t.strictSame(back.verdicts, specs.map(() => PACKET_VERDICT.reply))
  back.out.forEach((p, i) => {
    const v4 = !specs[i].src.includes(':')
    t.ok(same(p, v4 ? 12 : 8, v4 ? VIP : VIP6), `reply ${i} comes from the service`)
    t.equal(portAt(p, v4 ? 20 : 40), 80)
    t.strictSame(checksumProblems(p, 0), [])
  })
})

t.test('UDP over IPv4 without checksum stays without; Ethernet with a VLAN tag', async (t) => {
  const dp = makeDataplane()
  const r = run(dp, [build({ src: CLIENT, dst: VIP, proto: 'UDP', udpNoChecksum: true, payload: 9 }).bytes], 'to-service')
  t.equal(r.verdicts[0], PACKET_VERDICT.forward)
  t.equal(portAt(r.out[0], 26), 0, 'checksum 0 kept')
  const e = build({ src: CLIENT, dst: VIP, ethernet: true, vlan: true, sport: 5555 })
  const b = batch([e.bytes])
  const v = new Uint8Array(1)
  const rs = new Uint8Array(1)
  dp.processPackets(b.buffer, b.offsets, b.lengths, 1, { direction: 'to-service', now: 1 }, v, rs)
  t.equal(v[0], PACKET_VERDICT.forward)
  t.strictSame(checksumProblems(b.buffer, e.l3), [])
})

t.test('masquerade: SNAT to the node address with a NAT port; replies find the client', async (t) => {
  const dp = makeDataplane('outside-pod-cidrs')
  dp.configurePackets({ nodeAddresses: [NODE, '2001:db8::1'], podCIDRs: ['10.0.0.0/8'] })
  t.strictSame(dp.packetConfig().masqueradeAddresses, [NODE, '2001:db8::1'])
  const pod = build({ src: '10.0.0.5', dst: VIP, sport: 7000 }).bytes
  const outside1 = build({ src: CLIENT, dst: VIP, sport: 7000 }).bytes
  const outside2 = build({ src: '192.168.1.11', dst: VIP, sport: 7000 }).bytes
  const r = run(dp, [pod, outside1, outside2], 'to-service')
  t.ok(same(r.out[0], 12, '10.0.0.5'), 'pod traffic keeps its source')
  t.ok(same(r.out[1], 12, NODE) && same(r.out[2], 12, NODE), 'outside traffic is masqueraded')
  const p1 = portAt(r.out[1], 20)
  const p2 = portAt(r.out[2], 20)
  t.not(p1, p2, 'two clients, two NAT ports')
  r.out.forEach((p) => t.strictSame(checksumProblems(p, 0), []))
  t.equal(dp.natPorts().length, 2)
  t.match(dp.natPorts()[0], { address: NODE, peerAddress: BACKEND, peerPort: 8080, protocol: 'TCP' })
  const back = run(dp, [build({ src: BACKEND, dst: NODE, sport: 8080, dport: p2, flags: 0x12 }).bytes], 'from-backend')
  t.equal(back.verdicts[0], PACKET_VERDICT.reply)
  t.ok(same(back.out[0], 16, '192.168.1.11'))
  t.equal(portAt(back.out[0], 22), 7000)
  t.strictSame(checksumProblems(back.out[0], 0), [])
  t.equal(dp.packetCounters().counts.masqueraded, 2)
  t.strictSame(dp.packetMaps().map((m) => [m.name, m.size]), [['nat', 2], ['fragments', 0]])
  dp.flushConntrack()
  t.equal(dp.natPorts().length, 0, 'ports come back when flows go')
})

t.test('no masquerade address: forwarded unmasqueraded, with a reason', async (t) => {
  const dp = makeDataplane('always')
  const r = run(dp, [build({ src: CLIENT, dst: VIP }).bytes], 'to-service')
  t.equal(r.verdicts[0], PACKET_VERDICT.forward)
  t.equal(r.reasons[0], 'no-masquerade-address')
})

t.test('reject replies land in PacketReplies', async (t) => {
  const dp = makeDataplane('never', false)
  const replies = new PacketReplies(4096, 4)
  const r = run(dp, [build({ src: CLIENT, dst: VIP, payload: 4 }).bytes, build({ src: CLIENT6, dst: VIP6, proto: 'UDP' }).bytes], 'to-service', { replies })
  t.strictSame(r.verdicts, [PACKET_VERDICT.reject, PACKET_VERDICT.reject])
  t.strictSame(r.reasons, ['no-backends', 'no-backends'])
  const icmp = replies.reply(0)!
  t.equal(icmp[9], 1, 'ICMP')
  t.equal(icmp[20], 3)
  t.equal(icmp[21], 3, 'port unreachable')
  t.ok(same(icmp, 12, VIP) && same(icmp, 16, CLIENT))
  t.strictSame(checksumProblems(icmp, 0), [])
  const icmp6 = replies.reply(1)!
  t.equal(icmp6[40], 1)
  t.equal(icmp6[41], 4)
  t.strictSame(checksumProblems(icmp6, 0), [])
  const rst = run(dp, [build({ src: CLIENT, dst: VIP, seq: 77 }).bytes], 'to-service', { replies, rejectWith: 'tcp-reset' })
  t.equal(rst.verdicts[0], PACKET_VERDICT.reject)
  const reset = replies.reply(0)!
  t.equal(reset.length, 40)
  t.equal(reset[33], 0x14, 'RST|ACK')
  t.strictSame(checksumProblems(reset, 0), [])
})

t.test('malformed, truncated, not-IP and untracked packets; counters', async (t) => {
  const dp = makeDataplane()
  const good = build({ src: CLIENT, dst: VIP }).bytes
  const r = run(dp, [good.subarray(0, 30), new Uint8Array([0x70, 0, 0, 0]), build({ src: BACKEND, dst: CLIENT }).bytes], 'to-service')
  t.strictSame(r.verdicts, [PACKET_VERDICT.drop, PACKET_VERDICT.drop, PACKET_VERDICT.pass])
  t.strictSame(r.reasons, ['truncated', 'malformed', 'no-frontend'])
  const untracked = run(dp, [build({ src: BACKEND, dst: CLIENT }).bytes], 'from-backend')
  t.strictSame(untracked.reasons, ['not-tracked'])
  const c = dp.packetCounters()
  t.equal(c.packets, 4)
  t.equal(c.reasons.truncated, 1)
  t.equal(c.verdicts.drop, 2)
  t.equal(c.counts.ipv4, 2, 'packets whose IPv4 header parsed')
})

t.test('arguments are checked before any packet is touched', async (t) => {
  const dp = makeDataplane()
  const p = build({ src: CLIENT, dst: VIP }).bytes
  const b = batch([p])
  const before = b.buffer.slice()
  const v = new Uint8Array(1)
  const r = new Uint8Array(1)
  const opts = { direction: 'to-service' as const, now: 1, linkType: 'raw' as const }
  t.throws(() => dp.processPackets(b.buffer, b.offsets, b.lengths, 2, opts, v, r), RangeError)
  t.throws(() => dp.processPackets(b.buffer, new Uint32Array([10]), b.lengths, 1, opts, v, r), { name: 'RangeError', message: /packet 0 .*outside the buffer/ })
  t.throws(() => dp.processPackets(b.buffer, b.offsets, b.lengths, 1, { ...opts, direction: 'sideways' as never }, v, r), { name: 'TypeError', message: /direction/ })
  t.throws(() => dp.processPackets(b.buffer, b.offsets, b.lengths, 1, { ...opts, now: -1 }, v, r), /now/)
  t.throws(() => dp.processPackets(b.buffer, b.offsets, b.lengths, 1, { ...opts, linkType: 'ppp' as never }, v, r), /linkType/)
  t.strictSame(b.buffer, before)
  t.throws(() => dp.configurePackets({ podCIDRs: ['10.0.0.0'] }), /podCIDRs\[0\]/)
  t.throws(() => dp.configurePackets({ natPortRange: [2000, 1000] }), /natPortRange/)
  t.throws(() => dp.configurePackets({ masqueradeAddresses: ['1.2.3.4', '1.2.3.5'] }), /two IPv4/)
  t.throws(() => dp.configurePackets({ nodeAdresses: [] } as never), /unknown field nodeAdresses/)
  t.throws(() => dp.upsertService({ id: 9, frontends: [{ address: VIP, port: 81, protocol: 'TCP', scope: 'internal', masquerade: 'sometimes' as never }], backends: [] }), /masquerade must be one of/)
})
