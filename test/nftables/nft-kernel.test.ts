// The real kernel: in a network namespace this test creates, `nft -f` loads the kube-proxy
// fixture and our own serializations of it (both forms) and a follow-up transaction; the
// kernel's `nft -a list ruleset` parses back to the ruleset we computed (modulo handles,
// counters and the kernel's element order). Then real UDP datagrams on loopback go through a
// ruleset with counters at every hook, and the kernel's counters must equal the evaluator's.
// Needs root, iproute2 and nft (apt-get install -y nftables); skipped with a message elsewhere.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { applyNftCommands, parseNftRuleset } from '../../lib/nftables/nft/apply.js'
import { canonicalNftRuleset } from '../../lib/nftables/nft/canonical.js'
import { NftEvaluator } from '../../lib/nftables/nft/evaluator.js'
import { serializeNftCommands, serializeNftRuleset } from '../../lib/nftables/nft/serialize.js'
import { createNetns } from '../fixtures/netns'

const netns = createNetns('nfteval', ['nft'], { nft: 'apt-get install -y nftables' })
const inNs = 'skip' in netns ? () => { throw new Error('no namespace') } : netns.exec

const KUBE = readFileSync(join(__dirname, '..', 'fixtures', 'nftables', 'kube-proxy.nft'), 'utf8')

/** loads text with nft -f (after flushing the ruleset when asked) and returns the kernel's listing */
function load(text: string, flushFirst: boolean): { ok: boolean; listing: string; stderr: string } {
  if (flushFirst) inNs('nft', ['flush', 'ruleset'])
  const r = inNs('nft', ['-f', '-'], text)
  const l = inNs('nft', ['-a', 'list', 'ruleset'])
  return { ok: r.ok && l.ok, listing: l.stdout, stderr: r.stderr + l.stderr }
}

if ('skip' in netns) {
  t.plan(0, `skipped: ${netns.skip}`)
} else {
  t.teardown(netns.remove)
  const ours = parseNftRuleset(KUBE)

  t.test('kube-proxy ruleset: loaded, listed, parsed back to the same ruleset', async (t) => {
    for (const [name, text] of [
      ['the fixture as written', KUBE],
      ['our command form', serializeNftCommands(ours)],
      ['our block form', serializeNftRuleset(ours)],
    ] as const) {
      const r = load(text, true)
      t.ok(r.ok, `${name}: nft -f accepts it ${r.stderr}`)
      const listed = parseNftRuleset(r.listing)
      t.same(canonicalNftRuleset(listed), canonicalNftRuleset(ours), `${name}: the kernel lists the same ruleset`)
      t.ok([...listed.tables.get('ip kube-proxy')!.chains.values()].every((c) => c.handle !== undefined && c.rules.every((x) => x.handle !== undefined)), `${name}: handles parsed`)
    }
    // the kernel's listing itself loads again (into an empty namespace) and lists the same
    const first = load(KUBE, true).listing
    const again = load(first, true)
    t.ok(again.ok, `nft -f accepts nft list output ${again.stderr}`)
    t.same(canonicalNftRuleset(parseNftRuleset(again.listing)), canonicalNftRuleset(parseNftRuleset(first)))
  })

  t.test('a partial transaction: the kernel and applyNftCommands agree', async (t) => {
    const base = load(KUBE, true)
    t.ok(base.ok, base.stderr)
    const tx = [
      'add chain ip kube-proxy service-ZZ9YY8XX-web/extra/tcp/http',
      'add chain ip kube-proxy endpoint-AB12CD34-web/extra/tcp/http__10.1.9.9/80',
      'add rule ip kube-proxy endpoint-AB12CD34-web/extra/tcp/http__10.1.9.9/80 ip saddr 10.1.9.9 jump mark-for-masquerade',
      'add rule ip kube-proxy endpoint-AB12CD34-web/extra/tcp/http__10.1.9.9/80 meta l4proto tcp dnat to 10.1.9.9:80',
      'add rule ip kube-proxy service-ZZ9YY8XX-web/extra/tcp/http numgen random mod 1 vmap { 0 : goto endpoint-AB12CD34-web/extra/tcp/http__10.1.9.9/80 }',
      'add element ip kube-proxy cluster-ips { 172.30.9.90 }',
      'add element ip kube-proxy service-ips { 172.30.9.90 . tcp . 80 : goto service-ZZ9YY8XX-web/extra/tcp/http }',
      'delete element ip kube-proxy no-endpoint-services { 198.51.100.50 . tcp . 80 }',
      'delete element ip kube-proxy no-endpoint-nodeports { tcp . 30080 }',
      'flush chain ip kube-proxy external-H2LQ8VNE-dns/coredns/udp/dns',
      'add rule ip kube-proxy external-H2LQ8VNE-dns/coredns/udp/dns goto service-H2LQ8VNE-dns/coredns/udp/dns',
      '',
    ].join('\n')
    const r = inNs('nft', ['-f', '-'], tx)
    t.ok(r.ok, `nft -f accepts the transaction ${r.stderr}`)
    const kernel = parseNftRuleset(inNs('nft', ['-a', 'list', 'ruleset']).stdout)
    t.same(canonicalNftRuleset(kernel), canonicalNftRuleset(applyNftCommands(ours, tx)))
    // a transaction the kernel refuses is refused here too, and changes nothing in either
    const bad = 'add element ip kube-proxy cluster-ips { 172.30.9.91 }\nadd rule ip kube-proxy services jump no-such-chain\n'
    t.notOk(inNs('nft', ['-f', '-'], bad).ok, 'the kernel refuses a jump to a missing chain')
    t.throws(() => applyNftCommands(kernel, bad), /line 2: chain no-such-chain does not exist/)
    t.same(canonicalNftRuleset(parseNftRuleset(inNs('nft', ['-a', 'list', 'ruleset']).stdout)), canonicalNftRuleset(kernel), 'the kernel kept the old ruleset')
  })

  // Real packets (counted only when UDP: the ICMP port-unreachable answers take the same path): UDP datagrams from a process in the namespace to loopback addresses pass
  // output and postrouting, then come back in through lo to prerouting and input. Counters at
  // every hook, in chains of two tables with interleaved priorities, a verdict map on the port,
  // marks and a drop: the kernel's counters after the run must equal the evaluator's.
  const COUNTING = `table ip a {
	map ports {
		type inet_service : verdict
		elements = { 9001 : jump marked, 9002 : drop }
	}

	chain out {
		type filter hook output priority 0; policy accept;
		meta l4proto udp counter
		udp dport vmap @ports
		meta l4proto udp meta mark 0x7 counter
	}

	chain marked {
		meta mark set 0x7
		counter
	}

	chain post {
		type filter hook postrouting priority 50; policy accept;
		meta l4proto udp meta mark 0x7 counter
		ip daddr 127.0.0.3 counter
	}

	chain pre {
		type filter hook prerouting priority -200; policy accept;
		meta l4proto udp counter
		ip daddr . udp dport { 127.0.0.3 . 9003, 127.0.0.0/8 . 9004 } counter drop
	}

	chain in {
		type filter hook input priority 10; policy accept;
		meta l4proto udp meta mark 0x7 counter
		meta l4proto udp counter
	}
}
table ip b {
	chain out {
		type filter hook output priority -10; policy accept;
		udp dport 9000-9010 counter
	}

	chain in {
		type filter hook input priority 0; policy accept;
		meta l4proto udp ct state new counter
		udp dport 9001 counter accept
		meta l4proto udp counter
	}
}
`

  t.test('real datagrams: kernel counters equal the evaluator counters', async (t) => {
    t.ok(inNs('ip', ['link', 'set', 'lo', 'up']).ok, 'lo up')
    const r = load(COUNTING, true)
    t.ok(r.ok, `ruleset loaded ${r.stderr}`)
    const sends: Array<[string, number]> = [['127.0.0.1', 9000], ['127.0.0.1', 9001], ['127.0.0.1', 9002], ['127.0.0.3', 9003], ['127.0.0.5', 9004], ['127.0.0.3', 9001], ['127.0.0.1', 9020]]
    // each datagram from its own socket: every one is a new conntrack flow
    const script = `const d = require('dgram'); const list = ${JSON.stringify(sends)};
      (async () => { for (const [h, p] of list) await new Promise((res) => { const s = d.createSocket('udp4'); s.send(Buffer.from('x'), p, h, () => { s.close(); res() }) }) })()`
    const sent = inNs(process.execPath, ['-e', script])
    t.ok(sent.ok, `datagrams sent ${sent.stderr}`)
    const kernel = parseNftRuleset(inNs('nft', ['list', 'ruleset']).stdout)

    const ev = new NftEvaluator(COUNTING)
    for (const [h, p] of sends) ev.evaluate({ src: '127.0.0.1', sport: 50000, dst: h, dport: p, protocol: 'udp', hook: 'output', length: 29 })
    const fromKernel: Array<[string, string, number, number]> = []
    for (const [key, table] of kernel.tables) {
      for (const c of table.chains.values()) {
        c.rules.forEach((rule, index) => {
          const counter = rule.statements.find((s) => s.kind === 'counter')
          if (counter?.kind === 'counter') fromKernel.push([key, c.name, index, counter.packets])
        })
      }
    }
    const fromEvaluator = ev.counters().map((c) => [c.ref.table, c.ref.chain, c.ref.index, c.packets])
    t.same(fromEvaluator, fromKernel, 'packet counters rule by rule')
    t.comment(`counters (table chain rule packets): ${fromKernel.map((c) => c.join(' ')).join('; ')}`)
    t.ok(fromKernel.some(([, , , n]) => n > 0), 'the kernel counted packets')
  })
}
