// The real kernel: in a network namespace this test creates, `nft -f` loads every full
// ruleset and then every transaction of a sequence of partial syncs (the stale-chain deletion
// first, as kube-proxy runs it), and the kernel's table then holds what ours holds; real TCP
// connections on loopback land on an endpoint kube-proxy allows, masqueraded exactly when
// route() says. Needs root, `ip netns` and nft (Debian: apt-get install -y nftables); skipped
// with a message elsewhere. Every address is in 127.0.0.0/8: no traffic leaves the namespace.
import t from 'tap'
import { Proxier, type ProxierOptions } from '../../lib/modes/index.js'
import { checkPacket } from '../../lib/proxy/packet.js'
import { classifySource, traceKubeProxy } from '../../lib/proxy/trace.js'
import { connectAll } from '../fixtures/loopback-connect'
import { createNetns } from '../fixtures/netns'
import { makeService, makeSlice } from '../fixtures/objects'
import { loopbackClusterObjects } from '../fixtures/loopback-cluster'

const netns = createNetns('nftrules', ['nft'], { nft: 'apt-get install -y nftables' })
const inNs = 'skip' in netns ? () => { throw new Error('no namespace') } : netns.exec
const nft = (text: string) => inNs('nft', ['-f', '-'], text)

/** What the kernel's table holds, as counts we can compare with ours. */
function kernelShape(family: 'ip' | 'ip6'): Map<string, number> | string {
  const r = inNs('nft', ['-j', 'list', 'table', family, 'kube-proxy'])
  if (!r.ok) return r.stderr
  const out = new Map<string, number>()
  for (const o of (JSON.parse(r.stdout) as { nftables: Record<string, { name?: string; chain?: string; elem?: unknown[] }>[] }).nftables) {
    if (o.chain !== undefined) out.set(`chain ${o.chain.name}`, out.get(`chain ${o.chain.name}`) ?? 0)
    if (o.rule !== undefined) out.set(`chain ${o.rule.chain}`, (out.get(`chain ${o.rule.chain}`) ?? 0) + 1)
    for (const kind of ['set', 'map'] as const) if (o[kind] !== undefined) out.set(`${kind} ${o[kind]!.name}`, o[kind]!.elem?.length ?? 0)
  }
  return out
}

/** The same counts from our table; dynamic (affinity) sets are left empty, the kernel fills them. */
function ourShape(p: Proxier, family: 'IPv4' | 'IPv6'): Map<string, number> {
  const table = p.nftables!.proxier(family).table
  const out = new Map<string, number>()
  for (const c of table.chainNames()) out.set(`chain ${c}`, table.rules(c)!.length)
  for (const kind of ['set', 'map'] as const) for (const s of table.setNames(kind)) out.set(`${kind} ${s}`, table.set(s)!.elements.size)
  return out
}

const sortedEntries = (m: Map<string, number> | string) => (typeof m === 'string' ? m : [...m.entries()].sort())

if ('skip' in netns) {
  t.plan(0, `skipped: ${netns.skip}`)
} else {
  t.teardown(netns.remove)

  t.test('namespace setup', async (t) => {
    t.ok(inNs('ip', ['link', 'set', 'lo', 'up']).ok, 'lo up')
    // Masquerading on lo needs a scope-global source address (see NOTES.md).
    const a = inNs('ip', ['addr', 'add', '127.0.0.2/32', 'dev', 'lo', 'scope', 'global'])
    t.ok(a.ok, `127.0.0.2/32 scope global on lo ${a.stderr}`)
  })

  const node: ProxierOptions = {
    mode: 'nftables', nodeName: 'kernel-node', nodeIPs: ['127.0.0.2'], podCIDRs: ['127.20.0.0/16'], serviceCIDRs: ['127.10.0.0/16'], seed: 5,
  }
  const clusterObjects = loopbackClusterObjects

  t.test('nft -f loads the full ruleset, then every partial transaction in sequence', async (t) => {
    const variants: Partial<ProxierOptions>[] = [{}, { masqueradeAll: true, nodePortAddresses: ['127.0.0.0/8'] }, { nftables: { masqueradeBit: 3 }, podCIDRs: [], serviceCIDRs: [] }]
    for (const extra of variants) {
      const what = JSON.stringify(extra)
      let now = 100
      const p = new Proxier({ ...node, ...extra, clock: () => now })
      p.applyList(clusterObjects(0))
      p.sync()
      const dump = nft(p.nftablesRuleset())
      t.ok(dump.ok, `${what}: the ruleset loads into an empty namespace ${dump.stderr}`)
      t.same(sortedEntries(kernelShape('ip')), sortedEntries(ourShape(p, 'IPv4')), `${what}: the kernel holds our table`)
      t.ok(inNs('nft', ['delete', 'table', 'ip', 'kube-proxy']).ok, 'table deleted')
      const first = nft(p.nftablesTransaction())
      t.ok(first.ok, `${what}: the first sync's transaction loads ${first.stderr}`)
      // A sequence of changes: endpoints, policies, a deleted Service, time passing.
      const steps: (() => void)[] = [
        () => p.applyList(clusterObjects(1)),
        () => p.applyList(clusterObjects(2)),
        () => p.deleteService(makeService('ns', 'sticky', {})),
        () => { now += 2 },
        () => p.applyList(clusterObjects(3)),
        () => p.applyEndpointSlice(makeSlice('ns', 'plain', 1, [], [{ name: 'http', port: 8080 }])),
        () => { now += 2 },
        () => p.applyList(clusterObjects(4)),
      ]
      steps.forEach((change, i) => {
        change()
        p.sync()
        const last = p.nftables!.lastSync()!
        if (last.staleChainDeletion !== undefined) {
          const del = nft(last.staleChainDeletion.text())
          t.ok(del.ok, `${what} step ${i + 1}: the stale-chain deletion loads ${del.stderr}`)
        }
        const tx = last.transaction.size === 0 ? { ok: true, stderr: '' } : nft(last.transaction.text())
        t.ok(tx.ok, `${what} step ${i + 1}: ${last.transaction.size} operations load ${tx.stderr}`)
        t.same(sortedEntries(kernelShape('ip')), sortedEntries(ourShape(p, 'IPv4')), `${what} step ${i + 1}: the kernel holds our table`)
      })
      inNs('nft', ['delete', 'table', 'ip', 'kube-proxy'])
    }
  })

  t.test('real connections land on an endpoint kube-proxy allows, masqueraded when route() says', async (t) => {
    const p = new Proxier(node)
    p.applyList(clusterObjects(2))
    p.sync()
    const load = nft(p.nftablesRuleset())
    t.ok(load.ok, `rules loaded ${load.stderr}`)
    if (!load.ok) return
    const endpoints = p.state.servicePorts().filter((s) => s.info.protocol === 'TCP').flatMap((s) => s.endpoints.map((e) => [e.ip, e.port]))
    const targets: [string, number, number][] = [
      ['127.10.0.1', 80, 40], ['127.10.0.2', 80, 12], ['127.10.0.3', 80, 12], ['127.10.0.4', 80, 2], ['127.10.0.5', 80, 6],
      ['127.30.0.5', 80, 4], ['127.40.0.5', 80, 4], ['127.10.0.1', 81, 2],
    ]
    const results = connectAll(netns, endpoints, targets)
    if (typeof results === 'string') {
      t.fail(results)
      return
    }
    t.equal(results.length, targets.reduce((n, x) => n + x[2], 0))
    const seen = new Map<string, Set<string>>()
    let sport = 40000
    for (const res of results) {
      const pkt = { src: '127.0.0.1', sport: sport++, dst: res.dst, dport: res.dport, protocol: 'TCP' as const, hook: 'output' as const, now: 1 }
      const decision = p.route(pkt)
      const key = `${res.dst}:${res.dport}`
      if (decision.action === 'reject') {
        t.match(res.error ?? '', /ConnectionRefused/, `${key}: reject (${decision.reason}); the kernel refuses too`)
        continue
      }
      if (decision.action === 'drop') {
        t.match(res.error ?? '', /timed out|timeout/, `${key}: drop (${decision.reason}); the kernel drops too`)
        continue
      }
      if (decision.action !== 'dnat') {
        t.fail(`${key}: route() says ${JSON.stringify(decision)}`)
        continue
      }
      const c = checkPacket(pkt)
      const trace = traceKubeProxy(p.state, c, classifySource(p.state, c))
      const allowed = new Set(trace.action === 'dnat' ? trace.candidates.map((x) => x.endpoint) : [])
      t.ok(res.endpoint !== undefined && allowed.has(res.endpoint), `${key} -> ${res.endpoint ?? res.error} is in {${[...allowed].join(', ')}}`)
      t.equal(res.peer, decision.masquerade ? '127.0.0.2' : '127.0.0.1', `${key}: masquerade ${decision.masquerade}`)
      if (res.endpoint) seen.set(key, (seen.get(key) ?? new Set()).add(res.endpoint))
    }
    t.equal(seen.get('127.10.0.1:80')?.size, 3, 'numgen random spreads over all three endpoints')
    t.equal(seen.get('127.10.0.2:80')?.size, 1, 'the affinity sets keep the client on one endpoint')
    inNs('nft', ['delete', 'table', 'ip', 'kube-proxy'])
  })
}
