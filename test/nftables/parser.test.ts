// The nft parser and serializer: kube-proxy's `add ...` form and `nft list ruleset` output (as
// a real node printed it for the same ruleset, saved in test/fixtures/nftables/*.list.nft)
// parse to the same ruleset; both serializations parse back to it; errors name their line.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { applyNftCommands, parseNftRuleset } from '../../lib/nftables/nft/apply.js'
import { canonicalNftRuleset } from '../../lib/nftables/nft/canonical.js'
import { NftParseError } from '../../lib/nftables/nft/errors.js'
import { parseNftCommands } from '../../lib/nftables/nft/parser.js'
import { ruleText, serializeNftCommands, serializeNftRuleset } from '../../lib/nftables/nft/serialize.js'
import { findUnknownNft } from '../../lib/nftables/nft/unknown.js'
import { formatDuration, formatPriority, parseDuration } from '../../lib/nftables/nft/values.js'
import type { NftRuleset } from '../../lib/nftables/nft/types.js'

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', 'nftables', name), 'utf8')
const KUBE = fixture('kube-proxy.nft')
const KUBE_LISTED = fixture('kube-proxy.list.nft')
const MIXED_LISTED = fixture('mixed.list.nft')

const rule = (rs: NftRuleset, table: string, chain: string, i: number) => rs.tables.get(table)!.chains.get(chain)!.rules[i]!

t.test('kube-proxy command form', async (t) => {
  const rs = parseNftRuleset(KUBE)
  const kp = rs.tables.get('ip kube-proxy')!
  t.equal(kp.comment, 'rules for kube-proxy')
  t.equal(kp.chains.size, 31)
  t.same([...kp.sets.keys()].slice(0, 7), ['cluster-ips', 'nodeport-ips', 'firewall-ips', 'no-endpoint-nodeports', 'no-endpoint-services', 'service-ips', 'service-nodeports'])
  t.same(kp.sets.get('service-ips')!.keyType, ['ipv4_addr', 'inet_proto', 'inet_service'])
  t.equal(kp.sets.get('service-ips')!.dataType, 'verdict')
  t.equal(kp.sets.get('service-ips')!.elements.length, 7)
  t.same(kp.chains.get('nat-prerouting')!.base, { type: 'nat', hook: 'prerouting', priority: -100 })
  t.same(kp.chains.get('filter-prerouting-pre-dnat')!.base, { type: 'filter', hook: 'prerouting', priority: -110 })
  const aff = kp.sets.get('affinity-P9LK3JHG-shop/api/tcp/grpc__10.1.4.9/9000')!
  t.same({ flags: aff.flags, timeout: aff.timeout }, { flags: ['dynamic', 'timeout'], timeout: 10800 })
  // `mark set mark or 0x4000` and nft's own `meta mark set meta mark | 0x00004000` are one statement
  t.same(rule(rs, 'ip kube-proxy', 'mark-for-masquerade', 0).statements, [
    { kind: 'assign', target: { kind: 'meta', key: 'mark' }, value: { kind: 'binop', op: '|', left: { kind: 'meta', key: 'mark' }, right: { kind: 'value', text: '16384' } } },
  ])
  t.same(rule(rs, 'ip kube-proxy', 'masquerading', 0).statements, [
    { kind: 'match', left: { kind: 'binop', op: '&', left: { kind: 'meta', key: 'mark' }, right: { kind: 'value', text: '16384' } }, op: '==', right: { kind: 'value', text: '0' } },
    { kind: 'verdict', verdict: 'return' },
  ])
  t.same(rule(rs, 'ip kube-proxy', 'services', 0).statements[0], {
    kind: 'vmap',
    key: { kind: 'concat', parts: [{ kind: 'payload', protocol: 'ip', field: 'daddr' }, { kind: 'meta', key: 'l4proto' }, { kind: 'payload', protocol: 'th', field: 'dport' }] },
    map: { kind: 'setref', name: 'service-ips' },
  })
  const svc = rule(rs, 'ip kube-proxy', 'service-7QK2M4XA-web/frontend/tcp/http', 1).statements[0]!
  t.equal(svc.kind, 'vmap')
  t.same(svc.kind === 'vmap' && svc.key, { kind: 'numgen', mode: 'random', mod: 2 })
  t.same(rule(rs, 'ip kube-proxy', 'endpoint-B3WZ6PLD-web/frontend/tcp/http__10.1.0.11/8080', 1).statements[1], {
    kind: 'nat', type: 'dnat', addr: { kind: 'value', text: '10.1.0.11' }, port: { kind: 'value', text: '8080' }, flags: [],
  })
  t.same(rule(rs, 'ip kube-proxy', 'masquerading', 2).statements, [{ kind: 'nat', type: 'masquerade', flags: ['fully-random'] }])
  t.same(kp.sets.get('no-endpoint-services')!.elements[0], {
    key: { kind: 'concat', parts: [{ kind: 'value', text: '172.30.3.40' }, { kind: 'value', text: 'tcp' }, { kind: 'value', text: '9100' }] },
    comment: 'ops/empty:metrics', data: { kind: 'verdict', verdict: 'goto', chain: 'reject-chain' },
  })
  t.same(rule(rs, 'ip kube-proxy', 'cluster-ips-check', 0).comment, 'Reject traffic to invalid ports of ClusterIPs')
  t.same(findUnknownNft(rs), [], 'kube-proxy uses nothing the parser does not interpret')
})

t.test('the kernel listing of the kube-proxy ruleset is the same ruleset', async (t) => {
  const listed = parseNftRuleset(KUBE_LISTED)
  const kp = listed.tables.get('ip kube-proxy')!
  t.equal(kp.handle, 10)
  t.equal(kp.chains.get('services')!.rules[0]!.handle, 44)
  t.same(kp.chains.get('filter-prerouting-pre-dnat')!.base, { type: 'filter', hook: 'prerouting', priority: -110, priorityText: 'dstnat - 10', policy: 'accept' })
  t.equal(kp.sets.get('affinity-P9LK3JHG-shop/api/tcp/grpc__10.1.4.9/9000')!.timeout, 10800, 'timeout 3h')
  t.same(canonicalNftRuleset(listed), canonicalNftRuleset(parseNftRuleset(KUBE)))
})

t.test('round trips through both serializations', async (t) => {
  for (const [name, text] of [['kube-proxy.nft', KUBE], ['kube-proxy.list.nft', KUBE_LISTED], ['mixed.list.nft', MIXED_LISTED]] as const) {
    const rs = parseNftRuleset(text)
    const commands = serializeNftCommands(rs)
    const block = serializeNftRuleset(rs, { handles: true })
    t.same(canonicalNftRuleset(parseNftRuleset(commands)), canonicalNftRuleset(rs), `${name}: command form`)
    t.same(canonicalNftRuleset(parseNftRuleset(block)), canonicalNftRuleset(rs), `${name}: block form`)
    t.equal(serializeNftCommands(parseNftRuleset(commands)), commands, `${name}: command text is a fixed point`)
    t.equal(serializeNftRuleset(parseNftRuleset(block), { handles: true }), block, `${name}: block text is a fixed point`)
  }
  // the kernel's own text comes back line for line, apart from element order within a line
  const listedLines = KUBE_LISTED.split('\n').filter((l) => !l.includes('elements') && !l.startsWith('\t\t\t'))
  const ours = serializeNftRuleset(parseNftRuleset(KUBE_LISTED), { handles: true }).split('\n').filter((l) => !l.includes('elements') && !l.startsWith('\t\t\t'))
  t.same(ours, listedLines)
})

t.test('nft syntax beyond kube-proxy: kept, and unknown parts reported', async (t) => {
  const rs = parseNftRuleset(MIXED_LISTED)
  const c1 = rs.tables.get('inet t2')!.chains.get('c1')!
  t.same(c1.base, { type: 'filter', hook: 'input', priority: 5, priorityText: 'filter + 5', policy: 'drop' })
  t.same(c1.rules[0]!.statements, [
    { kind: 'counter', packets: 0, bytes: 0 },
    { kind: 'match', left: { kind: 'ct', key: 'state' }, op: '==', right: { kind: 'list', values: [{ kind: 'value', text: 'established' }, { kind: 'value', text: 'related' }] } },
    { kind: 'verdict', verdict: 'accept' },
  ])
  t.same(c1.rules[1]!.statements[0], { kind: 'match', left: { kind: 'meta', key: 'iifname' }, op: '==', right: { kind: 'value', text: 'lo', quoted: true } })
  t.same(c1.rules[2]!.statements[1], { kind: 'counter', packets: 5, bytes: 300 })
  t.same(findUnknownNft(rs).map((u) => [u.chain, u.index, u.text]), [['c1', 3, 'log prefix "x "'], ['c1', 3, 'limit rate 10/second']])
  const s2 = rs.tables.get('inet t2')!.sets.get('s2')!
  t.same(s2.elements[0]!.timeout, 60)
  t.ok(s2.elements[0]!.expires! > 59 && s2.elements[0]!.expires! < 60, 'expires 59s...ms')
  t.same(rs.tables.get('inet t2')!.chains.get('c2')!.rules[2]!.statements[0], { kind: 'dynset', op: 'add', set: 's2', key: { kind: 'payload', protocol: 'ip', field: 'saddr' }, timeout: 5 })
  t.same(rs.tables.get('inet t2')!.chains.get('n1')!.rules[0]!.statements[0], {
    kind: 'nat', type: 'dnat', family: 'ip', flags: [],
    addr: { kind: 'map', key: { kind: 'payload', protocol: 'ip', field: 'daddr' }, map: { kind: 'setref', name: 'm1' } },
  })
  const nat6 = rs.tables.get('ip6 t6')!.chains.get('nat')!.rules[0]!
  t.equal(ruleText(nat6), 'ip6 daddr fd00::10 tcp dport 80 dnat to [fd00::1]:8080')
  const post = rs.tables.get('ip6 t6')!.chains.get('post')!.rules[0]!
  t.same(post.statements[0], { kind: 'match', left: { kind: 'numgen', mode: 'inc', mod: 3, offset: 1 }, op: '==', right: { kind: 'value', text: '2' } })
  t.same(post.statements[2], { kind: 'nat', type: 'masquerade', flags: ['random', 'persistent'] })
})

t.test('errors carry the line number', async (t) => {
  const base = 'add table ip t\nadd chain ip t c\nadd set ip t s { type ipv4_addr ; }\nadd map ip t m { type ipv4_addr : verdict ; }\n'
  const cases: Array<[string, string, number, RegExp]> = [
    ['unknown command', 'frob table ip t', 5, /unknown command "frob"/],
    ['unterminated string', 'add rule ip t c accept comment "x', 5, /unterminated string/],
    ['rule in a missing chain', 'add rule ip t nope accept', 5, /chain nope does not exist/],
    ['jump to a missing chain', 'add rule ip t c jump nope', 5, /chain nope does not exist/],
    ['vmap to a missing chain', 'add rule ip t c ip daddr vmap { 10.0.0.1 : goto nope }', 5, /chain nope does not exist/],
    ['missing set', 'add rule ip t c ip daddr @nope drop', 5, /set nope does not exist/],
    ['missing table', 'add chain ip nope c', 5, /table ip nope does not exist/],
    ['map element without data', 'add element ip t m { 10.0.0.1 }', 5, /has no data/],
    ['set element with data', 'add element ip t s { 10.0.0.1 : drop }', 5, /is a set, not a map/],
    ['deleting a missing element', 'add element ip t s { 10.0.0.1 }\ndelete element ip t s { 10.0.0.2 }', 6, /does not exist in s/],
    ['bad priority', 'add chain ip t b { type filter hook input priority sideways ; }', 5, /invalid priority "sideways"/],
    ['unknown hook', 'add chain ip t b { type filter hook sideways priority 0 ; }', 5, /unknown hook "sideways"/],
    ['missing brace', 'table ip x {\n chain y {\n  accept\n', 8, /missing "}"/],
    ['set without type', 'add set ip t s2 { flags interval ; }', 5, /has no type/],
    ['deleting a chain still jumped to', 'add chain ip t d\nadd rule ip t c jump d\ndelete chain ip t d', 7, /still jumped to/],
    ['create over an existing chain', 'create chain ip t c', 5, /already exists/],
    ['empty rule', 'add rule ip t c comment "only a comment"', 5, /empty rule/],
    ['a statement missing its value', 'add rule ip t c ip daddr', 5, /expected a value/],
  ]
  for (const [name, text, line, message] of cases) {
    let err: unknown
    try {
      parseNftRuleset(base + text)
    } catch (e) {
      err = e
    }
    t.type(err, NftParseError, name)
    t.equal((err as NftParseError).line, line, `${name}: line`)
    t.match((err as Error).message, new RegExp(`^line ${line}: .*${message.source}`), `${name}: message`)
    t.equal((err as NftParseError).code, 'INVALID', `${name}: code`)
  }
  t.throws(() => parseNftRuleset(42 as unknown as string), TypeError)
})

t.test('transactions: all or nothing, flush, delete, insert, replace', async (t) => {
  const rs = parseNftRuleset('add table ip t\nadd chain ip t c\nadd set ip t s { type ipv4_addr ; }\nadd element ip t s { 10.0.0.1, 10.0.0.2 }\nadd rule ip t c accept')
  const before = serializeNftCommands(rs)
  t.throws(() => applyNftCommands(rs, 'add element ip t s { 10.0.0.3 }\nadd rule ip t c jump nowhere'), /line 2: chain nowhere/)
  t.equal(serializeNftCommands(rs), before, 'a failed transaction changes nothing')

  const after = applyNftCommands(rs, [
    'flush table ip t',
    'add rule ip t c drop',
    'insert rule ip t c counter',
    'add rule ip t c index 0 return',
    'delete element ip t s { 10.0.0.1 }',
    'add element ip t s { 10.0.0.2, 10.0.0.9 }',
  ].join('\n'))
  t.same(after.tables.get('ip t')!.chains.get('c')!.rules.map((r) => ruleText(r)), ['counter packets 0 bytes 0', 'return', 'drop'])
  t.same(after.tables.get('ip t')!.sets.get('s')!.elements.map((e) => e.key), [{ kind: 'value', text: '10.0.0.2' }, { kind: 'value', text: '10.0.0.9' }], 'flush table keeps set elements, as the kernel does')

  const listed = parseNftRuleset('table ip t {\n\tchain c {\n\t\taccept # handle 4\n\t\tdrop # handle 5\n\t}\n}\n')
  const replaced = applyNftCommands(listed, 'replace rule ip t c handle 5 return\ndelete rule ip t c handle 4\nadd rule ip t c position 5 accept')
  t.same(replaced.tables.get('ip t')!.chains.get('c')!.rules.map((r) => ruleText(r)), ['return', 'accept'])
  t.throws(() => applyNftCommands(listed, 'delete rule ip t c handle 99'), /line 1: no rule with handle 99/)
  t.equal(applyNftCommands(listed, 'flush ruleset').tables.size, 0)
  t.equal(applyNftCommands(listed, 'delete table ip t').tables.size, 0)
  t.same(parseNftCommands('flush ruleset ip6'), [{ op: 'flush', object: 'ruleset', family: 'ip6', line: 1 }])
  // a block refers forward to a chain declared later in it, as nft allows
  t.doesNotThrow(() => parseNftRuleset('table ip t {\n chain a {\n  jump b\n }\n chain b {\n }\n}\n'))
})

t.test('durations and priorities', async (t) => {
  const durations: Array<[string, number, string]> = [['10800s', 10800, '3h'], ['3h', 10800, '3h'], ['1h30m', 5400, '1h30m'], ['59s832ms', 59.832, '59s832ms'], ['2d', 172800, '2d'], ['90', 90, '1m30s']]
  for (const [text, seconds, printed] of durations) {
    t.equal(parseDuration(text), seconds, text)
    t.equal(formatDuration(seconds), printed, `${seconds}s prints as ${printed}`)
  }
  t.equal(parseDuration('3x'), undefined)
  const priorities: Array<[number, 'prerouting' | 'output' | 'postrouting' | 'forward', string]> = [
    [-100, 'prerouting', 'dstnat'], [-110, 'prerouting', 'dstnat - 10'], [-110, 'output', '-110'], [-100, 'output', '-100'], [100, 'postrouting', 'srcnat'], [0, 'forward', 'filter'], [5, 'forward', 'filter + 5'],
  ]
  for (const [n, hook, text] of priorities) t.equal(formatPriority(n, hook), text, `${n} at ${hook}`)
})
