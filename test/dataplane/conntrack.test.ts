// Connection tracking through the Dataplane API: the TCP state machine driven by tcpFlags,
// every state's timeout against virtual time, UDP/SCTP, incremental gc, per-flow counters,
// reverse NAT of replies, and what happens to flows when backends change.
import t from 'tap'
import { DEFAULT_TIMEOUTS, TCP_FLAGS } from '../../lib/index.js'
import type { ConntrackTimeouts, Dataplane, Decision, DataplaneOptions, Flow, Protocol } from '../../lib/index.js'
import { CLIENT, VIP, addBackends, countBy, frontend, makeDataplane } from './helpers/fixtures.js'

const { FIN, SYN, RST, PSH, ACK } = TCP_FLAGS
const PORT: Record<Protocol, number> = { TCP: 80, UDP: 53, SCTP: 9000 }

/** Backends 1..3 behind one rr service with a TCP, a UDP and an SCTP frontend: rr makes each new decision visible (1, then 2, ...). */
function setup(options: DataplaneOptions = {}): Dataplane {
  const dp = makeDataplane({ capacity: { conntrack: 64, affinity: 64 }, ...options })
  addBackends(dp, 3)
  dp.upsertService({ id: 1, frontends: [frontend(VIP, 80, 'TCP'), frontend(VIP, 53, 'UDP'), frontend(VIP, 9000, 'SCTP')], backends: [1, 2, 3], scheduler: 'rr' })
  return dp
}

/** One connection: packets in the original direction (client -> VIP) and replies (backend -> client). */
class Conn {
  backend?: { address: string; port: number }
  constructor(
    readonly dp: Dataplane,
    readonly sport = 40000,
    readonly protocol: Protocol = 'TCP',
  ) {}
  get orig(): Flow {
    return { src: CLIENT, sport: this.sport, dst: VIP, dport: PORT[this.protocol], protocol: this.protocol }
  }
  get reply(): Flow {
    if (!this.backend) throw new Error('no backend yet')
    return { src: this.backend.address, sport: this.backend.port, dst: CLIENT, dport: this.sport, protocol: this.protocol }
  }
  send(tcpFlags: number, now: number, bytes = 0): Decision {
    const d = this.dp.decide({ ...this.orig, tcpFlags, bytes }, now)
    if (d.verdict === 'forward') this.backend = { address: d.address, port: d.port }
    return d
  }
  answer(tcpFlags: number, now: number, bytes = 0): Decision {
    return this.dp.decide({ ...this.reply, tcpFlags, bytes }, now)
  }
  get entry() {
    return this.dp.lookupFlow(this.orig)
  }
  get state(): string | undefined {
    return this.entry?.state
  }
}

type Step = ['o' | 'r', number]
/** Packet sequences that leave a flow in each state. */
const PATHS: Record<string, { protocol: Protocol; steps: Step[]; timeout: keyof ConntrackTimeouts }> = {
  'syn-sent': { protocol: 'TCP', steps: [['o', SYN]], timeout: 'tcpSynSent' },
  'syn-recv': { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK]], timeout: 'tcpSynRecv' },
  established: { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK], ['o', ACK]], timeout: 'tcpEstablished' },
  'fin-wait': { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK], ['o', ACK], ['o', FIN | ACK]], timeout: 'tcpFinWait' },
  'close-wait': { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK], ['o', ACK], ['o', FIN | ACK], ['r', ACK]], timeout: 'tcpCloseWait' },
  'last-ack': { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK], ['o', ACK], ['o', FIN | ACK], ['r', ACK], ['r', FIN | ACK]], timeout: 'tcpLastAck' },
  'time-wait': { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK], ['o', ACK], ['o', FIN | ACK], ['r', ACK], ['r', FIN | ACK], ['o', ACK]], timeout: 'tcpTimeWait' },
  close: { protocol: 'TCP', steps: [['o', SYN], ['r', SYN | ACK], ['o', ACK], ['r', RST]], timeout: 'tcpClose' },
  udp: { protocol: 'UDP', steps: [['o', 0]], timeout: 'udp' },
  'udp-stream': { protocol: 'UDP', steps: [['o', 0], ['r', 0]], timeout: 'udpStream' },
  sctp: { protocol: 'SCTP', steps: [['o', 0]], timeout: 'sctp' },
}

function drive(c: Conn, steps: Step[], now: number): void {
  for (const [dir, flags] of steps) {
    const d = dir === 'o' ? c.send(flags, now) : c.answer(flags, now)
    if (d.verdict !== 'forward' && d.verdict !== 'reply') throw new Error(`unexpected ${d.verdict} at step ${dir} ${flags}`)
  }
}

t.test('TCP: handshake, then the client closes first', async (t) => {
  const c = new Conn(setup())
  const d = c.send(SYN, 100)
  t.strictSame([d.verdict, d.established, d.backendId], ['forward', false, 1])
  t.strictSame([c.state, c.entry!.expires], ['syn-sent', 100 + 120])
  t.equal(c.send(SYN, 101).established, true, 'a retransmitted SYN belongs to the flow')
  t.equal(c.state, 'syn-sent')
  c.answer(SYN | ACK, 102)
  t.strictSame([c.state, c.entry!.expires], ['syn-recv', 102 + 60])
  c.send(ACK, 103)
  t.strictSame([c.state, c.entry!.expires], ['established', 103 + 86400])
  c.send(PSH | ACK, 104)
  c.answer(PSH | ACK, 105)
  t.equal(c.state, 'established', 'data keeps it established')
  c.send(FIN | ACK, 106)
  t.strictSame([c.state, c.entry!.expires], ['fin-wait', 106 + 120])
  c.send(ACK, 107)
  t.equal(c.state, 'fin-wait', 'the closing side\'s own ACKs change nothing')
  c.answer(ACK, 108)
  t.strictSame([c.state, c.entry!.expires], ['close-wait', 108 + 60])
  c.answer(PSH | ACK, 109)
  t.equal(c.state, 'close-wait', 'the other side may still send')
  c.answer(FIN | ACK, 110)
  t.strictSame([c.state, c.entry!.expires], ['last-ack', 110 + 30])
  c.send(ACK, 111)
  t.strictSame([c.state, c.entry!.expires], ['time-wait', 111 + 120])
  t.equal(c.entry!.backendId, 1, 'one backend throughout')
})

t.test('TCP: the server closes first, then both FINs cross', async (t) => {
  const c = new Conn(setup())
  drive(c, PATHS.established.steps, 1)
  c.answer(FIN | ACK, 2)
  t.equal(c.state, 'fin-wait')
  c.send(FIN | ACK, 3)
  t.equal(c.state, 'last-ack', 'the second FIN, from the other side')
  c.answer(ACK, 4)
  t.equal(c.state, 'time-wait')
})

t.test('TCP: a FIN answered by a FIN goes straight to last-ack', async (t) => {
  const c = new Conn(setup())
  drive(c, PATHS.established.steps, 1)
  c.send(FIN | ACK, 2)
  c.answer(FIN | ACK, 3)
  t.equal(c.state, 'last-ack')
  c.send(FIN | ACK, 4)
  t.equal(c.state, 'time-wait', 'an ACK (here with a retransmitted FIN) ends it')
})

t.test('TCP: RST closes the flow from any state, in either direction', async (t) => {
  const tcpStates = ['syn-sent', 'syn-recv', 'established', 'fin-wait', 'close-wait', 'last-ack', 'time-wait']
  for (const state of tcpStates) {
    for (const dir of ['o', 'r'] as const) {
      const c = new Conn(setup())
      drive(c, PATHS[state].steps, 10)
      t.equal(c.state, state)
      const d = dir === 'o' ? c.send(RST, 11) : c.answer(RST | ACK, 11)
      t.equal(d.established, true)
      t.strictSame([c.state, c.entry!.expires], ['close', 11 + 10], `${state} + RST (${dir === 'o' ? 'client' : 'server'}) -> close`)
    }
  }
})

t.test('TCP: flows picked up without a SYN, missed SYN-ACKs, unknown flags', async (t) => {
  const dp = setup()
  const mid = new Conn(dp, 1)
  mid.send(ACK, 1)
  t.equal(mid.state, 'established', 'an ACK of an unknown flow is taken as established (loose pickup)')
  const rst = new Conn(dp, 2)
  rst.send(RST, 1)
  t.equal(rst.state, 'close')
  const none = new Conn(dp, 3)
  none.send(0, 1)
  t.equal(none.state, 'syn-sent', 'no flags: a new flow is opening')
  none.send(0, 50)
  t.strictSame([none.state, none.entry!.expires], ['syn-sent', 50 + 120], 'no flags: state kept, timeout refreshed')
  const missed = new Conn(dp, 4)
  missed.send(SYN, 1)
  missed.send(ACK, 2)
  t.equal(missed.state, 'established', 'the SYN-ACK was not seen, the ACK was')
  const synAckFromClient = new Conn(dp, 5)
  synAckFromClient.send(SYN, 1)
  synAckFromClient.send(SYN | ACK, 2)
  t.equal(synAckFromClient.state, 'syn-sent', 'a SYN-ACK in the original direction does not open it')
})

t.test('TCP: a new SYN on a closed tuple is a new connection that chooses again', async (t) => {
  for (const state of ['time-wait', 'close']) {
    const dp = setup()
    const c = new Conn(dp)
    drive(c, PATHS[state].steps, 1)
    const first = c.entry!.backendId
    // The old backend starts terminating: a reused client port must not land on it again.
    const b = dp.backends().find((x) => x.id === first)!
    dp.upsertBackend({ id: first, address: b.address, port: b.port, state: 'terminating' })
    const d = c.send(SYN, 5)
    t.equal(d.established, false, `${state} + SYN: not the old connection`)
    t.not(d.backendId, first, `${state} + SYN: not the terminating backend`)
    t.strictSame([c.state, c.entry!.expires, c.entry!.backendId], ['syn-sent', 5 + 120, d.backendId])
    c.answer(SYN | ACK, 6)
    c.send(ACK, 6)
    t.equal(c.state, 'established')
  }
})

t.test('UDP and SCTP', async (t) => {
  const dp = setup()
  const u = new Conn(dp, 5353, 'UDP')
  u.send(0, 10, 100)
  t.strictSame([u.state, u.entry!.expires], ['udp', 10 + 30])
  u.send(0, 11, 100)
  t.equal(u.state, 'udp', 'one way only: still udp')
  const r = u.answer(0, 12, 300)
  t.strictSame([r.verdict, r.address, r.port], ['reply', VIP, 53])
  t.strictSame([u.state, u.entry!.expires], ['udp-stream', 12 + 120])
  u.send(SYN | FIN, 13)
  t.strictSame([u.state, u.entry!.expires], ['udp-stream', 13 + 120], 'TCP flags mean nothing to UDP')
  const s = new Conn(dp, 7000, 'SCTP')
  s.send(0, 20)
  t.strictSame([s.state, s.entry!.expires], ['sctp', 20 + 210])
  s.answer(0, 21)
  t.strictSame([s.state, s.entry!.expires], ['sctp', 21 + 210])
})

t.test('every state\'s default timeout: alive just before it, gone at and after it', async (t) => {
  for (const [state, path] of Object.entries(PATHS)) {
    const timeout = DEFAULT_TIMEOUTS[path.timeout]
    const t0 = 1000
    for (const [probe, alive] of [[t0 + timeout - 0.001, true], [t0 + timeout, false], [t0 + timeout + 3600, false]] as const) {
      const dp = setup()
      const c = new Conn(dp, 40000, path.protocol)
      drive(c, path.steps, t0)
      t.strictSame([c.state, c.entry!.expires], [state, t0 + timeout])
      const before = dp.map('conntrack').stats
      const d = c.send(0, probe)
      const after = dp.map('conntrack').stats
      if (alive) {
        t.strictSame([d.established, d.backendId], [true, 1], `${state}: alive at ${probe - t0}s`)
        t.equal(after.expirations, before.expirations)
      } else {
        // Expired: a new flow, with a new decision (rr moves on to backend 2).
        t.strictSame([d.verdict, d.established, d.backendId], ['forward', false, 2], `${state}: expired at ${probe - t0}s`)
        t.equal(after.expirations, before.expirations + 1, 'counted as an expiration')
        t.equal(after.deletes, before.deletes, '... not as a delete')
        t.strictSame([c.entry!.created, c.entry!.backendId, dp.map('conntrack').size], [probe, 2, 1])
      }
      dp.destroy()
    }
  }
})

const DISTINCT: ConntrackTimeouts = {
  tcpSynSent: 11, tcpSynRecv: 12, tcpEstablished: 13, tcpFinWait: 14, tcpCloseWait: 15, tcpLastAck: 16,
  tcpTimeWait: 17, tcpClose: 18, udp: 19, udpStream: 20, sctp: 21.5,
}

t.test('timeouts given to the constructor are honoured per state', async (t) => {
  for (const [state, path] of Object.entries(PATHS)) {
    const dp = setup({ timeouts: DISTINCT })
    t.strictSame(dp.getTimeouts(), DISTINCT)
    const c = new Conn(dp, 40000, path.protocol)
    drive(c, path.steps, 100)
    t.strictSame([c.state, c.entry!.expires], [state, 100 + DISTINCT[path.timeout]], `${state} uses ${path.timeout}`)
    t.equal(c.send(0, 100 + DISTINCT[path.timeout] - 0.01).backendId, 1, 'alive just before')
    t.equal(c.send(0, 100 + DISTINCT[path.timeout] - 0.01 + DISTINCT[path.timeout]).established, false, 'gone one timeout after the last packet')
  }
  // A partial object overrides only what it names.
  const dp = setup({ timeouts: { udp: 5 } })
  t.strictSame(dp.getTimeouts(), { ...DEFAULT_TIMEOUTS, udp: 5 })
})

t.test('setTimeouts applies from each flow\'s next packet', async (t) => {
  const dp = setup()
  const old = new Conn(dp, 1, 'UDP')
  old.send(0, 0)
  t.equal(old.entry!.expires, 30)
  dp.setTimeouts({ udp: 5 })
  t.strictSame(dp.getTimeouts(), { ...DEFAULT_TIMEOUTS, udp: 5 })
  t.equal(old.entry!.expires, 30, 'an existing flow keeps its expiry until its next packet')
  const fresh = new Conn(dp, 2, 'UDP')
  fresh.send(0, 1)
  t.equal(fresh.entry!.expires, 6)
  old.send(0, 2)
  t.equal(old.entry!.expires, 7)
  dp.setTimeouts({ tcpEstablished: 3600 })
  t.strictSame(dp.getTimeouts(), { ...DEFAULT_TIMEOUTS, udp: 5, tcpEstablished: 3600 }, 'changes accumulate')
  const c = new Conn(dp, 3)
  drive(c, PATHS.established.steps, 10)
  t.equal(c.entry!.expires, 3610)
  t.equal(c.send(0, 3609.9).established, true)
  t.equal(c.send(0, 3609.9 + 3600).established, false)
})

t.test('gc removes expired flows incrementally', async (t) => {
  const dp = setup() // conntrack capacity 64
  const conns = Array.from({ length: 40 }, (_, i) => new Conn(dp, 1000 + i, 'UDP'))
  for (const c of conns) c.send(0, 0) // expire at 30
  for (const c of conns.slice(0, 10)) c.send(0, 20) // expire at 50
  t.strictSame(dp.gc(29.999, 64), { flows: 0, affinity: 0 }, 'nothing expired yet')
  const removed: number[] = []
  for (let k = 0; k < 4; k++) {
    const r = dp.gc(30, 16)
    t.ok(r.flows <= 16, 'never more than the budget')
    removed.push(r.flows)
    if (k === 0) t.ok(dp.map('conntrack').size > 10, 'one call with a small budget does not sweep the whole table')
  }
  t.equal(removed.reduce((a, b) => a + b, 0), 30, 'a full sweep (4 x 16 slots) removes every expired flow')
  t.equal(dp.map('conntrack').size, 10)
  t.equal(dp.map('conntrack').stats.expirations, 30)
  t.equal(dp.map('conntrack').stats.deletes, 0)
  t.strictSame(new Set([...dp.flows()].map((f) => f.sport)), new Set(conns.slice(0, 10).map((c) => c.sport)))
  t.strictSame(dp.backends().map((b) => b.activeConnections).reduce((a, b) => a + b, 0), 10, 'backend connection counts follow')
  t.equal(dp.gc(50, 1000).flows, 10, 'a budget above the capacity is one full sweep')
  t.equal(dp.map('conntrack').size, 0)
})

t.test('per-flow packet and byte counters in both directions', async (t) => {
  const c = new Conn(setup())
  c.send(SYN, 1, 60)
  c.answer(SYN | ACK, 1, 60)
  c.send(ACK, 1, 52)
  c.send(PSH | ACK, 2, 1000)
  c.answer(PSH | ACK, 3, 1500)
  c.answer(PSH | ACK, 3, 1500)
  c.answer(ACK, 3)
  const e = c.entry!
  t.strictSame([e.packets, e.bytes, e.replyPackets, e.replyBytes], [3, 1112, 4, 3060])
  t.strictSame([e.created, e.lastSeen], [1, 3])
  const big = new Conn(c.dp, 2)
  big.send(SYN, 1, 0xffffffff)
  big.send(ACK, 1, 0xffffffff)
  t.equal(big.entry!.bytes, 2 * 0xffffffff, 'byte counters do not wrap at 32 bits')
})

t.test('replies are reverse-NATed to the service address', async (t) => {
  const dp = setup()
  dp.upsertBackend({ id: 10, address: 'fd00::a', port: 8443 })
  dp.upsertService({ id: 2, frontends: [frontend('fd00:ffff::1', 443)], backends: [10] })
  const c = new Conn(dp)
  c.send(SYN, 1)
  t.strictSame(c.answer(SYN | ACK, 1), {
    verdict: 'reply', reason: 'none', serviceId: 1, backendId: 1, address: VIP, port: 80, established: true, affinityHit: false,
  })
  const d6 = dp.decide({ src: 'fd00:1::1', sport: 5000, dst: 'fd00:ffff::1', dport: 443, protocol: 'TCP', tcpFlags: SYN }, 1)
  t.strictSame([d6.verdict, d6.address, d6.port], ['forward', 'fd00::a', 8443])
  t.strictSame(dp.decide({ src: 'fd00::a', sport: 8443, dst: 'fd00:1::1', dport: 5000, protocol: 'TCP', tcpFlags: SYN | ACK }, 1), {
    verdict: 'reply', reason: 'none', serviceId: 2, backendId: 10, address: 'fd00:ffff::1', port: 443, established: true, affinityHit: false,
  })
  // A packet from the backend that belongs to no flow is not a reply.
  const stray = dp.decide({ src: '10.1.0.1', sport: 8080, dst: CLIENT, dport: 1, protocol: 'TCP' }, 1)
  t.strictSame([stray.verdict, stray.reason], ['pass', 'no-frontend'])
})

t.test('an established flow keeps a backend that became terminating; new flows avoid it', async (t) => {
  const dp = makeDataplane()
  addBackends(dp, 3)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2, 3] })
  const c = new Conn(dp)
  drive(c, PATHS.established.steps, 1)
  const b = c.entry!.backendId
  dp.upsertBackend({ id: b, address: `10.1.0.${b}`, port: 8080, state: 'terminating' })
  t.notOk(dp.services()[0].activeBackends.includes(b))
  const d = c.send(PSH | ACK, 2)
  t.strictSame([d.verdict, d.established, d.backendId], ['forward', true, b])
  t.equal(c.answer(ACK, 2).verdict, 'reply')
  const chosen = countBy(Array.from({ length: 300 }, (_, i) => dp.decide({ ...c.orig, sport: 1 + i, tcpFlags: SYN }, 3).backendId))
  t.equal(chosen.get(b), undefined, 'no new flow to the terminating backend')
  t.equal(chosen.size, 2, 'new flows spread over the other two')
  dp.upsertBackend({ id: b, address: `10.1.0.${b}`, port: 8080, state: 'active' })
  const again = countBy(Array.from({ length: 300 }, (_, i) => dp.decide({ ...c.orig, sport: 1000 + i, tcpFlags: SYN }, 4).backendId))
  t.ok((again.get(b) ?? 0) > 50, 'active again: it takes new flows')
})

t.test('removing or moving a backend removes its flows', async (t) => {
  const dp = setup()
  const conns = [1, 2, 3, 4, 5, 6].map((p) => new Conn(dp, p))
  for (const c of conns) drive(c, PATHS.established.steps, 1)
  t.strictSame(conns.map((c) => c.entry!.backendId), [1, 2, 3, 1, 2, 3])
  // Taken out of the service: its established flows live on until the backend is deleted.
  dp.upsertService({ id: 1, frontends: [frontend(VIP, 80, 'TCP'), frontend(VIP, 53, 'UDP'), frontend(VIP, 9000, 'SCTP')], backends: [2, 3], scheduler: 'rr' })
  t.strictSame([conns[0].send(ACK, 2).established, conns[0].entry!.backendId], [true, 1])
  dp.deleteBackend(1)
  t.equal(conns[0].entry, null)
  t.equal(conns[3].entry, null)
  t.strictSame([...dp.flows()].map((f) => f.backendId).sort(), [2, 2, 3, 3])
  const d = conns[0].send(ACK, 3)
  t.strictSame([d.established, d.backendId === 2 || d.backendId === 3], [false, true], 'its next packet is a new flow')
  // A backend that moves to another address loses its flows (they point at the old address).
  dp.upsertBackend({ id: 2, address: '10.2.0.2', port: 8080 })
  t.strictSame([...dp.flows()].filter((f) => f.backendId === 2), [])
  t.equal(dp.backends().find((b) => b.id === 2)!.activeConnections, 0)
  // Changing only its weight or zone keeps them.
  const before = [...dp.flows()].length
  dp.upsertBackend({ id: 3, address: '10.1.0.3', port: 8080, weight: 7, zone: 'z' })
  t.equal([...dp.flows()].length, before)
})
