// kube-proxy's own flags on run, explain, dump, doctor and compare: --proxy-mode (with --mode
// kept as an alias), --service-cidr, --nodeport-addresses and --config FILE, where flags given
// on the command line override the file's fields.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CLUSTER, NODE, cli } from '../fixtures/cli.js'

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n'

function configFile(dir: string, body: string, name = 'kube-proxy.yaml'): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, HEAD + body)
  return file
}

t.test('--proxy-mode is the documented flag, --mode its alias', async (t) => {
  for (const command of ['run', 'explain', 'dump', 'doctor']) {
    const help = (await cli(command, '--help')).out
    t.match(help, /--proxy-mode MODE/, `${command} --help shows --proxy-mode`)
    t.notMatch(help, /\n\s+--mode /, `${command} --help hides --mode`)
    t.match(help, /--config FILE/, `${command} --help shows --config`)
  }
  const a = await cli('dump', '--cluster', CLUSTER, ...NODE, '--proxy-mode', 'ipvs', '--format', 'ipvsadm')
  const b = await cli('dump', '--cluster', CLUSTER, ...NODE, '--mode', 'ipvs', '--format', 'ipvsadm')
  t.equal(a.code, 0, a.err)
  t.match(a.out, /TCP {2}172\.30\.10\.5:80 rr/)
  t.equal(b.out, a.out, '--mode gives the same')
  const both = await cli('dump', '--cluster', CLUSTER, ...NODE, '--mode', 'ipvs', '--proxy-mode', 'ipvs')
  t.equal(both.code, 2, 'one value only')
  t.match(both.err, /--proxy-mode/)
  const bad = await cli('dump', '--cluster', CLUSTER, ...NODE, '--proxy-mode', 'kernelspace')
  t.equal(bad.code, 2)
  t.match(bad.err, /--proxy-mode: must be one of native, iptables/)
})

t.test('--service-cidr and --nodeport-addresses reach the Proxier', async (t) => {
  // NodePorts on the node addresses inside 192.168.0.0/24 only.
  const twoIPs = ['--node-name', 'node-a', '--node-ip', '192.168.0.2,10.1.0.2', '--pod-cidr', '10.244.0.0/16', '--seed', '1', '--proxy-mode', 'ipvs', '--format', 'ipvsadm']
  const all = await cli('dump', '--cluster', CLUSTER, ...twoIPs)
  t.match(all.out, /TCP {2}10\.1\.0\.2:30080 rr/, 'by default every node address takes NodePorts')
  const some = await cli('dump', '--cluster', CLUSTER, ...twoIPs, '--nodeport-addresses', '192.168.0.0/24')
  t.equal(some.code, 0, some.err)
  t.match(some.out, /TCP {2}192\.168\.0\.2:30080 rr/)
  t.notMatch(some.out, /10\.1\.0\.2:30080/, 'not on the address outside --nodeport-addresses')
  const primary = await cli('dump', '--cluster', CLUSTER, ...twoIPs, '--nodeport-addresses', 'primary')
  t.notMatch(primary.out, /10\.1\.0\.2:30080/, 'primary: the first node IP of the family')

  // nftables mode drops traffic to unallocated addresses of the service CIDRs.
  const nft = await cli('dump', '--cluster', CLUSTER, ...NODE, '--proxy-mode', 'nftables', '--format', 'nft', '--service-cidr', '172.30.0.0/16')
  t.equal(nft.code, 0, nft.err)
  t.match(nft.out, /172\.30\.0\.0\/16/)
  const without = await cli('dump', '--cluster', CLUSTER, ...NODE, '--proxy-mode', 'nftables', '--format', 'nft')
  t.notMatch(without.out, /172\.30\.0\.0\/16/)

  const usage: [string[], RegExp][] = [
    [['--service-cidr', '172.30.0.0'], /--service-cidr: "172\.30\.0\.0" is not a CIDR/],
    [['--nodeport-addresses', 'eth0'], /--nodeport-addresses: each item must be a CIDR, "primary", "localhost" or "all", got "eth0"/],
  ]
  for (const command of ['dump', 'explain', 'run', 'doctor']) {
    for (const [flag, message] of usage) {
      const extra = command === 'explain' ? ['--src', '10.244.0.5', '--dst', '172.30.10.5:80'] : command === 'run' ? ['--once'] : []
      const node = command === 'doctor' ? [] : NODE
      const r = await cli(command, '--cluster', CLUSTER, ...node, ...extra, ...flag)
      t.equal(r.code, 2, `${command} ${flag.join(' ')}: usage error`)
      t.match(r.err, message, `${command}: names the flag`)
    }
  }
})

t.test('--config: the file sets what no flag sets; flags win', async (t) => {
  const dir = t.testdir()
  const file = configFile(dir, [
    'mode: ipvs',
    'hostnameOverride: node-a',
    'clusterCIDR: 10.244.0.0/16',
    'ipvs:',
    '  scheduler: wrr',
    '  strictARP: true',
    'oomScoreAdj: -999',
    '',
  ].join('\n'))
  const fromFile = await cli('dump', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--seed', '1', '--config', file, '--format', 'ipvsadm')
  t.equal(fromFile.code, 0, fromFile.err)
  t.match(fromFile.out, /TCP {2}172\.30\.10\.5:80 wrr/, 'mode and scheduler from the file')
  t.match(fromFile.err, /svcplane dump: note: .*kube-proxy\.yaml: svcplane does not act on oomScoreAdj\n/, 'one line naming what is not acted on')
  const flagWins = await cli('dump', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--seed', '1', '--config', file, '--proxy-mode', 'iptables', '--format', 'iptables-save')
  t.equal(flagWins.code, 0, flagWins.err)
  t.match(flagWins.out, /-j KUBE-SVC-/, '--proxy-mode overrides the file\'s mode: iptables mode\'s rules')
  t.notMatch(flagWins.out, /KUBE-CLUSTER-IP/, 'not ipvs mode\'s')

  // run: the mode, node name and sync timing from the file, --node-name from the flag.
  const runFile = configFile(dir, 'mode: ipvs\nhostnameOverride: from-file\nipvs:\n  syncPeriod: 1m0s\n  minSyncPeriod: 2s\n', 'run.yaml')
  const run = await cli('run', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--config', runFile, '--once', '--json')
  t.equal(run.code, 0, run.err)
  t.match(JSON.parse(run.out), { mode: 'ipvs', node: { name: 'from-file' } })
  const runFlag = await cli('run', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--config', runFile, '--node-name', 'node-a', '--once', '--json')
  t.match(JSON.parse(runFlag.out), { mode: 'ipvs', node: { name: 'node-a' } }, '--node-name overrides hostnameOverride')
  // The file's minSyncPeriod above --sync-period is the same mistake as with flags.
  const clash = await cli('run', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--config', runFile, '--sync-period', '1s', '--once')
  t.equal(clash.code, 2)
  t.match(clash.err, /--min-sync-period must not exceed --sync-period/)

  // explain: the file's mode instead of both.
  const explain = await cli('explain', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--config', file, '--src', '10.244.0.5', '--dst', '172.30.10.5:80')
  t.equal(explain.code, 0, explain.err)
  t.match(explain.out, /\nipvs:\n/)

  // compare: --from defaults to the file's mode.
  const compare = await cli('compare', '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--config', file, '--to', 'ipvs', '--json')
  t.equal(compare.code, 0, compare.err)
  t.match(JSON.parse(compare.out), { from: 'ipvs', to: 'ipvs', differences: [] })
})

t.test('--config mistakes name the file and the field', async (t) => {
  const dir = t.testdir()
  const cases: [string, RegExp][] = [
    ['ipvs:\n  schedular: rr\n', /--config .*bad\.yaml: KubeProxyConfiguration: unknown field "ipvs\.schedular" \(did you mean "ipvs\.scheduler"\?\)/],
    ['iptables:\n  masqueradeBit: high\n', /iptables\.masqueradeBit must be a 32-bit integer, got "high"/],
    ['mode: kernelspace\n', /mode must be one of/],
  ]
  for (const [body, message] of cases) {
    const file = configFile(dir, body, 'bad.yaml')
    for (const command of ['dump', 'run', 'doctor']) {
      const r = await cli(command, '--cluster', CLUSTER, '--node-ip', '192.168.0.2', '--config', file, ...(command === 'run' ? ['--once'] : []))
      t.equal(r.code, 1, `${command}: fails`)
      t.match(r.err, message, `${command}: ${message}`)
    }
  }
  const missing = await cli('dump', '--cluster', CLUSTER, ...NODE, '--config', path.join(dir, 'nope.yaml'))
  t.equal(missing.code, 1)
  t.match(missing.err, /cannot read configuration file .*nope\.yaml: no such file/)
})

t.test('doctor --proxy-mode ipvs and --config: the ipvs checks and the deprecation', async (t) => {
  const DOCTOR_NODE = ['--node-name', 'node-a', '--node-ip', '192.168.0.2', '--pod-cidr', '10.244.0.0/16']
  const plain = await cli('doctor', '--cluster', CLUSTER, ...DOCTOR_NODE, '--json')
  t.equal(plain.code, 0, plain.err)
  t.notMatch(plain.out, /ipvs-deprecated/, 'not without the mode')
  const dir = t.testdir()
  const file = configFile(dir, 'mode: ipvs\n')
  for (const args of [['--proxy-mode', 'ipvs'], ['--mode', 'ipvs'], ['--config', file]]) {
    const r = await cli('doctor', '--cluster', CLUSTER, ...DOCTOR_NODE, ...args, '--json')
    t.equal(r.code, 0, r.err)
    const codes = (JSON.parse(r.out) as { findings: { code: string; severity: string }[] }).findings.map((f) => `${f.severity} ${f.code}`)
    t.ok(codes.includes('warning ipvs-deprecated'), `${args.join(' ')}: deprecated`)
    t.ok(codes.includes('warning ipvs-strict-arp-off'), `${args.join(' ')}: the load-balancer IP on kube-ipvs0 answers ARP`)
  }
  const strict = configFile(dir, 'mode: ipvs\nipvs:\n  strictARP: true\n', 'strict.yaml')
  const r = await cli('doctor', '--cluster', CLUSTER, ...DOCTOR_NODE, '--config', strict, '--json')
  t.notMatch(r.out, /ipvs-strict-arp-off/, 'strictARP from the file')
  const text = await cli('doctor', '--cluster', CLUSTER, ...DOCTOR_NODE, '--proxy-mode', 'ipvs')
  t.match(text.out, /WARNING ipvs-deprecated \(node-a\)\n.*deprecated from Kubernetes 1\.35/)
  t.match(text.out.replace(/\s+/g, ' '), /svcplane compare --cluster FILE --from ipvs --to nftables/)
})
