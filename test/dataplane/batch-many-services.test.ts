// The batch path over many services: decideBatch looks ahead at the frontend, service, backend
// set, affinity entry and predicted backend of every flow of a group before deciding any of
// them. That look-ahead must never change a decision: over hundreds of services with every
// scheduler, affinity, backend sets of 0 to 40 backends, and traffic that mixes new flows,
// tracked flows, replies, repeats inside one batch and clients coming back to their affinity
// service, decideBatch gives exactly decide()'s decisions and leaves the same maps.
import t from 'tap'
import { TCP_FLAGS } from '../../lib/index.js'
import type { Dataplane, Decision, Flow, SchedulerName } from '../../lib/index.js'
import { decideBoth, frontend, makeDataplane, openedFlows, prng } from './helpers/fixtures.js'

const { SYN, ACK } = TCP_FLAGS
const SCHEDULERS: SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']
const SERVICES = 400
const BACKENDS = 3000
const AFFINITY_TIMEOUT = 20

const vip = (k: number) => `172.20.${k >> 8}.${k & 255}`

function build(): Dataplane {
  const dp = makeDataplane({
    seed: 31n,
    rngSeed: 32n,
    maglevTableSize: 251,
    capacity: { services: SERVICES, frontends: 2 * SERVICES, backends: BACKENDS, conntrack: 65536, affinity: 16384 },
  })
  const rnd = prng(33)
  for (let id = 1; id <= BACKENDS; id++)
    dp.upsertBackend({ id, address: `10.2.${id >> 8}.${id & 255}`, port: 8080, weight: 1 + (id % 3), state: id % 11 === 0 ? 'terminating' : 'active' })
  for (let k = 0; k < SERVICES; k++) {
    const size = k % 37 === 0 ? 0 : 1 + Math.floor(rnd() * rnd() * 40)
    const backends = Array.from({ length: size }, () => 1 + Math.floor(rnd() * BACKENDS))
    dp.upsertService({
      id: k + 1,
      frontends: [frontend(vip(k)), frontend(vip(k), 53, 'UDP')],
      backends,
      scheduler: SCHEDULERS[k % SCHEDULERS.length],
      affinityTimeout: k % 5 === 0 ? AFFINITY_TIMEOUT : 0,
    })
  }
  return dp
}

/** Flows to random services from a small pool of clients (so affinity entries are met again). */
class Traffic {
  private readonly rnd = prng(34)
  private nextPort = 1024
  private readonly known: Array<{ orig: Flow; reply: Flow }> = []

  batch(n: number): Flow[] {
    const out: Flow[] = []
    while (out.length < n) {
      const r = this.rnd()
      if (r < 0.45 || this.known.length === 0 || out.length === 0) {
        const k = Math.floor(this.rnd() * SERVICES)
        const udp = this.rnd() < 0.2
        out.push({ src: `192.168.7.${1 + Math.floor(this.rnd() * 30)}`, sport: this.nextPort++, dst: vip(k), dport: udp ? 53 : 80, protocol: udp ? 'UDP' : 'TCP', tcpFlags: udp ? 0 : SYN, bytes: 60 })
      } else if (r < 0.6) {
        out.push({ ...out[Math.floor(this.rnd() * out.length)], tcpFlags: ACK }) // again, in this batch
      } else if (r < 0.78) {
        const k = this.known[Math.floor(this.rnd() * this.known.length)]
        out.push({ ...k.orig, tcpFlags: k.orig.protocol === 'TCP' ? ACK : 0, bytes: 100 })
      } else if (r < 0.92) {
        const k = this.known[Math.floor(this.rnd() * this.known.length)]
        out.push({ ...k.reply, tcpFlags: k.reply.protocol === 'TCP' ? SYN | ACK : 0, bytes: 1500 })
      } else if (r < 0.96) {
        out.push({ src: '192.168.7.99', sport: this.nextPort++, dst: `172.21.0.${Math.floor(this.rnd() * 250)}`, dport: 80, protocol: 'TCP', tcpFlags: SYN })
      } else {
        const k = this.known[Math.floor(this.rnd() * this.known.length)] // a reply from a backend the flow did not get
        out.push({ ...k.reply, src: `10.2.0.${1 + Math.floor(this.rnd() * 200)}`, tcpFlags: SYN | ACK })
      }
    }
    return out
  }

  /** Remember forwarded flows so later batches send their packets and replies. */
  learn(flows: Flow[], decisions: Decision[]): void {
    this.known.push(...openedFlows(flows, decisions))
  }
}

t.test('decideBatch over 400 services decides exactly like decide(), batch after batch', async (t) => {
  const single = build()
  const batched = build()
  const traffic = new Traffic()
  const seen = new Set<string>()
  let now = 1
  for (const n of [256, 64, 1, 17, 256, 256, 33, 256, 256, 256]) {
    const flows = traffic.batch(n)
    const expected = decideBoth(t, single, batched, flows, now)
    for (const d of expected) seen.add(`${d.verdict}${d.established ? '+est' : ''}${d.affinityHit ? '+aff' : ''}`)
    traffic.learn(flows, expected)
    now += 7 // affinity entries (20 s) and unanswered UDP flows expire along the way
  }
  for (const v of ['forward', 'forward+est', 'forward+aff', 'reply+est', 'pass', 'reject']) t.ok(seen.has(v), `the traffic exercised ${v}`)
  const affinity = batched.map('affinity').stats
  t.ok(affinity.hits > 0 && affinity.misses > 0 && affinity.expirations > 0, 'affinity hits, misses and expirations')
})
