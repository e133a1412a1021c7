// NftEvaluator.apply(): the evaluator follows nft transactions in place. After every sync of
// the nftables mode over random clusters (a full first transaction, then partial ones, the
// stale-chain deletions in between), an evaluator fed only the transactions holds what one
// loaded from the whole table holds and decides every packet the same; a failing transaction
// changes nothing; nft's checks hold; commands outside kube-proxy's set recompile and keep
// counters and dynamic set elements.
import t from 'tap'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import { Proxier } from '../../lib/modes/index.js'
import { NftEvaluator } from '../../lib/nftables/nft/evaluator.js'
import { NftParseError } from '../../lib/nftables/nft/errors.js'
import { elementText, ruleText } from '../../lib/nftables/nft/serialize.js'
import type { NftRuleset } from '../../lib/nftables/nft/types.js'
import { seededRandom } from '../../lib/util/random.js'
import { clusterArb, nodeOptionsFor, objectsOf, packetsFor } from '../fixtures/random-cluster'
import { testNodeIP } from '../fixtures/objects'
import { loopbackClusterObjects } from '../fixtures/loopback-cluster'

/** A ruleset as comparable data: chains by name with their rules in order, sets by name with their elements sorted. */
function canonical(rs: NftRuleset): unknown {
  const byName = <T extends { name: string }>(xs: Iterable<T>) => [...xs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return [...rs.tables].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, table]) => ({
    key,
    comment: table.comment,
    chains: byName(table.chains.values()).map((c) => ({ name: c.name, base: c.base, comment: c.comment, rules: c.rules.map((r) => ruleText(r)) })),
    sets: byName(table.sets.values()).map((s) => ({
      name: s.name, kind: s.kind, keyType: s.keyType, dataType: s.dataType, flags: s.flags, timeout: s.timeout,
      elements: s.elements.map((e) => elementText(e)).sort(),
    })),
  }))
}

const options = (seed: number) => ({ localAddresses: [testNodeIP], seed })

t.test('an evaluator fed the transactions equals one loaded from the table, sync after sync', async (t) => {
  let syncs = 0
  let packets = 0
  fc.assert(
    fc.property(clusterArb, fc.array(fc.nat(), { minLength: 2, maxLength: 4 }), (c, flips) => {
      let now = 100
      const p = new Proxier({ ...nodeOptionsFor(c, { serviceCIDRs: ['172.30.0.0/16'] }), mode: 'nftables', clock: () => now })
      const followed = new NftEvaluator('', options(7))
      const rand = seededRandom(c.seed)
      for (const [i, flip] of [-1, ...flips].entries()) {
        p.applyList(objectsOf(c, flip === -1 ? -1 : flip % Math.max(1, c.services.length * 8)))
        if (i === 2 && c.services.length > 0) p.deleteService({ metadata: { namespace: 'ns', name: 'svc0' } } as never)
        p.sync()
        now += 2 // stale chains are deleted by the next sync
        const last = p.nftables!.lastSync()!
        if (last.staleChainDeletion !== undefined) followed.apply(last.staleChainDeletion.text())
        followed.apply(last.transaction.text())
        syncs++
        const loaded = new NftEvaluator(p.nftablesRuleset(), options(7))
        if (!isDeepStrictEqual(canonical(followed.ruleset), canonical(loaded.ruleset))) {
          t.same(canonical(followed.ruleset), canonical(loaded.ruleset), `sync ${i + 1}: the followed ruleset`)
          return false
        }
        // Same seed, same packets in the same order: the same numgen draws, so the same answers.
        const fresh = new NftEvaluator(p.nftablesRuleset(), options(11 + i))
        const again = new NftEvaluator(followed.ruleset, options(11 + i))
        for (const pkt of packetsFor(p, c, 40, rand, 20000 + 100 * i, 1)) {
          const q = { src: pkt.src, sport: pkt.sport, dst: pkt.dst, dport: pkt.dport, protocol: pkt.protocol, hook: pkt.hook ?? 'prerouting', now: 1 } as const
          const a = again.evaluate(q)
          const b = fresh.evaluate(q)
          packets++
          if (a.action !== b.action || a.endpoint !== b.endpoint || a.masquerade !== b.masquerade || a.servicePort !== b.servicePort) {
            t.same(a, b, `sync ${i + 1}: ${JSON.stringify(q)}`)
            return false
          }
        }
      }
      return true
    }),
    { numRuns: 40, seed: 15 },
  )
  t.ok(syncs >= 120, `${syncs} syncs compared`)
  t.ok(packets > 1000, `${packets} packets decided the same`)
})

const TABLE = `add table ip t
add chain ip t pre { type nat hook prerouting priority -100 ; }
add chain ip t svc
add chain ip t ep
add map ip t m { type ipv4_addr . inet_proto . inet_service : verdict ; }
add set ip t aff { type ipv4_addr ; flags dynamic,timeout ; timeout 100s ; }
add rule ip t pre ip daddr . meta l4proto . th dport vmap @m
add rule ip t ep counter update @aff { ip saddr } meta l4proto tcp dnat to 10.1.0.1:8080
add rule ip t svc jump ep
add element ip t m { 10.0.0.1 . tcp . 80 : goto svc }
`
const pkt = { src: '10.9.0.1', sport: 1000, dst: '10.0.0.1', dport: 80, protocol: 'tcp', hook: 'prerouting', now: 10 } as const

t.test('a transaction changes what it touches, in place', async (t) => {
  const ev = new NftEvaluator(TABLE)
  t.equal(ev.evaluate(pkt).endpoint, '10.1.0.1:8080')
  ev.apply(`add chain ip t ep2
add rule ip t ep2 meta l4proto tcp dnat to 10.1.0.2:8080
flush chain ip t svc
add rule ip t svc jump ep2
add element ip t m { 10.0.0.2 . tcp . 80 : goto svc }
`)
  t.equal(ev.evaluate(pkt).endpoint, '10.1.0.2:8080', 'the flushed chain jumps to the new endpoint')
  t.equal(ev.evaluate({ ...pkt, dst: '10.0.0.2' }).endpoint, '10.1.0.2:8080', 'the new element is looked up')
  ev.apply('delete element ip t m { 10.0.0.2 . tcp . 80 }\n')
  t.equal(ev.evaluate({ ...pkt, dst: '10.0.0.2' }).action, 'accept', 'the deleted element is gone')
  t.equal(ev.counters()[0]!.packets, 1, 'the counter of the untouched rule counted the first packet')
  ev.apply('flush chain ip t ep\ndelete chain ip t ep\n')
  t.notOk(ev.ruleset.tables.get('ip t')!.chains.has('ep'), 'the unreferenced chain is deleted')
  t.equal(ev.evaluate(pkt).endpoint, '10.1.0.2:8080')
})

t.test('nft checks, all or nothing', async (t) => {
  const ev = new NftEvaluator(TABLE)
  const before = canonical(ev.ruleset)
  const refused: [string, RegExp][] = [
    ['delete chain ip t ep', /chain ep is still jumped to/],
    ['delete set ip t aff', /set aff is still used by a rule/],
    ['delete element ip t m { 10.0.0.9 . tcp . 80 }', /element 10\.0\.0\.9 \. tcp \. 80 does not exist in m/],
    ['add rule ip t svc jump nowhere', /chain nowhere does not exist/],
    ['add rule ip t nochain accept', /chain nochain does not exist/],
    ['add element ip t m { 10.0.0.3 . tcp . 80 : goto nowhere }', /chain nowhere does not exist/],
    ['add element ip t m { 10.0.0.3 . tcp . 80 }', /has no data/],
    ['add element ip t m { banana . tcp . 80 : accept }', /invalid address banana/],
    ['create chain ip t svc', /already exists/],
    ['add map ip t m { type ipv4_addr : verdict ; }', /another type/],
  ]
  for (const [bad, why] of refused) {
    // Good commands first: they must be undone when the bad one fails.
    const tx = `add chain ip t extra\nadd rule ip t extra jump svc\nadd element ip t m { 10.0.0.7 . tcp . 80 : goto svc }\nflush set ip t aff\n${bad}\n`
    const err = t.throws(() => ev.apply(tx), NftParseError, bad) as NftParseError
    t.match(err.message, why, `${bad}: ${err.message}`)
    t.equal(err.line, 5, `${bad}: the failing command's line`)
    t.same(canonical(ev.ruleset), before, `${bad}: nothing applied`)
    t.equal(ev.evaluate(pkt).endpoint, '10.1.0.1:8080', `${bad}: packets decided as before`)
  }
  t.throws(() => ev.apply(42 as never), TypeError)
})

t.test('other commands recompile, keeping counters and dynamic set elements', async (t) => {
  const ev = new NftEvaluator(TABLE)
  ev.evaluate(pkt)
  t.equal(ev.setElements('ip t', 'aff', 10).length, 1, 'the data path added an affinity entry')
  ev.apply('insert rule ip t pre meta l4proto udp drop\n')
  t.equal(ev.ruleset.tables.get('ip t')!.chains.get('pre')!.rules.length, 2, 'the rule is inserted')
  t.equal(ev.evaluate({ ...pkt, protocol: 'udp' }).action, 'drop')
  t.equal(ev.setElements('ip t', 'aff', 10).length, 1, 'the affinity entry is still there')
  t.equal(ev.counters()[0]!.packets, 1, 'the counter kept its count')
  ev.apply('flush set ip t aff\n')
  t.same(ev.setElements('ip t', 'aff', 10), [], 'flush set empties a dynamic set too')
  ev.apply('flush ruleset\n')
  t.equal(ev.ruleset.tables.size, 0)
  t.equal(ev.evaluate(pkt).action, 'accept')
})

t.test('the nftables mode routes through one evaluator that follows every sync', async (t) => {
  let now = 100
  const p = new Proxier({ mode: 'nftables', nodeName: 'kernel-node', nodeIPs: ['127.0.0.2'], podCIDRs: ['127.20.0.0/16'], serviceCIDRs: ['127.10.0.0/16'], seed: 3, clock: () => now })
  p.applyList(loopbackClusterObjects(0))
  p.sync()
  const ev = p.nftables!.evaluator()
  for (const v of [1, 2, 3, 4]) {
    now += 2
    p.applyList(loopbackClusterObjects(v))
    p.sync()
    t.equal(p.nftables!.evaluator(), ev, `sync ${v}: the same evaluator, not a reload`)
    t.same(canonical(ev.ruleset), canonical(new NftEvaluator(p.nftablesRuleset()).ruleset), `sync ${v}: it holds the table`)
    const endpoints = new Set(p.state.servicePorts().filter((s) => s.info.name === 'ns/plain:http').flatMap((s) => s.endpoints.filter((e) => e.ready).map((e) => `${e.ip}:${e.port}`)))
    const d = p.route({ src: '127.20.9.9', sport: 5000 + v, dst: '127.10.0.1', dport: 80, protocol: 'TCP', hook: 'prerouting', now })
    t.ok(d.action === 'dnat' && endpoints.has(`${d.address}:${d.port}`), `sync ${v}: route() DNATs to a current endpoint (${JSON.stringify(d)})`)
  }
})

t.test('syncs nothing routes through are not kept past a bound: the evaluator then loads the table', async (t) => {
  let now = 100
  const p = new Proxier({ mode: 'nftables', nodeName: 'kernel-node', nodeIPs: ['127.0.0.2'], podCIDRs: ['127.20.0.0/16'], seed: 3, clock: () => now })
  p.applyList(loopbackClusterObjects(0))
  p.sync()
  const ev = p.nftables!.evaluator()
  for (let i = 1; i <= 70; i++) {
    now += 2
    p.applyList(loopbackClusterObjects(i % 5))
    p.sync()
  }
  const after = p.nftables!.evaluator()
  t.not(after, ev, 'a fresh evaluator')
  t.same(canonical(after.ruleset), canonical(new NftEvaluator(p.nftablesRuleset()).ruleset), 'it holds the table')
})
