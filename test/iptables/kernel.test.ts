// The real kernel: inside a network namespace this test creates, iptables-restore (nft and
// legacy, where installed) must accept every generated ruleset, and real TCP connections on
// loopback must be DNATed to an endpoint of the set our evaluator gives (and masqueraded when it
// says so). Needs root and `ip netns`; skipped with a message elsewhere. No traffic leaves the
// namespace: every address is in 127.0.0.0/8.
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import { connectAll } from '../fixtures/loopback-connect'
import { createNetns, which } from '../fixtures/netns'
import { makeService } from '../fixtures/objects'
import { loopbackClusterObjects } from '../fixtures/loopback-cluster'
import { Explorer } from './explore'

const hasIptables = ['iptables-restore', 'iptables-nft-restore', 'iptables-legacy-restore'].some(which)
const netns = hasIptables ? createNetns('test', []) : { skip: 'iptables is not installed (apt-get install -y iptables)' }
const inNs = 'skip' in netns ? () => { throw new Error('no namespace') } : netns.exec

if ('skip' in netns) {
  t.plan(0, `skipped: ${netns.skip}`)
} else {
  t.teardown(netns.remove)
  const restores = ['iptables-nft-restore', 'iptables-legacy-restore'].filter(which)
  if (restores.length === 0) restores.push('iptables-restore')

  t.test('namespace setup', async (t) => {
    t.ok(inNs('ip', ['link', 'set', 'lo', 'up']).ok, 'lo up')
    // kube-proxy's masquerade rule needs a scope-global source address on lo (see NOTES.md).
    const a = inNs('ip', ['addr', 'add', '127.0.0.2/32', 'dev', 'lo', 'scope', 'global'])
    t.ok(a.ok, `127.0.0.2/32 scope global on lo ${a.stderr}`)
  })

  const node: ProxierOptions = {
    mode: 'iptables', nodeName: 'kernel-node', nodeIPs: ['127.0.0.2'], podCIDRs: ['127.20.0.0/16'],
    // the nfacct counter objects do not exist in a fresh namespace (kube-proxy creates them first)
    iptables: { nfacct: false }, seed: 5,
  }
  const clusterObjects = loopbackClusterObjects

  for (const restore of restores) {
    t.test(`${restore}: the kernel accepts every generated ruleset`, async (t) => {
      for (let variant = 0; variant < 4; variant++) {
        for (const extra of [{}, { masqueradeAll: true, iptables: { localhostNodePorts: false } }, { iptables: { masqueradeBit: 3 }, podCIDRs: [] }] as Partial<ProxierOptions>[]) {
          const p = new Proxier({ ...node, ...extra, iptables: { ...node.iptables, ...extra.iptables } })
          p.applyList(clusterObjects(variant))
          p.sync()
          const what = `variant ${variant} ${JSON.stringify(extra)}`
          // The whole node (built-in chains and kube-proxy's jumps), replacing the tables.
          const full = inNs(restore, [], p.iptables!.ruleset())
          t.ok(full.ok, `node ruleset, ${what} ${full.stderr}`)
          // kube-proxy's own restore input, full then partial after a change, with --noflush.
          const kp = inNs(restore, ['--noflush'], p.iptablesRestore())
          t.ok(kp.ok, `full sync text, ${what} ${kp.stderr}`)
          p.applyList(clusterObjects(variant + 1))
          p.deleteService(makeService('ns', 'sticky', {}))
          p.sync()
          const partial = inNs(restore, ['--noflush'], p.iptablesRestore({ partial: true }))
          t.ok(partial.ok, `partial sync text (one service deleted), ${what} ${partial.stderr}`)
          const save = inNs(restore.replace('-restore', '-save'), ['-t', 'nat'])
          t.notMatch(save.stdout, /KUBE-SEP-\S+ .*127\.20\.1\.1/, 'the deleted service is gone from the kernel')
          t.ok(inNs(restore, [], '*nat\nCOMMIT\n*filter\nCOMMIT\n').ok, 'tables flushed')
        }
      }
    })

    t.test(`${restore}: real connections are DNATed to an endpoint the evaluator allows`, async (t) => {
      const p = new Proxier(node)
      p.applyList(clusterObjects(2))
      p.sync()
      const load = inNs(restore, [], p.iptables!.ruleset())
      t.ok(load.ok, `rules loaded ${load.stderr}`)
      if (!load.ok) return
      const explorer = new Explorer(p.iptables!.ruleset(), ['127.0.0.2'])
      const endpoints = p.state.servicePorts().filter((s) => s.info.protocol === 'TCP').flatMap((s) => s.endpoints.map((e) => [e.ip, e.port]))
      const targets: [string, number, number][] = [
        ['127.10.0.1', 80, 40], ['127.10.0.2', 80, 12], ['127.10.0.3', 80, 12], ['127.0.0.2', 30080, 12],
        ['127.0.0.1', 30080, 8], ['127.10.0.4', 80, 2], ['127.10.0.5', 80, 6], ['127.30.0.5', 80, 4], ['127.40.0.5', 80, 4],
      ]
      const results = connectAll(netns, endpoints, targets, 60_000)
      if (typeof results === 'string') {
        t.fail(results)
        return
      }
      t.equal(results.length, targets.reduce((n, x) => n + x[2], 0))
      const seen = new Map<string, Set<string>>()
      for (const res of results) {
        const pkt = { src: '127.0.0.1', sport: 40000, dst: res.dst, dport: res.dport, protocol: 'TCP' as const, hook: 'output' as const, now: 1 }
        const allowed = explorer.reachable(pkt)
        const decision = p.route({ ...pkt, sport: 40000 + seen.size })
        const key = `${res.dst}:${res.dport}`
        if (allowed.size === 0) {
          t.match(res.error ?? '', /ConnectionRefused/, `${key}: ${decision.action}, the kernel refuses too`)
          continue
        }
        t.ok(res.endpoint !== undefined && allowed.has(res.endpoint), `${key} -> ${res.endpoint ?? res.error} is in {${[...allowed].join(', ')}}`)
        if (decision.action === 'dnat') t.equal(res.peer, decision.masquerade ? '127.0.0.2' : '127.0.0.1', `${key}: masquerade ${decision.masquerade}`)
        if (res.endpoint) seen.set(key, (seen.get(key) ?? new Set()).add(res.endpoint))
      }
      t.equal(seen.get('127.10.0.1:80')?.size, 3, 'the kernel\'s statistic rules spread over all three endpoints')
      t.equal(seen.get('127.10.0.2:80')?.size, 1, '-m recent keeps the client on one endpoint')
      inNs(restore, [], '*nat\nCOMMIT\n*filter\nCOMMIT\n')
    })
  }
}
