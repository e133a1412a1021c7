// runPcap: a capture through a native-mode Proxier, written back out. The output is checked
// with the tests' own checksums and, where tshark is installed, by tshark with checksum
// validation on; masquerade decisions are compared with Proxier.route().
import t from 'tap'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Proxier } from '../../lib/modes/index.js'
import { readCapture, runPcap } from '../../lib/pcap/index.js'
import { addrBytes, build, checksumProblems, layout, pcapFile, pcapngFile, portAt, type PacketSpec } from './builder.js'

const cluster = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'cluster.json'), 'utf8'))
const NODE = '192.168.0.2'
const opts = { mode: 'native' as const, nodeName: 'node-a', nodeIPs: [NODE], podCIDRs: ['10.244.0.0/16'], seed: 5 }

function proxier(): Proxier {
  const p = new Proxier(opts)
  p.applyList(cluster)
  p.sync()
  return p
}

function tshark(): string | undefined {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' })
    return 'tshark'
  } catch {
    return undefined
  }
}

const flows: PacketSpec[] = [
  { src: '203.0.113.5', dst: '172.30.0.10', proto: 'UDP', sport: 5353, dport: 53, payload: 29 }, // cluster IP from outside: masquerade
  { src: '10.244.0.9', dst: '172.30.0.1', proto: 'TCP', sport: 41000, dport: 443, payload: 0 }, // from a pod: kept
  { src: '10.244.0.9', dst: '172.30.0.10', proto: 'TCP', sport: 41001, dport: 53, payload: 12 },
  { src: '198.51.100.7', dst: NODE, proto: 'TCP', sport: 50000, dport: 30379 }, // NodePort, Cluster policy: masquerade
  { src: '198.51.100.7', dst: '172.30.10.5', proto: 'TCP', sport: 50001, dport: 80 }, // LB VIP? (cluster IP of a Local service)
  { src: '198.51.100.7', dst: '8.8.8.8', proto: 'UDP', sport: 1, dport: 53 }, // not service traffic
]

t.test('runPcap through a Proxier: DNAT, masquerade as route() decides, replies, checksums (and tshark)', async (t) => {
  const frames = flows.map((f) => build({ ...f, ethernet: true }).bytes)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svcplane-pcap-'))
  const inFile = path.join(dir, 'in.pcap')
  const outFile = path.join(dir, 'out.pcap')
  fs.writeFileSync(inFile, pcapFile(frames))
  const p = proxier()
  const summary = runPcap({ proxier: p, in: inFile, out: outFile })
  t.equal(summary.packets, flows.length)
  t.equal(summary.written, flows.length)
  t.equal(summary.verdicts.forward, flows.length - 1)
  t.equal(summary.verdicts.pass, 1)

  const out = readCapture(fs.readFileSync(outFile))
  t.equal(out.count, flows.length)
  const reference = proxier()
  const replies: Uint8Array[] = []
  for (let i = 0; i < flows.length; i++) {
    const f = flows[i]
    const frame = out.data.subarray(out.offsets[i], out.offsets[i] + out.lengths[i])
    t.strictSame(checksumProblems(frame, 14), [], `packet ${i} checksums`)
    const L = layout(frame, 14)
    const src = [...frame.subarray(L.l3 + 12, L.l3 + 16)].join('.')
    const dst = [...frame.subarray(L.l3 + 16, L.l3 + 20)].join('.')
    const route = reference.route({ src: f.src, sport: f.sport!, dst: f.dst, dport: f.dport!, protocol: f.proto as 'TCP' | 'UDP', now: 1 })
    if (route.action !== 'dnat') {
      t.equal(dst, f.dst, `packet ${i} untouched`)
      continue
    }
    const [epIP, epPort] = route.endpoint.split(':')
    t.equal(route.masquerade, src === NODE, `packet ${i}: masquerade ${route.masquerade} as route() says`)
    if (route.masquerade === false) t.equal(src, f.src)
    t.ok(dst.startsWith('10.244.') || dst === NODE, `packet ${i} goes to an endpoint (${dst})`)
    t.equal(portAt(frame, L.l4 + 2), Number(epPort) || portAt(frame, L.l4 + 2))
    void epIP
    // The endpoint's answer.
    replies.push(build({ src: dst, dst: src, proto: f.proto, sport: portAt(frame, L.l4 + 2), dport: portAt(frame, L.l4), flags: 0x12, payload: 2, ethernet: true }).bytes)
  }
  const back = runPcap({ dataplane: p.dataplane, in: pcapFile(replies), out: path.join(dir, 'back.pcap') })
  t.equal(back.verdicts.reply, replies.length, 'every answer is reverse-NATed')
  const bc = readCapture(back.output)
  let k = 0
  for (let i = 0; i < flows.length; i++) {
    if (flows[i].dst === '8.8.8.8') continue
    const frame = bc.data.subarray(bc.offsets[k], bc.offsets[k] + bc.lengths[k])
    k++
    t.strictSame([...frame.subarray(26, 30)], addrBytes(flows[i].dst), `answer ${i} comes from the service address`)
    t.strictSame([...frame.subarray(30, 34)], addrBytes(flows[i].src), `answer ${i} goes to the client`)
    t.equal(portAt(frame, 36), flows[i].sport)
    t.strictSame(checksumProblems(frame, 14), [])
  }

  const ts = tshark()
  if (!ts) {
    t.skip('tshark is not installed (apt-get install tshark): output not checked by tshark', () => {})
    return
  }
  for (const file of [outFile, path.join(dir, 'back.pcap')]) {
    const text = execFileSync(ts, ['-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const statuses = text.split(/\s+/).filter(Boolean)
    t.ok(statuses.length >= flows.length * 2 - 2, `tshark checked ${statuses.length} checksums in ${path.basename(file)}`)
    t.strictSame(statuses.filter((s) => s !== '1'), [], 'tshark: every checksum good (status 1)')
  }
})

t.test('pcapng in, raw IP link type, rejects replaced by their replies, drops left out', async (t) => {
  const p = new Proxier(opts)
  p.applyList(cluster)
  p.applyService({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'x', name: 'empty' }, spec: { clusterIP: '172.30.99.1', ports: [{ port: 80, protocol: 'TCP' }] } })
  p.sync()
  const frames = [
    build({ src: '10.244.0.9', dst: '172.30.99.1', sport: 1234 }).bytes, // no endpoints: REJECT
    build({ src: '10.244.0.9', dst: '172.30.0.1', dport: 443, sport: 1235 }).bytes,
    build({ src: '10.244.0.9', dst: '172.30.0.1', dport: 443 }).bytes.subarray(0, 30), // truncated: dropped
  ]
  const s = runPcap({ proxier: p, in: pcapngFile(frames, 101) })
  t.equal(s.format, 'pcapng')
  t.equal(s.linkType, 101)
  t.strictSame([s.verdicts.reject, s.verdicts.forward, s.verdicts.drop], [1, 1, 1])
  t.equal(s.replies, 1)
  t.equal(s.written, 2)
  const out = readCapture(s.output)
  const reply = out.data.subarray(out.offsets[0], out.offsets[0] + out.lengths[0])
  t.equal(reply[9], 1, 'an ICMP port unreachable in place of the rejected packet')
  t.strictSame(checksumProblems(reply, 0), [])
  t.throws(() => runPcap({ proxier: p, in: new Uint8Array([1, 2, 3, 4, 5]) }), /not a pcap or pcapng file/)
  t.throws(() => runPcap({ proxier: p, in: pcapFile([frames[1]], 113) }), /link type 113 is not supported/)
  t.throws(() => runPcap({ proxier: new Proxier({ ...opts, mode: 'iptables' as never }) as never, in: pcapFile([]) }))
})
