// What an operator hands the CLI (issue 13): `kubectl get svc,endpoints` YAML, several --cluster
// files, Services of other proxies, hostname load balancers, endless or foreign input, broken
// files, wrong pcap paths, flags in CLI words. Each case runs the command in-process.
import t, { type Test } from 'tap'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'
import { PcapWriter } from '../../lib/pcap/capture.js'
import { makeService, makeSlice, port } from '../fixtures/objects'
import { get, httpEndpoint } from '../service-proxy/loopback'

const FIXTURES = path.join(__dirname, '..', 'fixtures')
const SVC_ENDPOINTS = path.join(FIXTURES, 'svc-endpoints.yaml')
const NODE = ['--node-name', 'node-a', '--node-ip', '192.168.0.2', '--pod-cidr', '10.244.0.0/16', '--seed', '1']
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-inputs-'))
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))

function file(name: string, content: string | object): string {
  const p = path.join(dir, name)
  fs.writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
  return p
}

async function cli(argv: string[], stdin?: string | AsyncIterable<string>, signal?: AbortSignal) {
  const io = bufferIO(signal, {}, typeof stdin === 'string' ? stdin : undefined)
  if (stdin !== undefined && typeof stdin !== 'string') (io as { stdin?: unknown }).stdin = stdin
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

/** One line on stderr, no stack, no code frame, no internal ids. */
function oneLineError(t: Pick<Test, 'equal' | 'notMatch' | 'notOk'>, err: string, what: string) {
  const lines = err.split('\n').filter((l) => l !== '' && !l.startsWith('Run '))
  t.equal(lines.length, 1, `${what}: one line (${JSON.stringify(err)})`)
  t.notMatch(err, /\n\s+at |Cannot read properties|service \d+:|frontends\[\d+\]/, `${what}: no stack, no internal ids`)
  t.notOk(err.includes('\u0000') || err.includes('\u0001'), `${what}: no raw bytes`)
}

const list = (items: object[]) => ({ apiVersion: 'v1', kind: 'List', items })
const web = makeService('shop', 'web', { clusterIP: '172.30.0.5', clusterIPs: ['172.30.0.5'], ports: [port('http', 80)] })
const webSlice = makeSlice('shop', 'web', 1, ['10.244.0.5'], [{ name: 'http', port: 8080 }])

t.test('kubectl get svc,endpoints -o yaml: Endpoints read as mirrored EndpointSlices, said on stderr', async (t) => {
  const r = await cli(['explain', '--cluster', SVC_ENDPOINTS, ...NODE, '--src', '10.244.0.9', '--dst', '172.30.20.5:80', '--json'])
  t.equal(r.code, 0, r.err)
  const j = JSON.parse(r.out)
  t.match(j.native.result, { action: 'dnat', servicePort: 'shop/web:http' })
  t.ok(['10.244.0.20:8080', '10.244.1.20:8080'].includes(j.native.result.endpoint), 'a ready address, never the notReadyAddresses one')
  t.match(r.err, /note: read 2 v1 Endpoints as EndpointSlices, as the EndpointSlice mirroring controller writes them .*: shop\/web, shop\/legacy-db/)
  const d = await cli(['doctor', '--cluster', SVC_ENDPOINTS, '--node-name', 'node-a', '--node-ip', '192.168.0.2', '--json'])
  t.equal(d.code, 0, d.err)
  const report = JSON.parse(d.out)
  t.same(report.findings.filter((f: { code: string }) => f.code === 'no-endpoints').map((f: { service: string }) => f.service), [], 'doctor no longer says "no endpoints"')
  t.match(d.err, /read 2 v1 Endpoints as EndpointSlices/)
})

t.test('several --cluster files merge; repeated single-value flags are refused', async (t) => {
  const svcs = file('svcs.json', list([web]))
  const slices = file('slices.yaml', `kind: EndpointSliceList\nitems:\n- ${JSON.stringify({ ...webSlice, kind: undefined })}\n`)
  const r = await cli(['explain', '--cluster', svcs, '--cluster', slices, ...NODE, '--mode', 'native', '--src', '10.244.0.9', '--dst', '172.30.0.5:80', '--json'])
  t.equal(r.code, 0, r.err)
  t.match(JSON.parse(r.out).native.result, { action: 'dnat', endpoint: '10.244.0.5:8080' }, 'the slices file serves the Services file')
  const cases: [string[], number, RegExp][] = [
    [['dump', '--cluster', svcs, '--cluster', svcs, ...NODE], 1, /cluster file .*svcs\.json is given twice/],
    [['dump', '--cluster', svcs, '--cluster', file('again.json', list([web])), ...NODE], 1, /Service shop\/web is in both .*svcs\.json and .*again\.json/],
    [['dump', '--cluster', svcs, ...NODE, '--node-name', 'node-b'], 2, /--node-name is given twice: it takes one value/],
    [['dump', '--cluster', svcs, ...NODE, '--hostname-override', 'node-b'], 2, /--node-name and --hostname-override both set --node-name/],
    [['dump', '--cluster', svcs, ...NODE, '--mode', 'native', '--proxy-mode', 'iptables'], 2, /--mode and --proxy-mode both set --proxy-mode/],
    [['explain', '--cluster', svcs, ...NODE, '--src', '10.0.0.1', '--dst', '172.30.0.5:80', '--dst', '172.30.0.6:80'], 2, /--dst is given twice/],
    [['dump', '--cluster', '-', '--cluster', '-', ...NODE], 1, /stdin \("-"\) can be read once/],
  ]
  for (const [argv, code, re] of cases) {
    const c = await cli(argv, '{}')
    t.equal(c.code, code, argv.slice(-2).join(' '))
    t.match(c.err, re)
    oneLineError(t, c.err, argv.slice(-2).join(' '))
  }
  t.equal((await cli(['dump', '--cluster', svcs, ...NODE, '--pod-cidr', '10.245.0.0/16', '--format', 'iptables-save'])).code, 0, 'list flags still accumulate')
})

t.test('proxy --cluster reads YAML from stdin like every other command', async (t) => {
  const ep = await httpEndpoint('127.77.3.1', 9080)
  t.teardown(() => ep.close())
  const yaml = [
    '---', 'apiVersion: v1', 'kind: Service', 'metadata: {namespace: ns, name: a}', 'spec: {clusterIP: 127.77.3.10, ports: [{name: http, port: 8080}]}',
    '---', 'apiVersion: v1', 'kind: Endpoints', 'metadata: {namespace: ns, name: a}', `subsets: [{addresses: [{ip: 127.77.3.1}], ports: [{name: http, port: 9080}]}]`, '',
  ].join('\n')
  const stop = new AbortController()
  const done = cli(['proxy', '--cluster', '-', '--node-name', 'n', '--node-ip', '127.77.255.1', '--drain', '0s'], yaml, stop.signal)
  let reply
  for (let i = 0; i < 100 && reply?.ok !== true; i++) {
    await new Promise((r) => setTimeout(r, 50))
    reply = await get('127.77.3.10', 8080, undefined, 500).catch(() => undefined)
  }
  stop.abort()
  const r = await done
  t.same(reply, { ok: true, body: ep.name }, 'traffic to the cluster IP reaches the Endpoints address')
  t.equal(r.code, 0, r.err)
  t.match(r.err, /loaded - \(stdin\): 1 Services, 1 EndpointSlices/)
  t.match(r.err, /read 1 v1 Endpoints as EndpointSlices/)
})

t.test('Services of another proxy and headless-labelled ones are skipped, and explain / doctor say why', async (t) => {
  const r = await cli(['explain', '--cluster', SVC_ENDPOINTS, ...NODE, '--src', '10.244.0.9', '--dst', '172.30.20.7:80'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /Both modes agree/)
  t.match(r.out, /172\.30\.20\.7 belongs to Service mesh\/mesh-gw, which kube-proxy does not program: it is labelled service\.kubernetes\.io\/service-proxy-name=mesh-proxy/)
  t.match(r.err, /note: skipping Service mesh\/mesh-gw/)
  const d = await cli(['doctor', '--cluster', SVC_ENDPOINTS, '--node-name', 'node-a', '--node-ip', '192.168.0.2', '--service', 'mesh/mesh-gw', '--json'])
  t.equal(d.code, 0, d.err)
  t.match(JSON.parse(d.out).findings, [{ code: 'not-proxied', service: 'mesh/mesh-gw', why: /another proxy owns it/ }])
})

t.test('doctor: a load balancer known by hostname is not pending', async (t) => {
  const lb = (name: string, ingress: object[]) => makeService('shop', name, { type: 'LoadBalancer', clusterIP: '172.30.0.9', ports: [port('http', 80, { nodePort: 30080 })] }, { loadBalancer: { ingress: ingress as never } })
  const cases: [string, object[], string | undefined][] = [
    ['hostname', [{ hostname: 'a1b2.elb.amazonaws.com' }], 'load-balancer-hostname'],
    ['proxy-mode', [{ ip: '198.51.100.9', ipMode: 'Proxy' }], 'load-balancer-hostname'],
    ['nothing', [], 'load-balancer-pending'],
  ]
  for (const [name, ingress, code] of cases) {
    const f = file(`lb-${name}.json`, list([{ ...lb(name, ingress), metadata: { namespace: 'shop', name } }, makeSlice('shop', name, 1, ['10.244.0.5'], [{ name: 'http', port: 8080 }])]))
    const d = await cli(['doctor', '--cluster', f, '--node-name', 'node-a', '--node-ip', '192.168.0.2', '--all', '--json'])
    t.equal(d.code, 0, d.err)
    const codes = JSON.parse(d.out).findings.map((x: { code: string }) => x.code)
    t.ok(codes.includes(code), `${name}: ${code} in ${codes.join(', ')}`)
    if (name !== 'nothing') t.notOk(codes.includes('load-balancer-pending'), `${name}: not pending`)
  }
})

t.test('input size limits; endless and binary input end at once with an error naming the limit or the problem', async (t) => {
  const svcs = file('small.json', list([web]))
  const big = await cli(['dump', '--cluster', svcs, ...NODE, '--max-input-bytes', '100'])
  t.equal(big.code, 1)
  t.match(big.err, /cluster file .*small\.json is larger than the 100 bytes input limit; --max-input-bytes raises it/)
  const zero = await cli(['dump', '--cluster', '/dev/zero', ...NODE])
  t.equal(zero.code, 1)
  t.match(zero.err, /cluster file \/dev\/zero is binary data, not JSON or YAML/)
  let produced = 0
  async function* endless() {
    for (; produced < 100_000; produced++) yield 'a'.repeat(65536) // bounded: 6.5 GB if nothing stopped it
  }
  const stream = await cli(['dump', '--cluster', '-', ...NODE, '--max-input-bytes', '1Mi'], endless())
  t.equal(stream.code, 1)
  t.match(stream.err, /cluster file - \(stdin\) is larger than the 1 MiB input limit; --max-input-bytes raises it/)
  t.ok(produced < 32, `stopped reading after the limit (${produced} chunks)`)
  const stop = new AbortController()
  async function* slow() {
    for (let i = 0; i < 1000; i++) {
      if (i === 3) stop.abort()
      yield 'items: []\n'
      await new Promise((r) => setTimeout(r, 1))
    }
  }
  const interrupted = await cli(['dump', '--cluster', '-', ...NODE], slow(), stop.signal)
  t.equal(interrupted.code, 1)
  t.match(interrupted.err, /reading cluster file - \(stdin\) was interrupted/)
  t.equal((await cli(['dump', '--cluster', svcs, ...NODE, '--max-input-bytes', 'lots'])).code, 2, 'a bad size is a usage error')
})

t.test('input with no Kubernetes objects is refused, naming what was found', async (t) => {
  const svcs = file('ok.json', list([web]))
  const cases: [string[], RegExp][] = [
    [['dump', '--cluster', file('empty.json', '{}'), ...NODE], /cluster file .*empty\.json holds no Kubernetes objects: found an empty object \(\{\}\)/],
    [['dump', '--cluster', file('n.json', '42'), ...NODE], /holds no Kubernetes objects: found a number \(42\)/],
    [['dump', '--cluster', file('table.txt', 'NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\nkubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   5d\n'), ...NODE], /holds no Kubernetes objects: found text \("NAME {9}TYPE/],
    [['dump', '--cluster', file('comments.yaml', '# nothing\n---\n'), ...NODE], /holds no Kubernetes objects: found only comments/],
    [['doctor', '--cluster', svcs, '--node-name', 'node-a', '--node-ip', '192.168.0.2', '--conntrack', file('ct.txt', 'hello\nthis is not conntrack\n')], /conntrack listing .*ct\.txt: not a conntrack -L listing: no line is a TCP\/UDP\/SCTP flow \(the first reads "hello"\)/],
  ]
  for (const [argv, re] of cases) {
    const r = await cli(argv)
    t.equal(r.code, 1, String(re))
    t.match(r.err, re)
    oneLineError(t, r.err, String(re))
  }
})

t.test('every error is one line naming the file and the problem', async (t) => {
  const two = list([
    makeService('ns', 'a', { clusterIP: '172.30.0.5', externalIPs: ['192.0.2.10'], ports: [port('http', 80)] }),
    makeService('ns', 'b', { clusterIP: '172.30.0.6', externalIPs: ['192.0.2.10'], ports: [port('http', 80)] }),
  ])
  const cases: [string, string, RegExp][] = [
    ['bad.yaml', 'kind: List\nitems:\n  - kind: Service\n   bad: [\n', /cluster file .*bad\.yaml is not valid YAML: bad indentation of a sequence entry \(line 4, column 4\)$/m],
    ['ctrl.json', '{"kind": "List", "items": [ {"a": \u0001 } ]}', /cluster file .*ctrl\.json is not valid JSON: unexpected character U\+0001$/m],
    ['comma.json', '{"kind": "List", "items": [ {"a": 1, } ]}', /is not valid JSON: Expected double-quoted property name at line 1, column 38$/m],
    ['nulls.yaml', 'items: [null, {kind: Service, metadata: null}]\n', /cluster file .*nulls\.yaml holds an invalid object: Service <no namespace>\/<no name>: metadata must be an object, got null/],
    ['clash.json', JSON.stringify(two), /clash\.json: Services ns\/a and ns\/b both use 192\.0\.2\.10:80\/TCP \(external IP of both\)/],
  ]
  for (const [name, content, re] of cases) {
    const r = await cli(['dump', '--cluster', file(name, content), ...NODE, '--format', 'iptables-save', '--mode', 'native'])
    t.equal(r.code, 1, name)
    t.match(r.err, re, name)
    oneLineError(t, r.err, name)
  }
  // The same clash in doctor and in run: both Services named, not the dataplane's ids.
  const clash = file('clash2.json', JSON.stringify(two))
  const d = await cli(['doctor', '--cluster', clash, '--node-name', 'node-a', '--node-ip', '192.168.0.2'])
  t.match(d.err, /diagnosing .*clash2\.json failed: Services ns\/a and ns\/b both use 192\.0\.2\.10:80\/TCP/)
  oneLineError(t, d.err, 'doctor clash')
  const r = await cli(['run', '--cluster', clash, '--node-name', 'node-a', '--node-ip', '192.168.0.2', '--once'])
  t.equal(r.code, 1)
  t.match(r.err, /ERROR programming ns\/b failed \(retried at the next sync\): Services ns\/a and ns\/b both use 192\.0\.2\.10:80\/TCP/)
  t.notMatch(r.err, /service \d+:|frontends\[/)
  const missing = await cli(['dump', '--cluster', path.join(dir, 'nope.json'), ...NODE])
  t.match(missing.err, /cannot read cluster file .*nope\.json: no such file/)
})

t.test('pcap errors name the file that is wrong', async (t) => {
  const svcs = file('pcap-svcs.json', list([web, webSlice]))
  const capture = path.join(dir, 'empty.pcap')
  fs.writeFileSync(capture, new PcapWriter(1).bytes())
  const cases: [string[], RegExp][] = [
    [['--in', capture, '--out', path.join(dir, 'no-such-dir', 'out.pcap')], /cannot write output capture .*no-such-dir\/out\.pcap: no such file or directory/],
    [['--in', path.join(dir, 'nope.pcap'), '--out', path.join(dir, 'out.pcap')], /cannot read capture .*nope\.pcap: no such file or directory/],
    [['--in', '/dev/zero', '--out', path.join(dir, 'out.pcap')], /capture \/dev\/zero: not a pcap or pcapng file \(magic 0x00000000\)/],
    [['--in', svcs, '--out', path.join(dir, 'out.pcap')], /capture .*pcap-svcs\.json: not a pcap or pcapng file/],
    [['--in', capture, '--out', path.join(dir, 'out.pcap'), '--max-input-bytes', '10'], /larger than the 10 bytes input limit; --max-input-bytes raises it/],
  ]
  for (const [argv, re] of cases) {
    const r = await cli(['pcap', '--cluster', svcs, ...NODE, ...argv])
    t.equal(r.code, 1, String(re))
    t.match(r.err, re)
    oneLineError(t, r.err, String(re))
  }
  // The limit above was hit by the cluster file first; the capture has its own check.
  const r = await cli(['pcap', '--cluster', svcs, ...NODE, '--in', capture, '--out', path.join(dir, 'out.pcap')])
  t.equal(r.code, 0, r.err)
})

t.test('flag values in CLI words with the usage exit status', async (t) => {
  const svcs = file('flags.json', list([web, webSlice]))
  const cases: [string[], RegExp][] = [
    [['--node-ip', ''], /--node-ip: needs a value, got ""/],
    [['--node-ip', '192.168.0.2,'], /--node-ip: has an empty item/],
    [['--pod-cidr', '10.244.0.0'], /--pod-cidr: "10\.244\.0\.0" is not a CIDR/],
    [['--pod-cidr', '10.244.0.0/40'], /--pod-cidr: "10\.244\.0\.0\/40" is not a CIDR/],
    [['--node-name', ' '], /--node-name: must not be empty/],
  ]
  for (const [flags, re] of cases) {
    const r = await cli(['explain', '--cluster', svcs, '--src', '10.244.0.9', '--dst', '172.30.0.5:80', ...flags, ...(flags[0] === '--node-ip' ? [] : ['--node-ip', '192.168.0.2'])])
    t.equal(r.code, 2, flags.join(' '))
    t.match(r.err, re)
    t.notMatch(r.err, /Proxier options/, 'CLI words, not library words')
  }
  const upper = await cli(['explain', '--cluster', svcs, ...NODE, '--src', '10.244.0.9', '--dst', '172.30.0.5:80', '--proto', 'TCP', '--mode', 'NATIVE', '--json'])
  t.equal(upper.code, 0, upper.err)
  t.match(JSON.parse(upper.out).native.result, { action: 'dnat' }, '--proto TCP and --mode NATIVE work')
})

t.test('explain says which node it decided on; run says it models and observes', async (t) => {
  const r = await cli(['explain', '--cluster', path.join(FIXTURES, 'cluster.json'), ...NODE, '--src', '10.244.0.9', '--dst', '172.30.10.5:80'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /\non node node-a, addresses 192\.168\.0\.2, pod CIDRs 10\.244\.0\.0\/16\n/)
  const j = await cli(['explain', '--cluster', path.join(FIXTURES, 'cluster.json'), '--src', '10.244.0.9', '--dst', '172.30.10.5:80', '--node-ip', '192.168.0.2', '--json'])
  t.match(JSON.parse(j.out).node, { name: os.hostname(), ips: ['192.168.0.2'], assumed: ['name (the host name; --node-name)'] })
  const help = await cli(['run', '--help'])
  t.match(help.out, /forwards no traffic/)
  t.match(help.out, /does not replace kube-proxy/)
  t.notMatch(help.out, /run as kube-proxy/)
  t.match(help.out, /--health-check-bind-address IP[\s\S]*every\s+address with --apply[\s\S]*loopback otherwise/)
})
