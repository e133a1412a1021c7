// What each sync sends to nft: kube-proxy's TestSyncProxyRulesRepeated, step by step, with
// its expected table after every sync and its operation count for every transaction; stale
// chains deleted by a later sync once a second old (virtual clock). Then the transaction text
// itself: a full first sync, and partial syncs that touch only what changed.
import t from 'tap'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { fakeOptions, fixture } from './fake-proxier'
import { sortNFTablesTransaction } from './kube-proxy-sort'
import { Proxier } from '../../lib/modes/index.js'
import { NftTableState } from '../../lib/nftables/kube-proxy/table-state.js'

const T = 'ip kube-proxy'

/** The chains and elements kube-proxy's expectations list for a ClusterIP service with endpoints ([chain, "ip:port"]). */
function served(chain: string, clusterIP: string, port: number, endpoints: [string, string][]): string[] {
  const vmap = endpoints.map(([c], i) => `${i} : goto ${c}`).join(' , ')
  const out = [
    `add element ${T} cluster-ips { ${clusterIP} }`,
    `add element ${T} service-ips { ${clusterIP} . tcp . ${port} : goto ${chain} }`,
    `add chain ${T} ${chain}`,
    `add rule ${T} ${chain} ip daddr ${clusterIP} ip saddr != 10.0.0.0/8 jump mark-for-masquerade`,
    `add rule ${T} ${chain} numgen random mod ${endpoints.length} vmap { ${vmap} }`,
  ]
  for (const [c, e] of endpoints) {
    out.push(`add chain ${T} ${c}`, `add rule ${T} ${c} ip saddr ${e.split(':')[0]} jump mark-for-masquerade`, `add rule ${T} ${c} meta l4proto tcp dnat to ${e}`)
  }
  return out
}

const svc1Chain = 'service-ULMVA6XW-ns1/svc1/tcp/p80'
const svc1 = served(svc1Chain, '172.30.0.41', 80, [['endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80', '10.0.1.1:80']])
const svc2 = served('service-MHHHYRWA-ns2/svc2/tcp/p8080', '172.30.0.42', 8080, [['endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080', '10.0.2.1:8080']])
const svc3Chain = 'service-4AT6LBPK-ns3/svc3/tcp/p80'
const ep31 = 'endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80'
const ep32 = 'endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80'
const ep33 = 'endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80'
const svc3 = served(svc3Chain, '172.30.0.43', 80, [[ep31, '10.0.3.1:80']])
const svc3b = served(svc3Chain, '172.30.0.43', 80, [[ep32, '10.0.3.2:80']])
const svc3c = served(svc3Chain, '172.30.0.43', 80, [[ep32, '10.0.3.2:80'], [ep33, '10.0.3.3:80']])
const svc4 = served('service-LAUZTJTB-ns4/svc4/tcp/p80', '172.30.0.44', 80, [['endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80', '10.0.4.1:80']])
const svc4NoEndpoints = [`add element ${T} cluster-ips { 172.30.0.44 }`, `add element ${T} no-endpoint-services { 172.30.0.44 . tcp . 80 comment "ns4/svc4:p80" : goto reject-chain }`]
const svc3NoEndpoints = [
  `add element ${T} cluster-ips { 172.30.0.43 }`, `add element ${T} no-endpoint-services { 172.30.0.43 . tcp . 80 comment "ns3/svc3:p80" : goto reject-chain }`,
  `add chain ${T} ${svc3Chain}`, `add chain ${T} ${ep32}`, `add chain ${T} ${ep33}`,
]

const expect = (...lines: string[][]) => sortNFTablesTransaction(fixture('base-rules.nft') + lines.flat().join('\n'))

t.test('TestSyncProxyRulesRepeated: the table after every sync and the operations of every transaction', async (t) => {
  let now = 1000
  const p = new Proxier({ ...fakeOptions, clock: () => now })
  const ageStaleChains = () => { now += 2 }
  const step = (name: string, want: string, ops?: number) => {
    p.sync()
    t.equal(p.nftables!.lastSyncError, undefined, `${name}: nft accepted the transaction`)
    t.equal(sortNFTablesTransaction(p.nftablesRuleset()), want, `${name}: table`)
    if (ops !== undefined) t.equal(p.nftables!.lastSync()!.transaction.size, ops, `${name}: ${ops} operations`)
  }
  const service = (ns: string, name: string, ip: string, portName: string, portNumber: number) =>
    makeService(ns, name, { clusterIP: ip, ports: [port(portName, portNumber)] })
  const svc2Object = service('ns2', 'svc2', '172.30.0.42', 'p8080', 8080)
  p.applyList([
    service('ns1', 'svc1', '172.30.0.41', 'p80', 80), svc2Object,
    makeSlice('ns1', 'svc1', 1, ['10.0.1.1'], [{ name: 'p80', port: 80 }]),
    makeSlice('ns2', 'svc2', 1, ['10.0.2.1'], [{ name: 'p8080', port: 8080 }]),
  ])
  step('initial', expect(svc1, svc2))
  t.ok(p.nftables!.lastSync()!.full, 'the first sync is a full one')

  p.applyService(service('ns3', 'svc3', '172.30.0.43', 'p80', 80))
  const eps3 = (...ips: string[]) => makeSlice('ns3', 'svc3', 1, ips, [{ name: 'p80', port: 80 }])
  p.applyEndpointSlice(eps3('10.0.3.1'))
  // 1 element each to cluster-ips and service-ips; add+flush 2 chains, 2 rules each.
  step('add a service with endpoints', expect(svc1, svc2, svc3), 10)
  t.notOk(p.nftables!.lastSync()!.full, 'later syncs are partial')

  p.deleteService(svc2Object)
  // 1 element deleted from each of cluster-ips and service-ips; the 2 chains flushed, not deleted.
  step('delete a service', expect(svc1, svc3, [`add chain ${T} service-MHHHYRWA-ns2/svc2/tcp/p8080`, `add chain ${T} endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080`]), 4)

  ageStaleChains()
  step('stale chains age', expect(svc1, svc3), 0)
  t.equal(p.nftables!.lastSync()!.staleChainDeletion?.size, 2, 'the stale chains went in a transaction of their own')

  p.applyService(service('ns4', 'svc4', '172.30.0.44', 'p80', 80))
  step('add a service without endpoints', expect(svc1, svc3, svc4NoEndpoints), 2)

  p.applyEndpointSlice(makeSlice('ns4', 'svc4', 1, ['10.0.4.1'], [{ name: 'p80', port: 80 }]))
  step('its endpoints arrive', expect(svc1, svc3, svc4), 10)

  p.applyEndpointSlice(eps3('10.0.3.2'))
  step('an endpoint changes', expect(svc1, svc3b, [`add chain ${T} ${ep31}`], svc4), 9)

  ageStaleChains()
  p.applyEndpointSlice(eps3('10.0.3.2', '10.0.3.3'))
  step('an endpoint is added (the old chain goes)', expect(svc1, svc3c, svc4), 12)

  p.applyEndpointSlice(eps3())
  step('a service loses its endpoints', expect(svc1, svc3NoEndpoints, svc4), 5)
  t.same([...p.nftables!.proxier().staleChains.keys()].sort(), [svc3Chain, ep32, ep33].sort(), 'its chains are stale')

  p.applyEndpointSlice(eps3('10.0.3.2', '10.0.3.3'))
  step('endpoints restored at once: the chains are reused', expect(svc1, svc3c, svc4), 14)
  t.equal(p.nftables!.proxier().staleChains.size, 0, 'no stale chains')

  p.applyEndpointSlice(eps3())
  p.sync()
  ageStaleChains()
  p.applyEndpointSlice(eps3('10.0.3.2', '10.0.3.3'))
  step('emptied, aged, restored: deleted first, then recreated', expect(svc1, svc3c, svc4))
  t.equal(p.nftables!.lastSync()!.staleChainDeletion?.size, 3)

  step('a sync without changes', expect(svc1, svc3c, svc4), 0)
  t.equal(p.nftablesTransaction(), '', 'sends nothing')
})

t.test('the transaction text: a full first sync, then only what changed', async (t) => {
  let now = 10
  const p = new Proxier({ ...fakeOptions, clock: () => now })
  p.applyList([makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [port('p80', 80)] }), makeSlice('ns1', 'svc1', 1, ['10.0.1.1'], [{ name: 'p80', port: 80 }])])
  t.equal(p.nftablesTransaction(), '', 'nothing before the first sync')
  p.sync()
  const first = p.nftablesTransaction().split('\n')
  t.equal(first[0], `add table ${T} { comment "rules for kube-proxy" ; }`)
  t.same(first.slice(1, 3), [`add chain ${T} filter-prerouting-pre-dnat`, `delete chain ${T} filter-prerouting-pre-dnat`], 'base chains recreated once, so a changed priority applies')
  t.ok(first.includes(`add chain ${T} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }`))
  t.ok(first.includes(`flush map ${T} service-ips`), 'a full sync flushes the maps and refills them')
  t.ok(first.includes(`add element ${T} service-ips { 172.30.0.41 . tcp . 80 : goto ${svc1Chain} }`))
  // Loading the transaction into an empty table gives the table.
  const fresh = new NftTableState('ip', 'kube-proxy')
  fresh.apply(p.nftables!.lastSync()!.transaction.operations)
  t.equal(fresh.dump(), p.nftablesRuleset())

  now += 5
  p.applyService(makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [port('p80', 80), port('p81', 81)] }))
  p.applyEndpointSlice(makeSlice('ns1', 'svc1', 1, ['10.0.1.1'], [{ name: 'p80', port: 80 }, { name: 'p81', port: 81 }]))
  p.sync()
  const tx = p.nftablesTransaction()
  t.notMatch(tx, /add table|filter-input|service-nodeports \{/, 'no setup in a partial sync')
  t.match(tx, new RegExp(`^add element ${T} service-ips \\{ 172\\.30\\.0\\.41 \\. tcp \\. 81 : goto service-[A-Z2-7]{8}-ns1/svc1/tcp/p81 \\}$`, 'm'), 'the new port: one element')
  t.notMatch(tx, /cluster-ips \{ 172\.30\.0\.41 \}/, 'the cluster IP is already in cluster-ips')
  t.match(tx, new RegExp(`^flush chain ${T} ${svc1Chain}$`, 'm'), 'the changed Service\'s chains are rewritten')

  now += 5
  p.deleteService(makeService('ns1', 'svc1', {}))
  p.sync()
  const del = p.nftablesTransaction().split('\n').filter((l) => l !== '')
  t.same(del.filter((l) => l.startsWith('delete')).sort(), [
    `delete element ${T} cluster-ips { 172.30.0.41 }`,
    `delete element ${T} service-ips { 172.30.0.41 . tcp . 80 }`,
    `delete element ${T} service-ips { 172.30.0.41 . tcp . 81 }`,
  ], 'elements deleted one by one')
  t.equal(del.filter((l) => l.startsWith('flush chain')).length, 4, 'its 4 chains flushed')
  now += 0.5
  p.sync()
  t.equal(p.nftables!.lastSync()!.staleChainDeletion, undefined, 'not deleted while under a second old')
  // As kube-proxy: a stale chain still listed is flushed again and its time starts over.
  t.equal(p.nftables!.lastSync()!.transaction.size, 4, 'flushed again')
  now += 1
  p.sync()
  t.equal(p.nftables!.lastSync()!.staleChainDeletion, undefined, 'a second after the last flush, not yet')
  now += 1.5
  p.sync()
  t.equal(p.nftables!.lastSync()!.staleChainDeletion?.size, 4, 'deleted once over a second old')
  t.notMatch(p.nftablesRuleset(), /ns1\/svc1/)
})

t.test('the table refuses what the kernel refuses, all or nothing', async (t) => {
  const table = new NftTableState('ip', 'kube-proxy')
  table.apply([{ verb: 'add', object: { kind: 'table' } }, { verb: 'add', object: { kind: 'chain', name: 'a' } }])
  const before = table.dump()
  const cases: [string, Parameters<NftTableState['apply']>[0], string][] = [
    ['rule in a missing chain', [{ verb: 'add', object: { kind: 'rule', chain: 'b', rule: 'drop' } }], 'NOT_FOUND'],
    ['jump to a missing chain', [{ verb: 'add', object: { kind: 'rule', chain: 'a', rule: 'jump b' } }], 'NOT_FOUND'],
    ['element of a missing set', [{ verb: 'add', object: { kind: 'element', container: 'set', name: 's', key: ['1.2.3.4'] } }], 'NOT_FOUND'],
    ['delete a missing element', [{ verb: 'add', object: { kind: 'set', name: 's', type: 'ipv4_addr' } }, { verb: 'delete', object: { kind: 'element', container: 'set', name: 's', key: ['1.2.3.4'] } }], 'NOT_FOUND'],
    ['delete a chain something jumps to', [{ verb: 'add', object: { kind: 'chain', name: 'b' } }, { verb: 'add', object: { kind: 'rule', chain: 'a', rule: 'jump b' } }, { verb: 'delete', object: { kind: 'chain', name: 'b' } }], 'IN_USE'],
    ['map element with another value', [
      { verb: 'add', object: { kind: 'map', name: 'm', type: 'inet_proto . inet_service : verdict' } },
      { verb: 'add', object: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '80'], value: ['drop'] } },
      { verb: 'add', object: { kind: 'element', container: 'map', name: 'm', key: ['tcp', '80'], value: ['accept'] } },
    ], 'CONFLICT'],
  ]
  for (const [name, ops, code] of cases) {
    t.throws(() => table.apply(ops), { code, name: 'NftTransactionError' }, name)
    t.equal(table.dump(), before, `${name}: nothing applied`)
  }
})

t.test('a set a rule uses cannot be deleted; once the rule is flushed it can', async (t) => {
  const table = new NftTableState('ip', 'kube-proxy')
  table.apply([
    { verb: 'add', object: { kind: 'table' } },
    { verb: 'add', object: { kind: 'chain', name: 'c' } },
    { verb: 'add', object: { kind: 'set', name: 's', type: 'ipv4_addr' } },
    { verb: 'add', object: { kind: 'rule', chain: 'c', rule: 'ip saddr @s drop' } },
  ])
  t.throws(() => table.apply([{ verb: 'delete', object: { kind: 'set', name: 's' } }]), { code: 'IN_USE' })
  table.apply([{ verb: 'flush', object: { kind: 'chain', name: 'c' } }, { verb: 'delete', object: { kind: 'set', name: 's' } }])
  t.equal(table.set('s'), undefined)
})
