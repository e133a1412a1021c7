// LoadBalancerRR as kube-proxy's userspace roundrobin.go has it: order, index, affinity with
// its whole-second timeout, and what a new endpoint set keeps and forgets. The shuffle is
// made the identity (random() close to 1 swaps each element with itself) so orders are exact.
import t from 'tap'
import { LoadBalancerRR } from '../../../lib/modes/userspace/round-robin.js'

const identity = () => 0.999999
const A = '10.0.0.1:80'
const B = '10.0.0.2:80'
const C = '10.0.0.3:80'

t.test('round-robin walks the endpoints in order and wraps', async (t) => {
  const lb = new LoadBalancerRR(identity)
  lb.setEndpoints('svc', [C, A, B])
  const picks = Array.from({ length: 7 }, () => lb.next('svc', '1.1.1.1', 0)!.endpoint)
  t.same(picks, [A, B, C, A, B, C, A])
  t.equal(lb.next('missing', '1.1.1.1', 0), undefined, 'no such ServicePort')
  lb.setEndpoints('empty', [])
  t.equal(lb.next('empty', '1.1.1.1', 0), undefined, 'no endpoints')
})

t.test('a shuffle that is not the identity is still a permutation walked in order', async (t) => {
  let x = 0
  const lb = new LoadBalancerRR(() => ((x = (x * 7 + 3) % 10) / 10))
  lb.setEndpoints('svc', [A, B, C])
  const order = lb.order('svc')!.endpoints
  t.same([...order].sort(), [A, B, C])
  t.same(Array.from({ length: 6 }, () => lb.next('svc', '1.1.1.1', 0)!.endpoint), [...order, ...order])
})

interface AffinityCase {
  name: string
  /** [client, now] per pick. */
  picks: [string, number][]
  want: string[]
  reasons?: string[]
}

const affinityCases: AffinityCase[] = [
  { name: 'a client stays on its endpoint; others go on round-robin', picks: [['c1', 0], ['c2', 1], ['c1', 2], ['c3', 3], ['c2', 4]], want: [A, B, A, C, B], reasons: ['round-robin', 'round-robin', 'affinity', 'round-robin', 'affinity'] },
  // 10 s timeout: 9.9 s truncates to 9 (< 10, kept); 10 s later is >= 10 (expired).
  { name: 'the timeout counts whole seconds since the last use', picks: [['c1', 0], ['c1', 9.9], ['c1', 19.8], ['c1', 29.8]], want: [A, A, A, B], reasons: ['round-robin', 'affinity', 'affinity', 'round-robin'] },
]

for (const c of affinityCases) {
  t.test(`affinity: ${c.name}`, async (t) => {
    const lb = new LoadBalancerRR(identity)
    lb.setAffinity('svc', 10)
    lb.setEndpoints('svc', [A, B, C])
    const got = c.picks.map(([client, now]) => lb.next('svc', client, now)!)
    t.same(got.map((g) => g.endpoint), c.want)
    if (c.reasons) t.same(got.map((g) => g.reason), c.reasons)
  })
}

t.test('reset skips the affinity entry and writes the new endpoint', async (t) => {
  const lb = new LoadBalancerRR(identity)
  lb.setAffinity('svc', 100)
  lb.setEndpoints('svc', [A, B])
  t.equal(lb.next('svc', 'c1', 0)!.endpoint, A)
  t.equal(lb.next('svc', 'c1', 1, true)!.endpoint, B)
  t.equal(lb.next('svc', 'c1', 2)!.endpoint, B, 'affinity now names the endpoint the reset chose')
})

t.test('endpoint set changes: same set keeps state, new set reshuffles and forgets departed clients', async (t) => {
  const lb = new LoadBalancerRR(identity)
  lb.setAffinity('svc', 100)
  lb.setEndpoints('svc', [A, B, C])
  lb.next('svc', 'c1', 0) // A
  lb.next('svc', 'c2', 0) // B
  lb.setEndpoints('svc', [C, B, A])
  t.equal(lb.order('svc')!.next, 2, 'the same set in another order changes nothing')
  lb.setEndpoints('svc', [B, C])
  t.same(lb.order('svc'), { endpoints: [B, C], next: 0 }, 'a new set starts over')
  t.same(lb.affinityEntries('svc', 1).map((a) => a.clientIP), ['c2'], "c1's endpoint left: its entry went")
  lb.setEndpoints('svc', [])
  t.same(lb.affinityEntries('svc', 1), [], 'no endpoints: every client forgotten')
  lb.setEndpoints('svc', [B])
  t.equal(lb.next('svc', 'c2', 2)!.reason, 'round-robin')
})

t.test('cleanup removes expired entries only; turning affinity off forgets all', async (t) => {
  const lb = new LoadBalancerRR(identity)
  lb.setAffinity('svc', 10)
  lb.setEndpoints('svc', [A, B])
  lb.next('svc', 'old', 0)
  lb.next('svc', 'new', 15)
  t.equal(lb.cleanup(20), 1)
  t.same(lb.affinityEntries('svc', 20).map((a) => a.clientIP), ['new'])
  lb.setAffinity('svc', 0)
  t.same(lb.affinityEntries('svc', 20), [])
  t.equal(lb.next('svc', 'new', 21)!.affinity, undefined, 'no affinity written without ClientIP')
})
