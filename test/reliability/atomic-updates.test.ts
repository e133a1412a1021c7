// Atomic updates: decideBatch calls interleaved with service and endpoint updates (backend
// sets replaced, schedulers changed, frontends moved between services, backends drained,
// re-addressed, deleted; refused updates among them) never see a half-applied service. A JS
// model, kept apart from the dataplane, says after every update what each service is; every
// decision of every batch is checked against it:
//  - a new flow goes to an active backend of the service that owns the frontend, at that
//    backend's current address and port;
//  - an established flow keeps its backend, at the backend's current address;
//  - no frontend: pass; a service without active backends: its empty verdict;
// and the dump invariants hold after every update.
import { seededRandom } from '../../lib/util/random.js'
import t from 'tap'
import { Dataplane, DecisionBatch, FlowBatch, TCP_FLAGS } from '../../lib/index.js'
import type { SchedulerName, ServiceSpec } from '../../lib/index.js'
import { checkInvariants } from './helpers/invariants.js'

const SCHEDULERS: SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']
const ROUNDS = Number(process.env.RELIABILITY_ATOMIC_ROUNDS ?? 3000)

/** An integer in [0, n) from the library's seeded PRNG. */
function rng(seed: number) {
  const next = seededRandom(seed)
  return (n: number) => (next() * n) | 0
}

interface ModelBackend { address: string; port: number; state: 'active' | 'terminating' | 'quarantined' }
interface ModelService { frontends: string[]; backends: number[]; empty: 'reject' | 'drop' }

t.test('batches interleaved with updates never see a half-applied service', async (t) => {
  const r = rng(99)
  const dp = new Dataplane({ seed: 21n, capacity: { services: 8, frontends: 32, backends: 32, conntrack: 1 << 15, affinity: 1024 }, maglevTableSize: 251 })
  const backends = new Map<number, ModelBackend>()
  const services = new Map<number, ModelService>()
  const VIPS = Array.from({ length: 12 }, (_, i) => `172.30.0.${i + 1}`)
  const fkey = (vip: string) => `${vip}:80`
  const ownerOf = (vip: string) => [...services.entries()].find(([, s]) => s.frontends.includes(fkey(vip)))?.[0]
  const flows = new Map<string, { bid: number; sid: number }>() // "client:sport>vip" -> backend and service of a tracked flow
  let decisions = 0
  let updates = 0
  let refused = 0
  let newFlows = 0
  let established = 0

  const upsertBackend = (id: number) => {
    const b: ModelBackend = { address: `10.1.${r(2)}.${1 + r(40)}`, port: 8080 + r(2), state: (['active', 'active', 'terminating', 'quarantined'] as const)[r(4)]! }
    if ([...backends.entries()].some(([k, o]) => k !== id && o.address === b.address && o.port === b.port)) return
    dp.upsertBackend({ id, ...b })
    const old = backends.get(id)
    // A backend that moved loses its flows (they hold the old address).
    if (old && (old.address !== b.address || old.port !== b.port)) for (const [k, v] of flows) if (v.bid === id) flows.delete(k)
    backends.set(id, b)
  }
  const upsertService = (id: number) => {
    const ids = [...backends.keys()].filter(() => r(3) === 0)
    const mine = services.get(id)?.frontends ?? []
    const free = VIPS.map(fkey).filter((k) => ownerOf(k.split(':')[0]!) === undefined || mine.includes(k))
    const frontends = free.filter(() => r(2) === 0).slice(0, 3)
    const spec: ServiceSpec = {
      id,
      frontends: frontends.map((k) => ({ address: k.split(':')[0]!, port: 80, protocol: 'TCP', scope: 'external' })),
      backends: ids,
      scheduler: SCHEDULERS[r(8)],
      emptyVerdict: r(2) ? 'reject' : 'drop',
      affinityTimeout: r(4) === 0 ? 30 : 0,
    }
    // Sometimes refused on purpose: an unknown backend, or a frontend another service owns.
    const refuse = r(6) === 0
    if (refuse) {
      const taken = VIPS.map(fkey).find((k) => { const o = ownerOf(k.split(':')[0]!); return o !== undefined && o !== id })
      if (taken && r(2)) spec.frontends.push({ address: taken.split(':')[0]!, port: 80, protocol: 'TCP', scope: 'external' })
      else spec.backends = [...ids, 999]
      t.throws(() => dp.upsertService(spec), 'refused update')
      refused++
      return
    }
    dp.upsertService(spec)
    const old = services.get(id)
    services.set(id, { frontends, backends: ids, empty: spec.emptyVerdict! })
    // Flows of a frontend the service no longer has stay tracked (conntrack keeps them), so the
    // model keeps them too; nothing to do.
    void old
  }

  for (let id = 1; id <= 12; id++) upsertBackend(id)
  for (let id = 1; id <= 6; id++) upsertService(id)

  const N = 64
  const fb = new FlowBatch(N)
  const out = new DecisionBatch(N)
  const tuples: Array<{ src: string; sport: number; vip: string }> = []
  let now = 1
  for (let round = 0; round < ROUNDS; round++) {
    // One update between batches.
    updates++
    const what = r(10)
    if (what < 4) upsertService(1 + r(6))
    else if (what < 7) upsertBackend(1 + r(14))
    else if (what < 8) {
      const id = 1 + r(6)
      if (services.has(id)) {
        dp.deleteService(id)
        services.delete(id)
        for (const [k, v] of flows) if (v.sid === id) flows.delete(k)
      }
    } else if (what < 9) {
      const id = 1 + r(14)
      const listed = [...services.values()].some((s) => s.backends.includes(id))
      if (backends.has(id) && !listed) {
        dp.deleteBackend(id)
        backends.delete(id)
        for (const [k, v] of flows) if (v.bid === id) flows.delete(k)
      } else if (backends.has(id)) {
        t.throws(() => dp.deleteBackend(id), { message: /still listed by service/ })
        refused++
      }
    } else {
      dp.gc(now, 4096)
    }
    if (round % 50 === 0) {
      const bad = checkInvariants(dp)
      if (bad.length) t.fail(`round ${round}: ${bad.join('; ')}`)
    }

    // A batch: new flows and packets of known flows, to every VIP (owned or not).
    tuples.length = 0
    for (let i = 0; i < N; i++) {
      const vip = VIPS[r(VIPS.length)]!
      const src = `192.168.${r(2)}.${1 + r(20)}`
      const sport = 1024 + r(20)
      tuples.push({ src, sport, vip })
      fb.set(i, { src, sport, dst: vip, dport: 80, protocol: 'TCP', tcpFlags: TCP_FLAGS.SYN })
    }
    now += 0.01
    dp.decideBatch(fb, now, out)
    for (let i = 0; i < N; i++) {
      decisions++
      const { src, sport, vip } = tuples[i]!
      const v = out.verdict(i)
      const sid = out.serviceId(i)
      const bid = out.backendId(i)
      const fk = `${src}:${sport}>${vip}`
      const owner = ownerOf(vip)
      const where = `round ${round} flow ${fk}`
      if (v === 'forward') {
        const b = backends.get(bid)
        if (!b) { t.fail(`${where}: forwarded to backend ${bid}, which the model does not have`); continue }
        if (out.address(i) !== b.address || out.port(i) !== b.port) t.fail(`${where}: forwarded to ${out.address(i)}:${out.port(i)}, backend ${bid} is ${b.address}:${b.port}`)
        if (out.established(i)) {
          established++
          const known = flows.get(fk)
          if (known && known.bid !== bid) t.fail(`${where}: established flow changed backend ${known.bid} -> ${bid}`)
        } else {
          newFlows++
          const s = services.get(sid)
          if (owner !== sid || !s) t.fail(`${where}: new flow for service ${sid}, the frontend's owner is ${owner}`)
          else if (!s.backends.includes(bid) || b.state !== 'active') t.fail(`${where}: new flow to backend ${bid} (${b.state}), service ${sid} has ${s.backends.join(',')}`)
          flows.set(fk, { bid, sid })
        }
      } else if (v === 'pass') {
        if (owner !== undefined && !out.established(i)) t.fail(`${where}: pass, but service ${owner} owns the frontend`)
      } else if (v === 'reject' || v === 'drop') {
        const s = owner === undefined ? undefined : services.get(owner)
        const active = s?.backends.filter((id) => backends.get(id)?.state === 'active') ?? []
        if (!s) t.fail(`${where}: ${v} without a service`)
        else if (out.reason(i) !== 'no-backends' || active.length || v !== s.empty) t.fail(`${where}: ${v}/${out.reason(i)}, service ${owner} has active backends ${active.join(',')} and empty verdict ${s.empty}`)
      } else {
        t.fail(`${where}: verdict ${v}`)
      }
    }
  }
  t.strictSame(checkInvariants(dp), [], 'invariants at the end')
  t.ok(newFlows > 1000 && established > 100, `${decisions} decisions (${newFlows} new flows, ${established} established), ${updates} updates (${refused} refused): every decision consistent with the service as a whole`)
  t.comment(`atomic: ${decisions} decisions checked across ${updates} updates (${refused} refused)`)
})
