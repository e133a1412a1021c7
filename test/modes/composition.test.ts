// The composition root: the Proxier builds the mode its options name, mode options sit under
// the mode's section, unknown or moved keys fail loudly, and inspect() tells the modes apart.
import t from 'tap'
import { Proxier, PROXY_MODE_NAMES, type ProxierOptions } from '../../lib/modes/index.js'

const base: ProxierOptions = { mode: 'native', nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.0.0/8'], seed: 1 }

const svc = {
  apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'ns', name: 'web' },
  spec: { clusterIP: '172.30.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
}
const slice = {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { namespace: 'ns', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: [{ addresses: ['10.1.0.5'], conditions: { ready: true } }],
}

t.test('every mode of the table routes the same packet through the Proxier', async (t) => {
  t.same(PROXY_MODE_NAMES, ['native', 'iptables', 'nftables', 'ipvs', 'userspace'])
  for (const mode of PROXY_MODE_NAMES) {
    const p = new Proxier({ ...base, mode })
    p.applyList([svc, slice])
    t.same(p.sync().errors, [], mode)
    t.match(p.route({ src: '10.0.0.2', sport: 40000, dst: '172.30.0.10', dport: 80, protocol: 'TCP' }),
      { action: 'dnat', servicePort: 'ns/web:http', endpoint: '10.1.0.5:8080' }, mode)
    t.equal(p.inspect().mode, mode, `${mode}: inspect() names the mode`)
  }
})

t.test('inspect() is typed per mode; the shorthands follow it', async (t) => {
  const native = new Proxier(base)
  const v = native.inspect()
  if (v.mode !== 'native') throw new Error('expected the native view')
  t.equal(v.dataplane, native.dataplane)
  t.equal(native.iptables, undefined)
  const ipt = new Proxier({ ...base, mode: 'iptables' })
  const w = ipt.inspect()
  if (w.mode !== 'iptables') throw new Error('expected the iptables view')
  t.equal(w.iptables, ipt.iptables)
  t.equal(ipt.dataplane, undefined)
})

t.test('mode options sit under the mode; unknown and moved keys are errors naming them', async (t) => {
  const cases: Array<[string, object, RegExp]> = [
    ['misspelt top-level key', { podCIDR: ['10.0.0.0/8'] }, /unknown option "podCIDR"; did you mean "podCIDRs"\?/],
    ['moved key', { masqueradeBit: 10 }, /unknown option "masqueradeBit"; it moved to iptables\.masqueradeBit/],
    ['moved native key', { scheduler: 'rr' }, /it moved to native\.scheduler/],
    ['misspelt native key', { native: { capacty: {} } }, /native: unknown option "capacty"; did you mean "capacity"\?/],
    ['misspelt iptables key', { iptables: { nfact: false } }, /iptables: unknown option "nfact"; did you mean "nfacct"\?/],
    ['bad scheduler', { native: { scheduler: 'fastest' } }, /native\.scheduler must be one of/],
    ['bad bit', { iptables: { masqueradeBit: 40n } }, /iptables\.masqueradeBit must be an integer 0\.\.31, got 40n/],
    ['unknown mode', { mode: 'ebpf' }, /mode must be one of "native", "iptables", "nftables", "ipvs", "userspace", got "ebpf"/],
  ]
  for (const [name, extra, message] of cases) {
    t.throws(() => new Proxier({ ...base, ...extra } as ProxierOptions), message, name)
  }
  const err = t.throws(() => new Proxier({ ...base, capacty: 1 } as unknown as ProxierOptions)) as { code?: string }
  t.equal(err.code, 'INVALID')
  // The iptables section is honoured in every mode: iptablesRestore() renders it.
  const p = new Proxier({ ...base, iptables: { masqueradeBit: 10, nfacct: false } })
  p.applyList([svc, slice])
  p.sync()
  t.match(p.iptablesRestore(), /--or-mark 0x0*400\n/)
  t.notMatch(p.iptablesRestore(), /nfacct/)
})

t.test('serviceCIDRs and nodePortAddresses are checked and canonicalised', async (t) => {
  const p = new Proxier({ ...base, serviceCIDRs: ['172.30.0.1/16'], nodePortAddresses: ['primary', '192.168.0.0/24'] })
  t.same(p.options.serviceCIDRs, ['172.30.0.0/16'])
  t.same(p.options.nodePortAddresses, ['primary', '192.168.0.0/24'])
  t.throws(() => new Proxier({ ...base, serviceCIDRs: ['primary'] }), /serviceCIDRs\[0\] must be a CIDR/)
  t.throws(() => new Proxier({ ...base, nodePortAddresses: ['192.168.0.2'] }), /nodePortAddresses\[0\] must be a CIDR or "primary"/)
})
