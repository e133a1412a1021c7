// kube-proxy's NewFakeProxier for the nftables tests (pkg/proxy/nftables/proxier_test.go):
// node "test-node" at 192.168.0.2, pod CIDR 10.0.0.0/8, service CIDR 172.30.0.0/16,
// --nodeport-addresses 192.168.0.2/32 and 2001:db8::1/128, mark "0x4000", and the objects of
// TestOverallNFTablesRules.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Proxier, type ProxierOptions } from '../../lib/modes/index.js'
import { kubeProxyOverallObjects, testNodeIP, testNodeIPv6, testNodeName, type EP } from '../fixtures/objects'

export const p80 = [{ name: 'p80', port: 80 }]
export const ep = (ip: string, node?: string, cond: Partial<EP> = {}): EP => ({ ip, node, ...cond })

export const fakeOptions: ProxierOptions = {
  mode: 'nftables', nodeName: testNodeName, nodeIPs: [testNodeIP], podCIDRs: ['10.0.0.0/8'],
  serviceCIDRs: ['172.30.0.0/16'], nodePortAddresses: [`${testNodeIP}/32`, `${testNodeIPv6}/128`],
  nftables: { masqueradeMark: '0x4000' }, seed: 1,
}

export const overallObjects = kubeProxyOverallObjects

/** A fake proxier (options on top of kube-proxy's), `objects` applied and synced. */
export function fakeProxier(objects: unknown[] = [], extra: Partial<ProxierOptions> = {}): Proxier {
  const p = new Proxier({ ...fakeOptions, ...extra })
  p.applyList(objects)
  const s = p.sync()
  if (s.errors.length) throw s.errors[0]!.error
  const err = p.nftables?.lastSyncError
  if (err !== undefined) throw err
  return p
}

export const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8')
