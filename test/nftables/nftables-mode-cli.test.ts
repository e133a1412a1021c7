// The nftables mode on the command line: `svcplane dump --mode nftables --format nft` prints
// the table nft -f loads, `explain --mode nftables` decides through it.
import t from 'tap'
import { parseNftRuleset } from '../../lib/nftables/nft/apply.js'
import { CLUSTER, cli, NODE } from '../fixtures/cli'

t.test('dump --format nft', async (t) => {
  const d = await cli('dump', '--cluster', CLUSTER, ...NODE, '--mode', 'nftables', '--format', 'nft')
  t.equal(d.code, 0, d.err)
  t.match(d.out, /^add table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\n/)
  t.match(d.out, /add element ip kube-proxy service-ips \{ 172\.30\.10\.5 \. tcp \. 80 : goto service-[A-Z2-7]{8}-shop\/web\/tcp\/http \}/)
  t.ok(parseNftRuleset(d.out).tables.has('ip kube-proxy'), 'the nft parser reads it back')
  const j = await cli('dump', '--cluster', CLUSTER, ...NODE, '--mode', 'nftables', '--format', 'nft', '--json')
  t.equal(JSON.parse(j.out).text, d.out)
  const wrong = await cli('dump', '--cluster', CLUSTER, ...NODE, '--format', 'nft')
  t.equal(wrong.code, 2)
  t.match(wrong.err, /--format nft shows the nftables mode's table: use --proxy-mode nftables/)
})

t.test('explain --mode nftables', async (t) => {
  const e = await cli('explain', '--cluster', CLUSTER, ...NODE, '--mode', 'nftables', '--src', '10.244.0.9', '--dst', '172.30.10.5:80', '--json')
  t.equal(e.code, 0, e.err)
  const out = JSON.parse(e.out)
  t.equal(out.nftables.result.action, 'dnat')
  t.equal(out.nftables.result.servicePort, 'shop/web:http')
  t.match(JSON.stringify(out.nftables.steps), /the ruleset chose .*services -> service-/)
})
