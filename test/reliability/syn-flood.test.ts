// A SYN-flood-like workload against full tables: conntrack, affinity and the NAT port map are
// driven far past capacity by never-completing flows from random sources, while a set of
// established connections keeps talking. Memory stays within the configured bound (map bytes
// never change; RSS growth is bounded), the counters say exactly what was refused or evicted,
// and established flows survive. (test/dataplane/full-tables.test.ts covers the policies on
// four-entry tables; this is the same at scale, through the batch paths.)
import t from 'tap'
import { Dataplane, DecisionBatch, FlowBatch, TCP_FLAGS } from '../../lib/index.js'
import { checkInvariants } from './helpers/invariants.js'
import { batch, build } from '../packet/builder.js'

const { SYN, ACK } = TCP_FLAGS
const VIP = '172.30.0.10'
const CAP = 16384
const ESTABLISHED = 2000
const FLOOD = CAP * 8

function setup(conntrackFullPolicy: 'evict-oldest' | 'refuse', extra: Record<string, unknown> = {}) {
  const dp = new Dataplane({ seed: 11n, capacity: { conntrack: CAP, affinity: 1024, natPorts: 4096, services: 8, frontends: 16, backends: 16 }, conntrackFullPolicy, ...extra })
  for (let i = 1; i <= 4; i++) dp.upsertBackend({ id: i, address: `10.1.0.${i}`, port: 8080 })
  dp.upsertService({ id: 1, frontends: [{ address: VIP, port: 80, protocol: 'TCP', scope: 'external' }], backends: [1, 2, 3, 4], scheduler: 'maglev' })
  return dp
}

/** Opens ESTABLISHED connections through the full handshake, from 192.168.x.y. */
function establish(dp: Dataplane, now: number): Array<{ src: string; sport: number }> {
  const conns: Array<{ src: string; sport: number }> = []
  for (let i = 0; i < ESTABLISHED; i++) {
    const src = `192.168.${i >> 8}.${i & 255}`
    const sport = 20000 + (i % 1000)
    const d = dp.decide({ src, sport, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: SYN }, now)
    dp.decide({ src: d.address, sport: d.port, dst: src, dport: sport, protocol: 'TCP', tcpFlags: SYN | ACK }, now)
    dp.decide({ src, sport, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: ACK }, now)
    conns.push({ src, sport })
  }
  return conns
}

/** FLOOD SYNs from random sources (never answered), in batches of 256, at time now. */
function flood(dp: Dataplane, now: number, seed: number, established?: Array<{ src: string; sport: number }>): { forwarded: number; dropped: number; survivorsChecked: number; lost: number } {
  const n = 256
  const fb = new FlowBatch(n)
  const out = new DecisionBatch(n)
  let x = seed >>> 0
  const next = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x)
  for (let i = 0; i < n; i++) fb.set(i, { src: '203.0.113.1', sport: 1, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: SYN })
  let forwarded = 0
  let dropped = 0
  let lost = 0
  let survivorsChecked = 0
  const view = new DataView(fb.buffer.buffer)
  for (let sent = 0; sent < FLOOD; sent += n) {
    for (let i = 0; i < n; i++) {
      // Random IPv4 source (v4-mapped bytes 12..15) and port, written in place.
      view.setUint32(i * 48 + 12, next(), false)
      fb.setSourcePort(i, 1024 + (next() % 60000))
    }
    dp.decideBatch(fb, now, out)
    for (let i = 0; i < n; i++) {
      if (out.verdict(i) === 'forward') forwarded++
      else dropped++
    }
    // Established connections keep talking during the flood.
    if (established && sent % (n * 16) === 0) {
      for (const c of established.slice(0, 64)) {
        survivorsChecked++
        if (!dp.decide({ ...c, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: ACK }, now).established) lost++
      }
    }
  }
  return { forwarded, dropped, survivorsChecked, lost }
}

const rssMiB = () => process.memoryUsage().rss / 2 ** 20

t.test('conntrack flood, refuse: established flows all survive, the flood is refused and counted, memory is fixed', async (t) => {
  const dp = setup('refuse')
  const bytesBefore = dp.maps().map((m) => m.bytes)
  const conns = establish(dp, 1)
  const rss0 = rssMiB()
  const r = flood(dp, 2, 1, conns)
  const ct = dp.map('conntrack')
  t.equal(ct.size, CAP, 'conntrack is full, not above')
  t.equal(r.forwarded, CAP - ESTABLISHED, 'the flood got exactly the free slots')
  t.equal(r.dropped, FLOOD - (CAP - ESTABLISHED), 'the rest was dropped')
  t.equal(ct.stats.refusals, FLOOD - (CAP - ESTABLISHED), 'and every refusal is counted')
  t.equal(dp.counters().reasons['conntrack-full'], ct.stats.refusals, 'as conntrack-full drops')
  t.equal(ct.stats.evictions, 0)
  t.equal(r.lost, 0, `no established flow lost (${r.survivorsChecked} checked during the flood)`)
  let alive = 0
  for (const c of conns) if (dp.lookupFlow({ ...c, dst: VIP, dport: 80, protocol: 'TCP' })?.state === 'established') alive++
  t.equal(alive, ESTABLISHED, 'all established flows are still tracked after the flood')
  t.strictSame(dp.maps().map((m) => m.bytes), bytesBefore, 'map memory is what the constructor allocated')
  t.ok(rssMiB() - rss0 < 64, `RSS grew ${(rssMiB() - rss0).toFixed(1)} MiB over ${FLOOD} flood flows`)
  // Once the flood's half-open flows time out (SYN_SENT 120 s), new flows get in again.
  let removed = 0
  for (let k = 0; k < 8; k++) removed += dp.gc(200, CAP).flows
  t.equal(removed, CAP - ESTABLISHED, 'gc removes exactly the half-open flood flows')
  t.equal(dp.decide({ src: '198.51.100.1', sport: 5, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: SYN }, 200).verdict, 'forward')
  t.strictSame(checkInvariants(dp), [])
  t.comment(`refuse: ${FLOOD} SYNs against ${CAP} slots holding ${ESTABLISHED} established: ${r.forwarded} admitted, ${r.dropped} refused, 0 established lost`)
})

t.test('conntrack flood, evict-oldest: the table stays at capacity and counts every eviction', async (t) => {
  const dp = setup('evict-oldest')
  const bytesBefore = dp.maps().map((m) => m.bytes)
  establish(dp, 1)
  const r = flood(dp, 2, 2)
  const ct = dp.map('conntrack')
  t.equal(ct.size, CAP)
  t.equal(r.forwarded, FLOOD, 'evict-oldest admits every new flow')
  t.equal(ct.stats.evictions, FLOOD - (CAP - ESTABLISHED), 'each admission past capacity evicted one flow')
  t.equal(ct.stats.refusals, 0)
  t.strictSame(dp.maps().map((m) => m.bytes), bytesBefore)
  const backendConns = dp.backends().reduce((a, b) => a + b.activeConnections, 0)
  t.equal(backendConns, CAP, 'backend connection counts follow the evictions')
  t.strictSame(checkInvariants(dp), [])
})



t.test('conntrack flood, evict-oldest: established flows survive (half-open flows are sacrificed first)', async (t) => {
  const dp = setup('evict-oldest')
  const conns = establish(dp, 1)
  const r = flood(dp, 2, 3, conns)
  let alive = 0
  for (const c of conns) if (dp.lookupFlow({ ...c, dst: VIP, dport: 80, protocol: 'TCP' })) alive++
  t.equal(r.lost, 0, `established flows lost while the flood ran: ${r.lost} of ${r.survivorsChecked} checked`)
  t.equal(alive, ESTABLISHED, `established flows still tracked after a ${FLOOD}-SYN flood: ${alive} of ${ESTABLISHED}`)
})

t.test('affinity flood: the map stays at capacity and counts; remembered clients within capacity keep their backend', async (t) => {
  for (const policy of ['evict-oldest', 'refuse'] as const) {
    const dp = new Dataplane({ seed: 12n, capacity: { conntrack: 65536, affinity: 1024 }, affinityFullPolicy: policy })
    for (let i = 1; i <= 4; i++) dp.upsertBackend({ id: i, address: `10.1.0.${i}`, port: 8080 })
    dp.upsertService({ id: 1, frontends: [{ address: VIP, port: 80, protocol: 'TCP', scope: 'external' }], backends: [1, 2, 3, 4], affinityTimeout: 10800 })
    const bytes = dp.map('affinity').bytes
    const fb = new FlowBatch(256)
    const out = new DecisionBatch(256)
    for (let i = 0; i < 256; i++) fb.set(i, { src: '203.0.113.1', sport: 9, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: SYN })
    const view = new DataView(fb.buffer.buffer)
    const clients = 80 * 256
    for (let c = 0; c < clients; c += 256) {
      for (let i = 0; i < 256; i++) view.setUint32(i * 48 + 12, 0xcb000000 + c + i, false)
      dp.decideBatch(fb, 10, out)
    }
    const aff = dp.map('affinity')
    t.equal(aff.size, 1024, `${policy}: affinity full, not above`)
    t.equal(aff.bytes, bytes, `${policy}: affinity memory unchanged`)
    if (policy === 'refuse') {
      t.equal(aff.stats.refusals, clients - 1024, 'refuse: every client past capacity counted')
      t.equal(dp.counters().reasons['affinity-full'], clients - 1024, 'refuse: as affinity-full')
      t.equal(dp.counters().verdicts.forward, clients, 'refuse: the flows are still forwarded')
      // The first 1024 clients are remembered and stick to their backend.
      const first = dp.affinity().find((a) => a.client === '203.0.0.0')!
      const again = dp.decide({ src: '203.0.0.0', sport: 77, dst: VIP, dport: 80, protocol: 'TCP', tcpFlags: SYN }, 11)
      t.strictSame([again.affinityHit, again.backendId], [true, first.backendId], 'refuse: a remembered client keeps its backend')
    } else {
      t.equal(aff.stats.evictions, clients - 1024, 'evict-oldest: every eviction counted')
    }
    t.strictSame(checkInvariants(dp), [])
  }
})

t.test('NAT port map flood: masqueraded SYNs past capacity are dropped and counted; tracked masqueraded flows keep their port', async (t) => {
  const NAT = 512
  const dp = new Dataplane({ seed: 13n, capacity: { conntrack: 8192, natPorts: NAT, services: 4, frontends: 4, backends: 4 }, conntrackFullPolicy: 'refuse' })
  dp.configurePackets({ nodeAddresses: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'] })
  dp.upsertBackend({ id: 1, address: '10.1.0.1', port: 8080 })
  dp.upsertService({ id: 1, backends: [1], frontends: [{ address: VIP, port: 80, protocol: 'TCP', scope: 'external', masquerade: 'always' }] })
  const natBytes = dp.packetMaps().find((m) => m.name === 'nat')!.bytes
  // 200 "established" masqueraded flows first.
  const first = Array.from({ length: 200 }, (_, i) => build({ src: `198.51.100.${1 + (i % 200)}`, dst: VIP, sport: 30000 + i, dport: 80, flags: SYN, payload: 0 }).bytes)
  let b = batch(first)
  const v = new Uint8Array(4096)
  const r = new Uint8Array(4096)
  dp.processPackets(b.buffer, b.offsets, b.lengths, first.length, { direction: 'to-service', now: 1, linkType: 'raw' }, v, r)
  t.ok(v.subarray(0, 200).every((x) => x === 1), 'the first 200 masqueraded flows are forwarded')
  const ports = new Map(dp.natPorts().map((p) => [`${p.client}:${p.clientPort}`, p.port]))
  // Then a flood of 4096 SYNs from random sources per round, 4 rounds.
  let dropped = 0
  let x = 7
  for (let round = 0; round < 4; round++) {
    const frames = Array.from({ length: 4096 }, () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0
      return build({ src: `203.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`, dst: VIP, sport: 1024 + (x % 60000), dport: 80, flags: SYN, payload: 0 }).bytes
    })
    b = batch(frames)
    dp.processPackets(b.buffer, b.offsets, b.lengths, frames.length, { direction: 'to-service', now: 2 + round, linkType: 'raw' }, v, r)
    for (let i = 0; i < frames.length; i++) if (v[i] === 4) dropped++
  }
  const nat = dp.packetMaps().find((m) => m.name === 'nat')!
  t.equal(nat.size, NAT, 'the NAT port map is full, not above')
  t.equal(nat.bytes, natBytes, 'NAT port map memory unchanged')
  t.equal(dropped, 4 * 4096 - (NAT - 200), 'every flow past the NAT capacity was dropped')
  t.equal(dp.packetCounters().reasons['nat-ports-exhausted'], dropped, 'and counted as nat-ports-exhausted')
  // The first flows still hold their ports and are still translated the same way.
  const again = batch(first.map((_, i) => build({ src: `198.51.100.${1 + (i % 200)}`, dst: VIP, sport: 30000 + i, dport: 80, flags: ACK, payload: 0 }).bytes))
  dp.processPackets(again.buffer, again.offsets, again.lengths, 200, { direction: 'to-service', now: 9, linkType: 'raw' }, v, r)
  t.ok(v.subarray(0, 200).every((x) => x === 1), 'the first 200 flows are still forwarded')
  const after = new Map(dp.natPorts().map((p) => [`${p.client}:${p.clientPort}`, p.port]))
  let same = 0
  for (const [k, p] of ports) if (after.get(k) === p) same++
  t.equal(same, 200, 'and keep their NAT ports')
  t.strictSame(checkInvariants(dp), [])
})
