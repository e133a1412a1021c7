// Native mode's node side without a node: the TUN binding's input checks (a /dev/null fd
// stands in for the device, so nothing is created), the pump's options, the nft table text
// (marks, never NAT), the frontends set, the NAT port range, and NodeApplier's refusals that
// come before anything is touched. The real device is exercised by apply-native.test.ts (root).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { nativeBinding } from '../../lib/dataplane/native.js'
import { Proxier } from '../../lib/modes/index.js'
import { frontendElements, nativeTableText, natPortRangeAbove } from '../../lib/node/native-node.js'
import { NodeApplier } from '../../lib/node/node-applier.js'
import { TunDevice } from '../../lib/node/tun.js'
import { TunPump } from '../../lib/node/tun-pump.js'
import { makeService, makeSlice, port } from '../fixtures/objects'

interface RawTun {
  read(...args: unknown[]): number
  write(...args: unknown[]): number
  watch(cb: unknown): void
  unwatch(): void
  stats(): Record<string, number>
  close(): void
}
const binding = nativeBinding() as unknown as {
  tunOpen(name: unknown): Record<string, unknown>
  tunSetPersist(fd: unknown, on: unknown): number
  TunDevice: new (fd: unknown) => RawTun
}

t.test('TunDevice.open: a bad name is a TypeError naming the rule, before any system call', async (t) => {
  for (const name of ['', 'a'.repeat(16), 'a/b', 'eth 0', 'a.b', 'x:1', 7, undefined]) {
    t.throws(() => TunDevice.open(name as string), { name: 'TypeError', code: 'INVALID', message: /TUN device name must be 1-15 characters/ }, String(name))
  }
  t.match(binding.tunOpen('a/b'), { errno: 22, message: /bad device name/ }, 'the addon refuses it too, with an errno, not a throw')
  t.throws(() => binding.tunOpen(5), { name: 'TypeError', message: /name must be a string/ })
})

t.test('the addon TunDevice checks its arrays and counts; a closed device is an error, never a crash', async (t) => {
  const fd = openSync('/dev/null', 'r+')
  const dev = new binding.TunDevice(fd)
  const buf = new Uint8Array(4096)
  const offs = new Uint32Array(4)
  const lens = new Uint32Array(4)
  t.throws(() => dev.read(new Uint16Array(4), offs, lens, 4, 1500), { name: 'TypeError', message: /buffer has the wrong array type/ })
  t.throws(() => dev.read(buf, new Int32Array(4), lens, 4, 1500), { name: 'TypeError', message: /offsets has the wrong array type/ })
  t.throws(() => dev.read(buf, offs, lens, 5, 1500), { name: 'RangeError', message: /maxPackets exceeds/ })
  t.throws(() => dev.read(buf, offs, lens, -1, 1500), { name: 'RangeError', message: /maxPackets must be an integer/ })
  t.equal(dev.read(buf, offs, lens, 4, 1500), 0, '/dev/null: end of file, no packet')
  // Packet 0 passes, 1 is forwarded, 2 is a reject without a reply, 3 is dropped.
  offs.set([0, 100, 200, 300])
  lens.set([20, 20, 20, 20])
  const verdicts = new Uint8Array([0, 1, 3, 4])
  t.equal(dev.write(buf, offs, lens, verdicts, 4, null, null, null), 2, 'pass and forward are written; reject without reply and drop are not')
  lens[1] = 5000
  t.equal(dev.write(buf, offs, lens, verdicts, 4, null, null, null), 1, 'a packet beyond the buffer is not written')
  t.throws(() => dev.write(buf, offs, lens, verdicts, 5, null, null, null), { name: 'RangeError', message: /count exceeds the arrays/ })
  const replies = new Uint8Array(64)
  t.equal(dev.write(buf, offs, lens, new Uint8Array([3, 3, 3, 3]), 4, replies, new Uint32Array([0, 0, 0, 0]), new Uint32Array([0, 28, 0, 0])), 1, 'a reject with a reply writes the reply')
  t.match(dev.stats(), { packetsWritten: 4, writeErrors: 0 })
  t.throws(() => dev.watch('no'), { name: 'TypeError', message: /callback must be a function/ })
  dev.close()
  dev.close()
  t.throws(() => dev.read(buf, offs, lens, 4, 1500), { message: /closed/ })
  t.throws(() => dev.write(buf, offs, lens, verdicts, 4, null, null, null), { message: /closed/ })
  t.throws(() => closeSync(fd), { code: 'EBADF' }, 'close() closed the fd')
})

t.test('tunSetPersist: an fd that is no TUN gives its errno, bad arguments a TypeError', async (t) => {
  const fd = openSync('/dev/null', 'r+')
  t.equal(binding.tunSetPersist(fd, true), 25, 'ENOTTY: /dev/null takes no TUNSETPERSIST')
  closeSync(fd)
  t.throws(() => binding.tunSetPersist('3', true), { name: 'TypeError', message: /tunSetPersist\(fd, on\)/ })
  t.throws(() => binding.tunSetPersist(3, 1), { name: 'TypeError' })
})

t.test('TunPump: options out of range are RangeErrors naming the field', async (t) => {
  const p = new Proxier({ mode: 'native', nodeName: 'n', nodeIPs: ['10.0.0.1'] })
  t.teardown(() => p.dataplane?.destroy())
  for (const [field, value] of [['batch', 0], ['batch', 5000], ['mtu', 100], ['batchesPerEvent', 1.5]] as const) {
    t.throws(() => new TunPump(p.dataplane!, {} as TunDevice, { [field]: value }), { name: 'RangeError', code: 'INVALID', message: new RegExp(`options\\.${field} must be an integer`) })
  }
  t.throws(() => new TunPump(p.dataplane!, {} as TunDevice, { clock: 5 as never }), { name: 'TypeError', code: 'INVALID', message: /options\.clock must be a function/ })
})

t.test('the nft table marks packets and never translates them', async (t) => {
  const text = nativeTableText('svcp0', ['10.96.0.10 . tcp . 80'])
  t.match(text, /^add table ip svcplane-native\ndelete table ip svcplane-native\n/, 'replaces a table a previous run left, in the same transaction')
  t.match(text, /iifname "svcp0" ct mark set ct mark \| 0x00200000 return/)
  t.match(text, /ct direction reply ct mark & 0x00200000 == 0x00200000 meta mark set meta mark \| 0x00200000 return/)
  t.match(text, /ip daddr \. meta l4proto \. th dport @frontends meta mark set/)
  t.match(text, /elements = \{ 10\.96\.0\.10 \. tcp \. 80 \}/)
  t.notMatch(text, /\b(dnat|snat|masquerade|redirect)\b/)
  t.notMatch(nativeTableText('svcp0', []), /elements/, 'an empty set has no elements line')
})

t.test('frontendElements: ClusterIPs, external IPs and NodePorts on the node IPs (not loopback), per protocol', async (t) => {
  const p = new Proxier({ mode: 'native', nodeName: 'n', nodeIPs: ['10.0.0.1'], podCIDRs: ['10.244.0.0/16'] })
  t.teardown(() => p.dataplane?.destroy())
  p.applyService(makeService('ns', 'web', {
    type: 'NodePort', clusterIP: '10.96.0.10', externalIPs: ['192.0.2.7'],
    ports: [port('http', 80, { targetPort: 8080, nodePort: 30080 }), port('dns', 53, { protocol: 'UDP', targetPort: 5353, nodePort: 30053 })],
  }))
  p.applyEndpointSlice(makeSlice('ns', 'web', 1, [{ ip: '10.244.0.11', node: 'n' }], [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }]))
  p.sync()
  t.same(frontendElements(p), [
    '10.0.0.1 . tcp . 30080', '10.0.0.1 . udp . 30053', '10.96.0.10 . tcp . 80', '10.96.0.10 . udp . 53', '192.0.2.7 . tcp . 80', '192.0.2.7 . udp . 53',
  ])
})

t.test('natPortRangeAbove: NAT ports above the kernel ephemeral range, when there is room', async (t) => {
  t.same(natPortRangeAbove('32768\t60999\n'), [61000, 65535])
  t.equal(natPortRangeAbove('1024 65535'), undefined, 'no room: the dataplane default stays')
  t.equal(natPortRangeAbove('garbage'), undefined)
})

t.test('NodeApplier native: an IPv6 node is refused before anything is installed', async (t) => {
  const p = new Proxier({ mode: 'native', nodeName: 'n', nodeIPs: ['fd00::1'] })
  t.teardown(() => p.dataplane?.destroy())
  await t.rejects(NodeApplier.create(p, { sysctls: false }), { name: 'RangeError', code: 'INVALID', message: /moves IPv4 only/ })
})

// Root only: a private mount namespace whose /dev/net is an empty tmpfs, and a private network
// namespace (both gone when the command exits), so nothing of the machine is touched.
const isolated = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['-m', '-n', '--propagation', 'private', 'true']).status === 0
t.test('without /dev/net/tun: APPLY_FAILED saying so, and run --apply exits with it, installing nothing', { skip: isolated ? false : 'needs root and unshare' }, async (t) => {
  const inside = (script: string) =>
    spawnSync('unshare', ['-m', '-n', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none /dev/net && ${script}`], { encoding: 'utf8', cwd: join(__dirname, '..', '..'), timeout: 60_000 })
  const open = inside(`${process.execPath} -e "try { require('./dist/node/tun.js').TunDevice.open('svcp0') } catch (e) { console.log(e.code + ' ' + e.message) }"`)
  t.match(open.stdout, /^APPLY_FAILED cannot open TUN device svcp0: open \/dev\/net\/tun: No such file or directory \(no \/dev\/net\/tun: load the tun module/, open.stderr)
  const cluster = join(__dirname, '..', 'fixtures', 'cluster.json')
  const run = inside(`${process.execPath} bin/svcplane.js run --cluster ${cluster} --proxy-mode native --apply --node-name node-a --node-ip 192.168.0.2 --metrics-bind-address '' --healthz-bind-address '' ; echo "exit $?"; ip -4 rule show; nft list tables`)
  t.match(run.stderr, /--apply: cannot open TUN device svcp0: .*No such file or directory/, 'the reason, in the CLI error')
  t.match(run.stdout, /exit 1\n/, 'exit status 1, no crash')
  t.notMatch(run.stdout, /21334|svcplane-native/, 'no rule and no table were installed')
})
