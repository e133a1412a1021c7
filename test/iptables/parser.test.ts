import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseIptablesSave } from '../../lib/iptables/save/parser.js'
import { serializeIptables, serializeRule } from '../../lib/iptables/save/serialize.js'
import { IptablesParseError } from '../../lib/iptables/save/errors.js'
import type { Rule } from '../../lib/iptables/save/types.js'

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8')

function onlyRule(text: string): Rule {
  const doc = parseIptablesSave(`*nat\n:KUBE-X - [0:0]\n:KUBE-Y - [0:0]\n${text}\nCOMMIT\n`)
  const rules = doc.statements.flatMap((s) => (s.type === 'rule' ? [s.rule] : []))
  if (rules.length !== 1) throw new Error(`expected one rule, got ${rules.length}`)
  return rules[0]!
}

t.test('round-trips realistic dumps byte for byte', async (t) => {
  for (const name of ['node-a.iptables-save.txt', 'calico-node.iptables-save.txt', 'kube-proxy-restore.txt']) {
    const text = fixture(name)
    const doc = parseIptablesSave(text)
    t.equal(serializeIptables(doc), text, name)
  }
})

t.test('effective tables, chains and policies', async (t) => {
  const doc = parseIptablesSave(fixture('node-a.iptables-save.txt'))
  t.same([...doc.tables.keys()], ['mangle', 'filter', 'nat'])
  const filter = doc.tables.get('filter')!
  t.equal(filter.chains.get('FORWARD')!.policy, 'DROP')
  t.same(filter.chains.get('INPUT')!.counters, { packets: 170, bytes: 22011 })
  t.ok(filter.chains.get('KUBE-FIREWALL'), 'kubelet chain present')
  t.ok(doc.tables.get('mangle')!.chains.get('KUBE-KUBELET-CANARY'), 'kubelet canary present')
  const nat = doc.tables.get('nat')!
  t.equal(nat.chains.get('KUBE-SVC-XPGD46QRK7WJZT7O')!.rules.length, 4)
  t.equal(doc.family, 4)
  // nfacct is understood; nothing in a kube-proxy + flannel node is unsupported
  t.same(doc.unsupported, [])
})

t.test('decodes kube-proxy rules into structured matches', async (t) => {
  const doc = parseIptablesSave(fixture('node-a.iptables-save.txt'))
  const nat = doc.tables.get('nat')!

  const svc = nat.chains.get('KUBE-SERVICES')!.rules[1]!
  t.equal(svc.comment, 'ns1/svc1:p80 cluster IP')
  t.equal(svc.ip.dst!.text, '172.30.0.41/32')
  t.same(svc.ip.protocol, { negated: false, name: 'tcp', number: 6 })
  const port = svc.matches.find((m) => m.kind === 'port')!
  t.match(port, { kind: 'port', module: 'tcp', dport: { negated: false, ranges: [{ min: 80, max: 80 }] } })
  t.match(svc.target, { kind: 'jump', chain: 'KUBE-SVC-XPGD46QRK7WJZT7O', goto: false })

  const masq = nat.chains.get('KUBE-SVC-XPGD46QRK7WJZT7O')!.rules[0]!
  t.equal(masq.ip.src!.negated, true)
  t.equal(masq.ip.src!.text, '10.0.0.0/8')

  const stat = nat.chains.get('KUBE-SVC-XPGD46QRK7WJZT7O')!.rules[1]!.matches.find((m) => m.kind === 'statistic')!
  t.match(stat, { kind: 'statistic', mode: 'random', probability: 0.33333333349, negated: false })

  const rcheck = nat.chains.get('KUBE-SVC-NUKIZ6OKUXPJNT4C')!.rules[1]!.matches.find((m) => m.kind === 'recent')!
  t.match(rcheck, { kind: 'recent', command: 'rcheck', seconds: 10800, reap: true, name: 'KUBE-SEP-I77PXRDZVX7PMWMN', mask: '255.255.255.255', side: 'source' })
  const set = nat.chains.get('KUBE-SEP-I77PXRDZVX7PMWMN')!.rules[1]!
  t.match(set.matches.find((m) => m.kind === 'recent'), { command: 'set', name: 'KUBE-SEP-I77PXRDZVX7PMWMN' })
  t.match(set.target, { kind: 'dnat', to: { addr: '10.180.0.3', portMin: 80, portMax: 80 } })

  t.match(nat.chains.get('KUBE-MARK-MASQ')!.rules[0]!.target, { kind: 'mark', xorValue: 0x4000, clearMask: 0x4000 })
  const post = nat.chains.get('KUBE-POSTROUTING')!.rules
  t.match(post[0]!.matches[0], { kind: 'mark', negated: true, value: 0x4000, mask: 0x4000 })
  t.match(post[0]!.target, { kind: 'return' })
  t.match(post[1]!.target, { kind: 'mark', xorValue: 0x4000, clearMask: 0 })
  t.match(post[2]!.target, { kind: 'masquerade', randomFully: true })

  const nodeports = nat.chains.get('KUBE-SERVICES')!.rules.at(-1)!
  t.match(nodeports.matches.find((m) => m.kind === 'addrtype'), { dstType: { negated: false, values: ['LOCAL'] }, limitIfaceIn: false })
  const lnp = nat.chains.get('KUBE-NODEPORTS')!.rules[0]!
  t.match(lnp.matches.find((m) => m.kind === 'nfacct'), { name: 'localhost_nps_accepted_pkts' })

  const filter = doc.tables.get('filter')!
  const fw = filter.chains.get('KUBE-FIREWALL')!.rules[0]!
  t.match(fw.matches.find((m) => m.kind === 'conntrack'), { ctstate: { negated: true, values: ['RELATED', 'ESTABLISHED', 'DNAT'] } })
  t.match(filter.chains.get('KUBE-SERVICES')!.rules[0]!.target, { kind: 'reject', rejectWith: 'icmp-port-unreachable' })
})

t.test('parses kube-proxy restore input (unquoted comments, interleaved options)', async (t) => {
  const doc = parseIptablesSave(fixture('kube-proxy-restore.txt'))
  const nat = doc.tables.get('nat')!
  const r = nat.chains.get('KUBE-SERVICES')!.rules[0]!
  // "-m tcp -p tcp -d X --dport 80": --dport belongs to tcp although -p/-d come between
  t.match(r.matches.find((m) => m.kind === 'port'), { module: 'tcp', dport: { ranges: [{ min: 80, max: 80 }] } })
  t.equal(r.ip.dst!.text, '172.30.0.41')
  const sep = nat.chains.get('KUBE-SEP-SXIVWICOYRO3J4NJ')!.rules[0]!
  t.equal(sep.comment, 'ns1/svc1:p80')
  t.equal(serializeRule(sep), '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ')
})

t.test('table-driven rule shapes', async (t) => {
  const cases: Array<{ name: string; line: string; check: (r: Rule) => void }> = [
    {
      name: 'negated interface wildcard and dotted mask',
      line: '-A KUBE-X ! -i veth+ -s 10.1.0.0/255.255.0.0 -j ACCEPT',
      check: (r) => {
        t.same(r.ip.inIface, { negated: true, name: 'veth', wildcard: true })
        t.equal(r.ip.src!.cidrs[0]!.bits, 16)
      },
    },
    {
      name: 'IPv6 prefix and bracketed DNAT destination',
      line: '-A KUBE-X -d fd00:10::1/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00:10:180::1]:8080',
      check: (r) => {
        t.equal(r.ip.dst!.cidrs[0]!.family, 6)
        t.match(r.target, { kind: 'dnat', to: { addr: 'fd00:10:180::1', portMin: 8080 } })
      },
    },
    {
      name: 'port range and multiport list',
      line: '-A KUBE-X -p udp -m udp --sport 1024:65535 -m multiport --dports 53,5353,8000:8080 -j RETURN',
      check: (r) => {
        t.match(r.matches[0], { kind: 'port', sport: { ranges: [{ min: 1024, max: 65535 }] } })
        t.match(r.matches[1], { kind: 'multiport', dports: { ranges: [{ min: 53, max: 53 }, { min: 5353, max: 5353 }, { min: 8000, max: 8080 }] } })
      },
    },
    {
      name: 'implicit protocol match (old syntax)',
      line: '-A KUBE-X -p tcp --dport 443 -j ACCEPT',
      check: (r) => {
        t.match(r.matches[0], { kind: 'port', module: 'tcp', implicit: true, dport: { ranges: [{ min: 443, max: 443 }] } })
        t.equal(serializeRule(r), '-A KUBE-X -p tcp --dport 443 -j ACCEPT')
      },
    },
    {
      name: 'legacy bang after option name',
      line: '-A KUBE-X -p tcp -m tcp --dport ! 22 -j DROP',
      check: (r) => {
        t.match(r.matches[0], { kind: 'port', dport: { negated: true } })
        t.equal(serializeRule(r), '-A KUBE-X -p tcp -m tcp --dport ! 22 -j DROP')
      },
    },
    {
      name: 'MARK variants normalize to xmark',
      line: '-A KUBE-X -j MARK --set-mark 0x10/0xf0',
      check: (r) => t.match(r.target, { kind: 'mark', xorValue: 0x10, clearMask: 0xf0 }),
    },
    {
      name: 'MARK --and-mark',
      line: '-A KUBE-X -j MARK --and-mark 0xffff00ff',
      check: (r) => t.match(r.target, { kind: 'mark', xorValue: 0, clearMask: 0xff00 }),
    },
    {
      name: 'goto a user chain',
      line: '-A KUBE-X -g KUBE-Y',
      check: (r) => t.match(r.target, { kind: 'jump', goto: true, chain: 'KUBE-Y' }),
    },
    {
      name: 'SNAT and LOG with quoted prefix',
      line: '-A KUBE-X -o eth0 -j LOG --log-prefix "kube drop: " --log-level 4',
      check: (r) => {
        t.match(r.target, { kind: 'log' })
        t.equal(serializeRule(r), '-A KUBE-X -o eth0 -j LOG --log-prefix "kube drop: " --log-level 4')
      },
    },
    {
      name: 'escaped quote inside a comment',
      line: '-A KUBE-X -m comment --comment "say \\"hi\\"" -j RETURN',
      check: (r) => {
        t.equal(r.comment, 'say "hi"')
        t.equal(serializeRule(r), '-A KUBE-X -m comment --comment "say \\"hi\\"" -j RETURN')
      },
    },
    {
      name: 'state and physdev',
      line: '-A KUBE-X -m state --state RELATED,ESTABLISHED -m physdev --physdev-is-bridged --physdev-in veth1 -j ACCEPT',
      check: (r) => {
        t.match(r.matches[0], { kind: 'state', state: { values: ['RELATED', 'ESTABLISHED'] } })
        t.match(r.matches[1], { kind: 'physdev', isBridged: { negated: false }, physdevIn: { name: 'veth1' } })
      },
    },
    {
      name: 'ipset match',
      line: '-A KUBE-X -m set ! --match-set KUBE-LB-SRC src,dst -j DROP',
      check: (r) => t.match(r.matches[0], { kind: 'set', negated: true, setName: 'KUBE-LB-SRC', flags: ['src', 'dst'] }),
    },
    {
      name: 'statistic nth',
      line: '-A KUBE-X -m statistic --mode nth --every 3 --packet 0 -j KUBE-Y',
      check: (r) => t.match(r.matches[0], { kind: 'statistic', mode: 'nth', every: 3, packet: 0 }),
    },
    {
      name: 'rule without target (counting / comment-only rule)',
      line: '-A KUBE-X -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"',
      check: (r) => t.equal(r.target, undefined),
    },
    {
      name: 'counters prefix',
      line: '[12:720] -A KUBE-X -j KUBE-Y',
      check: (r) => {
        t.same(r.counters, { packets: 12, bytes: 720 })
        t.equal(serializeRule(r), '[12:720] -A KUBE-X -j KUBE-Y')
      },
    },
  ]
  for (const c of cases) {
    const r = onlyRule(c.line)
    t.equal(serializeRule(r), c.line, `${c.name}: round trip`)
    c.check(r)
  }
})

t.test('unsupported matches and targets are kept and reported with line numbers', async (t) => {
  const doc = parseIptablesSave(fixture('calico-node.iptables-save.txt'))
  const byName = doc.unsupported.map((u) => `${u.line} ${u.table} ${u.chain} ${u.what} ${u.name}`)
  t.same(byName, ['18 raw cali-PREROUTING match rpfilter'])
  const rule = doc.tables.get('raw')!.chains.get('cali-PREROUTING')!.rules[3]!
  t.equal(rule.line, 18)
  t.match(rule.matches[2], { kind: 'opaque', module: 'rpfilter' })
  t.equal(doc.tables.get('raw')!.chains.get('cali-PREROUTING')!.rules.length, 6, 'no rule dropped')

  const text = [
    '*nat',
    ':KUBE-X - [0:0]',
    '-A KUBE-X -p icmp -m icmp --icmp-type 8 -j ACCEPT',
    '-A KUBE-X -m conntrack --ctorigdst 10.0.0.1 -j ACCEPT',
    '-A KUBE-X -p tcp -j REDIRECT --to-ports 15001',
    '-A KUBE-X -j CT --notrack',
    'COMMIT',
    '',
  ].join('\n')
  const d2 = parseIptablesSave(text)
  t.same(d2.unsupported.map((u) => [u.line, u.what, u.name]), [
    [3, 'match', 'icmp'],
    [4, 'option', 'conntrack --ctorigdst'],
    [5, 'target', 'REDIRECT'],
    [6, 'target', 'CT'],
  ])
  t.equal(serializeIptables(d2), text)
})

t.test('restore commands: -I, -D, -R, -N, -X, -F, -P, -E', async (t) => {
  const doc = parseIptablesSave([
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':A - [0:0]',
    '-N B',
    '-A A -j ACCEPT',
    '-I A -s 10.0.0.1 -j DROP',
    '-I A 2 -s 10.0.0.2 -j DROP',
    '-R A 3 -s 10.0.0.3 -j DROP',
    '-D A -s 10.0.0.1 -j DROP',
    '-A B -j RETURN',
    '-F B',
    '-X B',
    '-P INPUT DROP',
    '-A INPUT -j A',
    '-E A C',
    'COMMIT',
    '',
  ].join('\n'))
  const f = doc.tables.get('filter')!
  t.same(f.chains.get('C')!.rules.map((r) => r.ip.src!.text), ['10.0.0.2', '10.0.0.3'])
  t.notOk(f.chains.has('B'))
  t.equal(f.chains.get('INPUT')!.policy, 'DROP')
  t.match(f.chains.get('INPUT')!.rules[0]!.target, { kind: 'jump', chain: 'C' })
})

t.test('errors carry the line number', async (t) => {
  const cases: Array<[string, string, number, RegExp]> = [
    ['rule outside table', '-A INPUT -j ACCEPT\n', 1, /outside a table/],
    ['unknown command', '*filter\n-Q INPUT\nCOMMIT\n', 2, /unknown command "-Q"/],
    ['undeclared chain', '*nat\n:KUBE-A - [0:0]\n-A KUBE-B -j ACCEPT\nCOMMIT\n', 3, /chain KUBE-B does not exist/],
    ['bad address', '*filter\n-A INPUT -s 10.0.0.300 -j DROP\nCOMMIT\n', 2, /invalid address "10.0.0.300"/],
    ['bad port', '*filter\n-A INPUT -p tcp -m tcp --dport 70000 -j DROP\nCOMMIT\n', 2, /invalid port "70000"/],
    ['missing value', '*filter\n-A INPUT -p tcp -m tcp --dport\nCOMMIT\n', 2, /--dport requires 1 argument/],
    ['bad probability', '*nat\n:X - [0:0]\n-A X -m statistic --mode random --probability 1.5 -j ACCEPT\nCOMMIT\n', 3, /invalid probability/],
    ['unterminated quote', '*filter\n\n-A INPUT -m comment --comment "oops -j ACCEPT\nCOMMIT\n', 3, /unterminated/],
    ['unknown option', '*filter\n-A INPUT --frobnicate 1 -j ACCEPT\nCOMMIT\n', 2, /unknown option "--frobnicate"/],
    ['two targets', '*filter\n-A INPUT -j ACCEPT -j DROP\nCOMMIT\n', 2, /more than one target/],
    ['missing COMMIT', '*filter\n:INPUT ACCEPT [0:0]\n', 3, /COMMIT expected/],
    ['bad counters', '*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n', 2, /invalid counters/],
    ['user chain policy', '*filter\n:FOO ACCEPT [0:0]\nCOMMIT\n', 2, /cannot have policy/],
    ['table inside table', '*filter\n*nat\nCOMMIT\n', 2, /before COMMIT/],
    ['bad mark', '*filter\n-A INPUT -m mark --mark 0xZZ -j ACCEPT\nCOMMIT\n', 2, /invalid mark/],
    ['insert too far', '*filter\n-I INPUT 3 -j ACCEPT\nCOMMIT\n', 2, /index of insertion too big/],
  ]
  for (const [name, text, line, re] of cases) {
    try {
      parseIptablesSave(text)
      t.fail(`${name}: expected an error`)
    } catch (err) {
      t.type(err, IptablesParseError, name)
      t.type(err, SyntaxError, name)
      t.equal((err as IptablesParseError).line, line, `${name}: line`)
      t.match((err as Error).message, re, `${name}: message`)
      t.match((err as Error).message, new RegExp(`^line ${line}: `), `${name}: message names the line`)
    }
  }
  t.throws(() => parseIptablesSave(42 as unknown as string), TypeError)
})

t.test('noflush allows chains the text does not declare', async (t) => {
  const doc = parseIptablesSave('*nat\n-A KUBE-SERVICES -j KUBE-NODEPORTS\n-A KUBE-SERVICES -j CT --notrack\nCOMMIT\n', { noflush: true })
  t.ok(doc.tables.get('nat')!.chains.get('KUBE-SERVICES'))
  t.match(doc.tables.get('nat')!.chains.get('KUBE-SERVICES')!.rules[0]!.target, { kind: 'jump', chain: 'KUBE-NODEPORTS' })
  // a known extension is still an extension
  t.same(doc.unsupported.map((u) => u.name), ['CT'])
  // without noflush an undeclared jump target stays opaque and is reported
  const strict = parseIptablesSave('*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-NODEPORTS\nCOMMIT\n')
  t.same(strict.unsupported.map((u) => [u.line, u.what, u.name]), [[3, 'target', 'KUBE-NODEPORTS']])
})
