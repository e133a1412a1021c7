// Every error the library throws for bad input carries a stable code next to its class, so a
// caller can tell them apart without parsing messages (the native paths have their own test in
// test/native). TypeError/RangeError stay TypeError/RangeError.
import t from 'tap'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as path from 'node:path'
import { ERROR_CODES } from '../../lib/errors.js'
import { listen } from '../../lib/metrics/http.js'
import { ServiceProxy } from '../../lib/index.js'
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

t.test('calls in the wrong mode or state, and a failed listen, carry their own code', async (t) => {
  const iptables = new Proxier({ mode: 'iptables', ...node })
  const sync: [string, () => unknown, string][] = [
    ['ipvsState() in mode iptables', () => iptables.ipvsState(), 'WRONG_MODE'],
    ['nftablesRuleset() in mode iptables', () => iptables.nftablesRuleset(), 'WRONG_MODE'],
  ]
  for (const [what, call, code] of sync) t.throws(call, { name: 'SvcplaneError', code }, what)
  const proxy = new ServiceProxy({ proxier: iptables, gcIntervalMs: 0 })
  await t.rejects(proxy.sync(), { name: 'SvcplaneError', code: 'WRONG_STATE' }, 'sync() before start()')
  const a = http.createServer()
  const b = http.createServer()
  try {
    const bound = await listen(a, { host: '127.0.0.1', port: 0 }, 'metrics')
    const err = await listen(b, bound, 'metrics').then(() => undefined, (e: unknown) => e)
    t.equal(errorCode(err), 'LISTEN_FAILED', 'a port in use')
    t.equal(((err as Error).cause as NodeJS.ErrnoException).code, 'EADDRINUSE', 'the cause says why')
  } finally {
    a.close()
    b.close()
  }
})

// Every code lib/ throws is one ERROR_CODES lists (so errorCode() sees it and docs/api.md names
// it), and lib/ outside the CLI throws no uncoded `new Error(`.
t.test('the codes lib/ uses are the codes ERROR_CODES lists', async (t) => {
  const root = path.join(__dirname, '..', '..', 'lib')
  const files = (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith(`cli${path.sep}`))
  const used = new Map<string, string>()
  const patterns = [/new SvcplaneError\(\s*'([A-Z_]+)'/g, /new SvcplaneRangeError\([^;\n]*?,\s*'([A-Z_]+)'\)/g, /readonly code = '([A-Z_]+)'/g]
  const uncoded: string[] = []
  for (const f of files) {
    const text = fs.readFileSync(path.join(root, f), 'utf8')
    for (const re of patterns) for (const m of text.matchAll(re)) used.set(m[1], f)
    text.split('\n').forEach((line, i) => {
      if (/\bnew Error\(/.test(line)) uncoded.push(`lib/${f}:${i + 1}`)
    })
  }
  t.ok(used.size >= 8, `found the codes in use (${[...used.keys()].join(', ')})`)
  for (const [code, file] of used) t.ok((ERROR_CODES as readonly string[]).includes(code), `${code} (lib/${file}) is in ERROR_CODES`)
  t.strictSame(uncoded, [], 'no uncoded new Error( outside lib/cli')
})
