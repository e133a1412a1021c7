// Regressions: bugs the reliability properties found (error messages that themselves threw on
// BigInt or prototype-less values, unchecked evaluator packets, iptablesRestore(null)), each
// kept as a test of the right behaviour.
import t, { type Test } from 'tap'
import { Dataplane, FlowBatch, IptablesEvaluator, Proxier, parseIptablesSave } from '../../lib/index.js'



/** The call throws a TypeError/RangeError whose message names `field` (not JavaScript's own). */
function namesField(t: Test, call: () => unknown, field: RegExp, what: string) {
  try {
    call()
    t.fail(`${what}: did not throw`)
  } catch (e) {
    const err = e as Error
    t.ok(err instanceof TypeError || err instanceof RangeError, `${what}: ${err.name}`)
    t.match(err.message, field, `${what}: the message names the field (got "${err.message}")`)
  }
}

t.test('a BigInt as a bad Dataplane field gives an error naming the field', async (t) => {
  const dp = new Dataplane({ seed: 1n, capacity: { conntrack: 16 } })
  dp.upsertBackend({ id: 1, address: '10.1.0.1', port: 80 })
  namesField(t, () => dp.upsertBackend({ id: 2, address: 5n as never, port: 80 }), /address/, 'backend address 5n')
  namesField(t, () => dp.upsertBackend({ id: 2, address: '10.1.0.2', port: 80, state: 1n as never }), /state/, 'backend state 1n')
  namesField(t, () => dp.upsertService({ id: 1, backends: [1], frontends: [], scheduler: 1n as never }), /scheduler/, 'service scheduler 1n')
  namesField(t, () => dp.upsertService({ id: 1, backends: [1], frontends: [{ address: '172.30.0.1', port: 80, protocol: 6n as never, scope: 'external' }] }), /protocol/, 'frontend protocol 6n')
  namesField(t, () => dp.decide({ src: 1n as never, sport: 1, dst: '172.30.0.1', dport: 80, protocol: 'TCP' }, 1), /src/, 'flow src 1n')
  namesField(t, () => dp.decide({ src: '10.0.0.1', sport: 1, dst: '172.30.0.1', dport: 80, protocol: 17n as never }, 1), /protocol/, 'flow protocol 17n')
  namesField(t, () => dp.configurePackets({ natPortRange: [1n, 2n] as never }), /natPortRange/, 'natPortRange [1n, 2n]')
})

t.test('a null-prototype object as a bad field value gives an error naming the field', async (t) => {
  const dp = new Dataplane({ seed: 1n, capacity: { conntrack: 16 } })
  const bare = Object.create(null) as never
  namesField(t, () => new FlowBatch(1).push({ src: '10.0.0.1', sport: 1, dst: '172.30.0.1', dport: 80, protocol: 'TCP', tcpFlags: bare }), /tcpFlags/, 'tcpFlags a null-prototype object')
  namesField(t, () => dp.decide({ src: '10.0.0.1', sport: 1, dst: '172.30.0.1', dport: 80, protocol: 'TCP', bytes: bare }, 1), /bytes/, 'bytes a null-prototype object')
})

t.test('IptablesEvaluator.evaluate checks the types of its packet', async (t) => {
  const ev = new IptablesEvaluator(parseIptablesSave('*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n'))
  const p = { src: '10.0.0.1', dst: '172.30.0.1', sport: 1, dport: 80, protocol: 'tcp', hook: 'prerouting' } as const
  namesField(t, () => ev.evaluate({ ...p, src: true as never }), /src/, 'src true')
  namesField(t, () => ev.evaluate({ ...p, dst: 7 as never }), /dst/, 'dst 7')
  namesField(t, () => ev.evaluate({ ...p, protocol: undefined as never }), /protocol/, 'protocol undefined')
  namesField(t, () => ev.evaluate({ ...p, tcpFlags: 2 as never }), /tcpFlags/, 'tcpFlags 2')
})

t.test('Proxier.iptablesRestore(null) is refused with a typed error', async (t) => {
  const p = new Proxier({ mode: 'native', nodeName: 'n', nodeIPs: ['192.168.0.2'], seed: 1 })
  namesField(t, () => p.iptablesRestore(null as never), /request|options|object/, 'iptablesRestore(null)')
  p.dataplane?.destroy()
})
