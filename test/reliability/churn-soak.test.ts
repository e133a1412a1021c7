// Bounded churn soak: millions of flows through decideBatch while services and endpoints
// change continuously (backends added, drained, re-activated, removed and deleted). A model
// of every live flow (client tuple -> backend) is kept in typed arrays. Checked:
//  - no flow to a live endpoint is lost: every packet of a live flow whose backend still
//    exists is decided as established, to the same backend;
//  - new flows only go to active backends of their service;
//  - conntrack counts match the flows alive: at each checkpoint (clock jumped past the close
//    timeout, full gc) conntrack size == live flows in the model, and the dump invariants hold;
//  - RSS is stable: sampled all along; after warm-up it grows by less than 64 MiB.
// SOAK_SECONDS (default 60, what CI runs) sets the duration; e.g. SOAK_SECONDS=600 locally.
import t from 'tap'
import { Dataplane, DecisionBatch, FlowBatch, TCP_FLAGS } from '../../lib/index.js'
import { checkInvariants } from './helpers/invariants.js'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
const SERVICES = 32
const LIVE = 100_000 // flows the model keeps open at once
const CAPACITY = 1 << 18
const N = 4096 // batch size

t.test(`churn soak (${SECONDS} s)`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
  const dp = new Dataplane({
    seed: 31n,
    capacity: { services: 64, frontends: 128, backends: 4096, conntrack: CAPACITY, affinity: 1024 },
    conntrackFullPolicy: 'refuse',
    timeouts: { tcpSynSent: 86400, tcpClose: 10 },
  })
  let x = 12345
  const rnd = (n: number) => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x % n)

  // Services: VIP 172.30.s.1:80, 4..8 backends each; the model's active / listed sets.
  let nextBackend = 1
  const listed: number[][] = []
  const state = new Map<number, 'active' | 'terminating'>()
  const addBackend = () => {
    const id = nextBackend++
    dp.upsertBackend({ id, address: `10.${1 + (id >> 16)}.${(id >> 8) & 255}.${id & 255}`, port: 8080 })
    state.set(id, 'active')
    return id
  }
  const program = (s: number) => dp.upsertService({ id: s + 1, frontends: [{ address: `172.30.${s}.1`, port: 80, protocol: 'TCP', scope: 'external' }], backends: listed[s]!, scheduler: (['maglev', 'random', 'rr', 'lc'] as const)[s % 4] })
  for (let s = 0; s < SERVICES; s++) {
    listed.push(Array.from({ length: 4 + (s % 5) }, addBackend))
    program(s)
  }

  // Live flows: client address (11.x.x.x) and port, service, backend.
  const fSrc = new Uint32Array(LIVE)
  const fPort = new Uint16Array(LIVE)
  const fSvc = new Uint8Array(LIVE)
  const fBackend = new Uint32Array(LIVE)
  const used = new Uint8Array(LIVE)
  let liveCount = 0
  const free = new Int32Array(LIVE)
  let freeTop = 0
  for (let k = LIVE - 1; k >= 0; k--) free[freeTop++] = k
  let clientSeq = 0

  const fb = new FlowBatch(N)
  const out = new DecisionBatch(N)
  for (let i = 0; i < N; i++) fb.set(i, { src: '11.0.0.1', sport: 1, dst: '172.30.0.1', dport: 80, protocol: 'TCP', tcpFlags: TCP_FLAGS.SYN })
  const view = new DataView(fb.buffer.buffer)
  const slotOf = new Int32Array(N) // model slot of batch entry i (-1: a new flow into a free slot)
  const target = new Int32Array(N)

  let now = 10
  let flowsTotal = 0
  let packets = 0
  let lost = 0
  let wrongBackend = 0
  let refusedNew = 0
  let endpointsChanged = 0
  let checkpoints = 0
  const rss: Array<[number, number]> = []
  const started = Date.now()
  let lastSample = 0
  let lastCheckpoint = started
  let warmRss = 0

  while (Date.now() - started < SECONDS * 1000) {
    // Build a batch: ~half new flows (into free model slots), ~half packets of live flows
    // (1 in 40 of them an RST that closes the flow).
    for (let i = 0; i < N; i++) {
      const off = i * 48
      let slot = rnd(LIVE)
      for (let k = 0; k < 3 && !used[slot]; k++) slot = rnd(LIVE)
      const old = used[slot] && (rnd(2) === 0 || freeTop === 0)
      if (old) {
        slotOf[i] = slot
        view.setUint32(off + 12, fSrc[slot]!, false)
        view.setUint32(off + 28, (172 << 24) | (30 << 16) | (fSvc[slot]! << 8) | 1, false)
        view.setUint16(off + 32, fPort[slot]!, true)
        const close = rnd(40) === 0 || freeTop === 0
        fb.buffer[off + 38] = close ? TCP_FLAGS.RST : TCP_FLAGS.ACK
        target[i] = close ? 1 : 0
      } else {
        slotOf[i] = freeTop > 0 ? free[--freeTop]! : -1
        const c = clientSeq++
        const s = rnd(SERVICES)
        view.setUint32(off + 12, 0x0b000000 + (c >>> 14), false)
        view.setUint16(off + 32, 1024 + (c & 16383), true)
        view.setUint32(off + 28, (172 << 24) | (30 << 16) | (s << 8) | 1, false)
        fb.buffer[off + 38] = TCP_FLAGS.SYN
        target[i] = s
      }
    }
    now += 0.25 // virtual time: closed flows (tcpClose 10 s) expire 40 batches later
    dp.decideBatch(fb, now, out)
    packets += N
    for (let i = 0; i < N; i++) {
      const slot = slotOf[i]!
      const off = i * 48
      const isNew = fb.buffer[off + 38] === TCP_FLAGS.SYN
      if (!isNew) {
        // A packet of a live flow: established, same backend.
        if (!used[slot]) continue // closed earlier in this batch
        if (!out.established(i) || out.verdict(i) !== 'forward') lost++
        else if (out.backendId(i) !== fBackend[slot]) wrongBackend++
        if (target[i] === 1) {
          used[slot] = 0
          free[freeTop++] = slot
          liveCount--
        }
        continue
      }
      flowsTotal++
      const v = out.verdict(i)
      if (v !== 'forward') {
        refusedNew++
        if (slot >= 0) free[freeTop++] = slot
        continue
      }
      const b = out.backendId(i)
      if (state.get(b) !== 'active' || !listed[target[i]!]!.includes(b)) wrongBackend++
      used[slot] = 1
      fSrc[slot] = view.getUint32(off + 12, false)
      fPort[slot] = view.getUint16(off + 32, true)
      fSvc[slot] = target[i]!
      fBackend[slot] = b
      liveCount++
    }

    // Endpoint churn: one change per batch.
    endpointsChanged++
    const s = rnd(SERVICES)
    const list = listed[s]!
    const what = rnd(4)
    if (what === 0 && list.length < 10) {
      list.push(addBackend())
      program(s)
    } else if (what === 1) {
      // Drain one: its established flows must survive.
      const id = list[rnd(list.length)]!
      if (state.get(id) === 'active' && list.filter((b) => state.get(b) === 'active').length > 1) {
        dp.upsertBackend({ id, address: `10.${1 + (id >> 16)}.${(id >> 8) & 255}.${id & 255}`, port: 8080, state: 'terminating' })
        state.set(id, 'terminating')
      }
    } else if (what === 2) {
      const id = list.find((b) => state.get(b) === 'terminating')
      if (id !== undefined) {
        if (rnd(2)) {
          dp.upsertBackend({ id, address: `10.${1 + (id >> 16)}.${(id >> 8) & 255}.${id & 255}`, port: 8080, state: 'active' })
          state.set(id, 'active')
        } else {
          // The endpoint goes away: its flows go with it (they are no longer to a live endpoint).
          list.splice(list.indexOf(id), 1)
          program(s)
          dp.deleteBackend(id)
          state.delete(id)
          for (let k = 0; k < LIVE; k++)
            if (used[k] && fBackend[k] === id) {
              used[k] = 0
              free[freeTop++] = k
              liveCount--
            }
        }
      }
    } else {
      program(s) // an update that changes nothing must disturb nothing
    }
    dp.gc(now, 16384) // incremental: the whole table every 16 batches

    const elapsed = Date.now() - started
    if (elapsed - lastSample >= 2000) {
      lastSample = elapsed
      const r = process.memoryUsage().rss / 2 ** 20
      rss.push([Math.round(elapsed / 1000), Math.round(r)])
      if (!warmRss && elapsed > Math.min(10_000, SECONDS * 250)) warmRss = r
    }
    // Checkpoint: jump past the close timeout, collect everything expired, compare counts.
    if (Date.now() - lastCheckpoint > Math.max(5000, SECONDS * 1000 / 6)) {
      lastCheckpoint = Date.now()
      now += 11
      for (let k = 0; k < CAPACITY / 65536 + 1; k++) dp.gc(now, 65536)
      const size = dp.map('conntrack').size
      t.equal(size, liveCount, `checkpoint ${++checkpoints}: conntrack holds ${size} flows, the model ${liveCount} alive`)
      const bad = checkInvariants(dp)
      t.strictSame(bad, [], `checkpoint ${checkpoints}: invariants`)
    }
  }
  const finalRss = process.memoryUsage().rss / 2 ** 20
  t.equal(lost, 0, `no flow to a live endpoint lost (${packets - flowsTotal} packets of live flows)`)
  t.equal(wrongBackend, 0, 'every new flow to an active backend of its service; every live flow kept its backend')
  t.equal(refusedNew, 0, 'no new flow refused (conntrack never full)')
  t.ok(flowsTotal > 1_000_000 || SECONDS < 60, `${flowsTotal} flows opened`)
  t.ok(finalRss - warmRss < 64, `RSS after warm-up ${warmRss.toFixed(0)} MiB, at the end ${finalRss.toFixed(0)} MiB`)
  t.comment(`soak: ${SECONDS} s, ${flowsTotal} flows, ${packets} packets, ${endpointsChanged} endpoint changes, ${checkpoints} checkpoints, live ${liveCount}, lost ${lost}`)
  t.comment(`soak RSS MiB over time (s, MiB): ${rss.map(([s, m]) => `${s}:${m}`).join(' ')}`)
  dp.destroy()
})
