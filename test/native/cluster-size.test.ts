// Clusters past the old fixed 1,024-service maps (issue 13): the native mode sizes its maps from
// the cluster and grows them, up to an explicit capacity when one is given; past it, a sync
// fails with code FULL and route() says which Service is not programmed. Library and CLI.
import t, { type Test } from 'tap'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { errorCode, Proxier, type ProxierOptions } from '../../lib/index.js'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'
import { clusterIP, clusterList, endpointIPs } from './helpers/cluster.js'

const NODE: ProxierOptions = { mode: 'native', nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/16'], seed: 1 }
const CLI_NODE = ['--node-name', 'node-a', '--node-ip', '192.168.0.2', '--pod-cidr', '10.0.0.0/16', '--seed', '1']

const toService = (i: number, sport = 40000) => ({ src: '10.0.0.5', sport, dst: clusterIP(i), dport: 80, protocol: 'TCP' as const, hook: 'prerouting' as const })

function routesTo(t: Test, p: Proxier, i: number): void {
  const r = p.route(toService(i))
  t.ok(r.action === 'dnat' && r.servicePort === `load/svc-${i}:http` && endpointIPs(i).map((ip) => `${ip}:8080`).includes(r.endpoint), `svc-${i} is DNATed to one of its endpoints (${JSON.stringify(r)})`)
}

t.test('library: 1,100 Services with the default capacity are all programmed', async (t) => {
  const p = new Proxier(NODE)
  p.applyList(clusterList(1100))
  const s = p.sync()
  t.strictSame(s.errors, [])
  t.equal(s.servicePorts.added, 1100)
  const dp = p.dataplane!
  t.equal(dp.map('services').size, 1100)
  t.ok(dp.map('services').capacity >= 1100, 'the services map grew past its initial 1,024')
  let routed = 0
  for (let i = 0; i < 1100; i++) if (p.route(toService(i)).action === 'dnat') routed++
  t.equal(routed, 1100, 'every Service routes')
})

t.test('library: growth keeps established flows and their backends', async (t) => {
  const p = new Proxier(NODE)
  p.applyList(clusterList(1000))
  p.sync()
  const before = Array.from({ length: 50 }, (_, i) => p.route(toService(i, 50000)))
  const ct = p.dataplane!.map('conntrack').size
  p.applyList(clusterList(4000, 1000)) // services, frontends and revnat grow
  t.strictSame(p.sync().errors, [])
  t.ok(p.dataplane!.map('frontends').capacity >= 5000)
  t.equal(p.dataplane!.map('conntrack').size, ct, 'conntrack untouched by growth')
  const after = Array.from({ length: 50 }, (_, i) => p.route(toService(i, 50000)))
  t.strictSame(after, before, 'the same flows keep the same endpoints')
  const e = p.explain(toService(7, 50000))
  t.match(e.text, /established flow/)
  routesTo(t, p, 4999)
})

t.test('library: past an explicit capacity the sync fails with FULL and route() says so', async (t) => {
  const p = new Proxier({ ...NODE, native: { capacity: { services: 1000 } } })
  p.applyList(clusterList(1100))
  let caught: unknown
  try {
    p.sync()
  } catch (e) {
    caught = e
  }
  t.ok(caught instanceof RangeError, 'a RangeError')
  t.equal(errorCode(caught), 'FULL')
  const err = caught as Error & { services: string[] }
  t.match(err.message, /100 Service\(s\) could not be programmed, load\/svc-1000 first \(services map is full \(capacity 1000\); raise capacity\.services\)/)
  t.notMatch(err.message, /service \d+:/, 'no internal ids')
  t.equal(err.services.length, 100)
  t.equal(p.dataplane!.map('services').size, 1000)
  routesTo(t, p, 0)
  routesTo(t, p, 999)
  const left = p.route(toService(1099))
  t.strictSame(left, { action: 'drop', servicePort: 'load/svc-1099:http', reason: 'not-programmed' }, 'not "not service traffic"')
  t.match(p.explain(toService(1099)).text, /load\/svc-1099:http is not programmed: services map is full \(capacity 1000\)/)
  t.strictSame(p.route({ ...toService(1099), dport: 81 }), { action: 'accept' }, 'another port is still not service traffic')

  // Room made: the left-out Services are retried and programmed.
  for (const item of clusterList(100).items) if ((item as { kind: string }).kind === 'Service') p.deleteService(item)
  t.strictSame(p.sync().errors, [])
  routesTo(t, p, 1099)
  t.equal(p.route(toService(5)).action, 'accept', 'a deleted Service is gone')
})

t.test('library: 70,000 Services (past Cilium\'s 65,536)', async (t) => {
  const p = new Proxier(NODE)
  p.applyList(clusterList(70000))
  t.strictSame(p.sync().errors, [])
  t.equal(p.dataplane!.map('services').size, 70000)
  for (const i of [0, 1023, 1024, 65535, 65536, 69999]) routesTo(t, p, i)
})

async function cli(...argv: string[]) {
  const io = bufferIO()
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

t.test('CLI: run --once and dump on 1,100 and 70,000 Services; --capacity', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-size-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const n of [1100, 70000]) {
    const file = path.join(dir, `cluster-${n}.json`)
    fs.writeFileSync(file, JSON.stringify(clusterList(n)))
    const once = await cli('run', '--cluster', file, ...CLI_NODE, '--once', '--json')
    t.equal(once.code, 0, `run --once, ${n} Services: ${once.err}`)
    t.match(JSON.parse(once.out), { mode: 'native', servicePorts: n })
    const dump = await cli('dump', '--cluster', file, ...CLI_NODE)
    t.equal(dump.code, 0, `dump, ${n} Services: ${dump.err}`)
    t.equal(dump.out.match(/^TCP {2}/gm)?.length, n, `dump lists ${n} virtual servers`)
    t.match(dump.out, new RegExp(`TCP {2}${clusterIP(n - 1).replace(/\./g, '\\.')}:80 random`))
  }
  const small = path.join(dir, 'cluster-1100.json')
  const full = await cli('run', '--cluster', small, ...CLI_NODE, '--once', '--capacity', '1000')
  t.equal(full.code, 1)
  t.match(full.err, /100 Service\(s\) could not be programmed, load\/svc-1000 first/)
  const perMap = await cli('dump', '--cluster', small, ...CLI_NODE, '--capacity', 'services=2000,backends=2000')
  t.equal(perMap.code, 1, 'backends: 2,200 endpoints do not fit 2,000')
  t.match(perMap.err, /backends map is full \(capacity 2000\); raise capacity\.backends/)
  t.equal((await cli('dump', '--cluster', small, ...CLI_NODE, '--capacity', 'services=2000,backends=3000')).code, 0)
  for (const [value, message] of [['0', /--capacity: the services capacity must be an integer 1\.\.33554432, got "0"/], ['servces=5', /--capacity: map: unknown option "servces"; did you mean "services"\?/], ['services', /--capacity: expected N or MAP=N/]] as const) {
    const r = await cli('dump', '--cluster', small, ...CLI_NODE, '--capacity', value)
    t.equal(r.code, 2, `--capacity ${value}: usage`)
    t.match(r.err, message)
  }
})
