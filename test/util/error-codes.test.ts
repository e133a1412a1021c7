// Every error the library throws for bad input carries a stable code next to its class, so a
// caller can tell them apart without parsing messages (the native paths have their own test in
// test/native). TypeError/RangeError stay TypeError/RangeError.
import t from 'tap'
import { errorCode, parseIptablesSave, parseService, parseEndpointSlice, Proxier, IptablesEvaluator, diagnose, compareModes, readCapture, parseNftRuleset } from '../../lib/index.js'

const node = { nodeName: 'a', nodeIPs: ['192.168.0.2'] }

const cases: [string, () => unknown, 'INVALID' | 'NOT_FOUND' | 'CONFLICT' | 'FULL', string][] = [
  ['Proxier: unknown option', () => new Proxier({ mode: 'iptables', ...node, podCIDR: [] } as never), 'INVALID', 'TypeError'],
  ['Proxier: bad pod CIDR', () => new Proxier({ mode: 'iptables', ...node, podCIDRs: ['10.0.0.0'] }), 'INVALID', 'TypeError'],
  ['Proxier: bad mode section value', () => new Proxier({ mode: 'iptables', ...node, iptables: { masqueradeBit: 40 } }), 'INVALID', 'RangeError'],
  ['route(): bad port', () => new Proxier({ mode: 'iptables', ...node }).route({ src: '10.0.0.1', sport: 70000, dst: '10.0.0.2', dport: 80, protocol: 'TCP' }), 'INVALID', 'RangeError'],
  ['route(): bad address', () => new Proxier({ mode: 'iptables', ...node }).route({ src: '10.0.0.01', sport: 1, dst: '10.0.0.2', dport: 80, protocol: 'TCP' }), 'INVALID', 'TypeError'],
  ['parseService: not a Service', () => parseService({ kind: 'Service', metadata: { name: 'x', namespace: 'y' }, spec: { ports: 'no' } }), 'INVALID', 'TypeError'],
  ['parseEndpointSlice: no addressType', () => parseEndpointSlice({ kind: 'EndpointSlice', metadata: { name: 'x', namespace: 'y' }, endpoints: [] }), 'INVALID', 'TypeError'],
  ['parseIptablesSave: a rule outside a table', () => parseIptablesSave('-A KUBE-SERVICES -j ACCEPT\n'), 'INVALID', 'IptablesParseError'],
  ['IptablesEvaluator: bad packet', () => new IptablesEvaluator('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n').evaluate({ src: 'x', dst: '10.0.0.1', protocol: 'tcp', hook: 'prerouting' }), 'INVALID', 'TypeError'],
  ['parseNftRuleset: garbage', () => parseNftRuleset('add frobnicate ip x\n'), 'INVALID', 'NftParseError'],
  ['diagnose: a Service not in the dump', () => diagnose({ services: [], endpointSlices: [], nodes: [] }, { services: ['ns/none'], nodeName: 'a', nodeIPs: ['192.168.0.2'] }), 'INVALID', 'RangeError'],
  ['compareModes: unknown mode', () => compareModes([], { from: 'ebpf' as never, to: 'iptables', proxier: node }), 'INVALID', 'TypeError'],
  ['readCapture: not a capture', () => readCapture(new Uint8Array(64)), 'INVALID', 'CaptureError'],
]

t.test('bad input gets a coded error of the right class', async (t) => {
  for (const [what, call, code, name] of cases) {
    let err: unknown
    try {
      call()
    } catch (e) {
      err = e
    }
    t.ok(err instanceof Error, `${what}: throws`)
    t.equal(errorCode(err), code, `${what}: code ${code} (${(err as Error | undefined)?.message})`)
    t.equal((err as Error).name === name || (err as Error).constructor.name === name, true, `${what}: a ${name}`)
  }
})
