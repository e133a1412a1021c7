// `svcplane explain|dump|run --mode userspace` on the CLI fixture cluster: the decision through
// the portal rules, the listener table and portal rules, and a one-shot run.
import t from 'tap'
import { CLUSTER, cli, NODE } from '../../fixtures/cli'

const cases: { name: string; argv: string[]; out: RegExp[]; code?: number; err?: RegExp }[] = [
  {
    name: 'explain: portal rule, round-robin pick, the node as source',
    argv: ['explain', '--cluster', CLUSTER, ...NODE, '--mode', 'userspace', '--src', '10.244.0.9', '--dst', '172.30.10.5:80'],
    out: [/userspace:/, /-A KUBE-PORTALS-CONTAINER -d 172\.30\.10\.5\/32 -p tcp .*-j REDIRECT --to-ports \d+: REDIRECT/, /round-robin: 10\.244\.\d\.20:8080, endpoint 1 of 2/, /=> DNAT shop\/web:http -> 10\.244\.\d\.20:8080, masqueraded/],
  },
  {
    name: 'dump: the listener table, then the portal rules (the default format in this mode)',
    argv: ['dump', '--cluster', CLUSTER, ...NODE, '--mode', 'userspace'],
    out: [/^SERVICE PORT\s+PROTO\s+PROXY SOCKET\s+STATE/, /\nshop\/web:http\s+TCP\s+0\.0\.0\.0:\d+\s+model\s+0\s+0\s+0\s+0\s+ClientIP 600s\s+>10\.244\.\d\.20:8080 10\.244\.\d\.20:8080\n/, /\n\*nat\n:KUBE-PORTALS-CONTAINER - \[0:0\]\n/, /-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "shop\/web:http" -m tcp --dport 30080 -j REDIRECT --to-ports \d+\n/, /\*filter\n:KUBE-NODEPORT-NON-LOCAL - \[0:0\]\n/],
  },
  {
    name: 'dump --format iptables-save: the portal rules only',
    argv: ['dump', '--cluster', CLUSTER, ...NODE, '--mode', 'userspace', '--format', 'iptables-save'],
    out: [/^\*nat\n:KUBE-PORTALS-CONTAINER/, /-A KUBE-PORTALS-HOST -d 172\.30\.10\.5\/32 -p tcp -m comment --comment "shop\/web:http" -m tcp --dport 80 -j DNAT --to-destination 192\.168\.0\.2:\d+\n/],
  },
  {
    name: 'dump --format userspace --json',
    argv: ['dump', '--cluster', CLUSTER, ...NODE, '--mode', 'userspace', '--format', 'userspace', '--json'],
    out: [/"listeners": \[/, /"servicePort": "shop\/web:http"/, /"jumpRules": \{/],
  },
  {
    name: 'dump --format userspace in another mode is a usage error',
    argv: ['dump', '--cluster', CLUSTER, ...NODE, '--mode', 'iptables', '--format', 'userspace'],
    out: [],
    code: 2,
    err: /--format userspace shows the userspace proxier's listeners and portal rules: use --proxy-mode userspace/,
  },
  {
    name: 'run --once in mode userspace',
    argv: ['run', '--cluster', CLUSTER, ...NODE, '--mode', 'userspace', '--once'],
    out: [/service ports programmed in mode userspace on node node-a/],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const r = await cli(...c.argv)
    t.equal(r.code, c.code ?? 0, r.err)
    for (const re of c.out) t.match(r.out, re)
    if (c.err) t.match(r.err, c.err)
  })
}

t.test('dump: the default format stays ipvsadm in other modes', async (t) => {
  const r = await cli('dump', '--cluster', CLUSTER, ...NODE)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /^IP Virtual Server/)
})
