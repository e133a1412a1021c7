// The native mode on a threaded dataplane (`native: { threads }`): the same sync, routing and
// reply handling as on one thread, spread over the shards; a bad thread count is refused.
import t from 'tap'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import { makeService, makeSlice, port, testNodeIP, testNodeName } from '../fixtures/objects'

const base: ProxierOptions = { mode: 'native', nodeName: testNodeName, nodeIPs: [testNodeIP], podCIDRs: ['10.0.0.0/8'], seed: 5 }
const p80 = [{ name: 'p80', port: 80 }]

function cluster(p: Proxier, services: number): void {
  for (let i = 1; i <= services; i++) {
    p.applyService(makeService('ns', `svc${i}`, { clusterIP: `172.30.0.${i}`, ports: [port('p80', 80)] }))
    p.applyEndpointSlice(makeSlice('ns', `svc${i}`, 1, [`10.1.${i}.1`, `10.1.${i}.2`, `10.1.${i}.3`], p80))
  }
}

t.test('a threaded native mode routes every client to its service and back', async (t) => {
  const p = new Proxier({ ...base, native: { threads: 2 } })
  t.teardown(() => p.dataplane?.destroy())
  t.equal(p.dataplane?.threads, 2)
  cluster(p, 20)
  const s = p.sync()
  t.same(s.servicePorts, { added: 20, changed: 0, removed: 0 })
  for (let c = 0; c < 200; c++) {
    const svc = 1 + (c % 20)
    const src = `10.9.${c >> 8}.${c & 255}`
    const first = p.route({ src, sport: 40000 + c, dst: `172.30.0.${svc}`, dport: 80, protocol: 'TCP', now: 1 })
    t.equal(first.action, 'dnat', `client ${c}`)
    if (first.action !== 'dnat') continue
    t.match(first.endpoint, new RegExp(`^10\\.1\\.${svc}\\.[123]:80$`))
    // The same flow again sticks to its backend, whichever shard holds it.
    const again = p.route({ src, sport: 40000 + c, dst: `172.30.0.${svc}`, dport: 80, protocol: 'TCP', now: 2 })
    t.equal(again.action === 'dnat' && again.endpoint, first.endpoint, `client ${c} tracked`)
  }
  const maps = p.dataplane!.maps()
  t.equal(maps.find((m) => m.name === 'conntrack')!.size, 200, 'every flow tracked once over the shards')
  t.equal(maps.find((m) => m.name === 'services')!.size, 20, 'the service maps are counted once, not per shard')
})

t.test('an endpoint removed on a threaded dataplane is gone from every shard', async (t) => {
  const p = new Proxier({ ...base, native: { threads: 3 } })
  t.teardown(() => p.dataplane?.destroy())
  cluster(p, 2)
  p.sync()
  p.applyEndpointSlice(makeSlice('ns', 'svc1', 1, ['10.1.1.3'], p80))
  p.sync()
  for (let c = 0; c < 60; c++) {
    const d = p.route({ src: `10.8.0.${c + 1}`, sport: 1000 + c, dst: '172.30.0.1', dport: 80, protocol: 'TCP', now: 3 })
    t.equal(d.action === 'dnat' && d.endpoint, '10.1.1.3:80', `client ${c}`)
  }
})

t.test('a bad thread count is refused, naming threads', async (t) => {
  for (const threads of [0, 65, 1.5, -1]) {
    t.throws(() => new Proxier({ ...base, native: { threads } }), { name: 'RangeError', message: /threads/ }, String(threads))
  }
})
