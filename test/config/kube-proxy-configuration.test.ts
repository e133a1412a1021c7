// KubeProxyConfiguration files read into Proxier options: kubeadm's default file, each mode's
// sections, JSON and YAML, and every kind of mistake named by its path.
import t from 'tap'
import { makeService, makeSlice, port } from '../fixtures/objects.js'
import { loadKubeProxyConfiguration, kubeProxyConfigurationOptions, nodePortAddressList, Proxier, type KubeProxyConfigurationOptions } from '../../lib/index.js'

// The file `kubeadm config print init-defaults --component-configs KubeProxyConfiguration` prints
// (kube-proxy's defaults written out), as clusters built with kubeadm carry it in a ConfigMap.
const KUBEADM_DEFAULT = `
apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: ""
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`

// kube-proxy's defaulted configuration (what `kube-proxy --write-config-to` writes on Linux).
const DEFAULTED = `
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clientConnection:
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 5
  burst: 10
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 15m0s
conntrack:
  maxPerCore: 32768
  min: 131072
  tcpCloseWaitTimeout: 1h0m0s
  tcpEstablishedTimeout: 24h0m0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 1s
  syncPeriod: 30s
ipvs:
  minSyncPeriod: 0s
  scheduler: ""
  syncPeriod: 30s
mode: iptables
oomScoreAdj: -999
`

const IPVS = `
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
hostnameOverride: node-a
bindAddress: 192.168.0.2
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
nodePortAddresses: [192.168.0.0/24, primary]
iptables:
  masqueradeAll: true
  minSyncPeriod: 1s
  syncPeriod: 30s
ipvs:
  scheduler: wrr
  strictARP: true
  tcpTimeout: 900s
  tcpFinTimeout: 2m
  udpTimeout: 5s
  excludeCIDRs: [10.0.5.0/24]
  syncPeriod: 1m0s
  minSyncPeriod: 2s
featureGates:
  SomeGate: true
`

const NFTABLES_JSON = JSON.stringify({
  apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
  kind: 'KubeProxyConfiguration',
  mode: 'nftables',
  iptables: { masqueradeAll: false, masqueradeBit: 14 },
  nftables: { masqueradeAll: true, masqueradeBit: 12, syncPeriod: '45s', minSyncPeriod: '500ms' },
  nodePortAddresses: ['all'],
  detectLocalMode: 'NodeCIDR',
  clusterCIDR: '10.244.0.0/16',
  conntrack: { tcpBeLiberal: true, udpTimeout: '30s', udpStreamTimeout: '2m0s' },
})

const reads: { name: string; text: string; want: KubeProxyConfigurationOptions }[] = [
  {
    name: "kubeadm's default file: iptables mode, nothing else changes but the kubeconfig",
    text: KUBEADM_DEFAULT,
    want: { proxier: { mode: 'iptables' }, run: { kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf' }, notActedOn: [] },
  },
  {
    name: "kube-proxy's defaulted file: conntrack table size and timeouts, sync timing, servers",
    text: DEFAULTED,
    want: {
      proxier: { mode: 'iptables', podCIDRs: ['10.244.0.0/16'], iptables: { masqueradeBit: 14 }, timeouts: { tcpEstablished: 86400, tcpCloseWait: 3600 }, native: { capacity: { conntrack: 131072 } } },
      run: { syncPeriod: 30, minSyncPeriod: 1, healthzBindAddress: '0.0.0.0:10256', metricsBindAddress: '127.0.0.1:10249', kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf' },
      notActedOn: ['oomScoreAdj', 'configSyncPeriod', 'clientConnection.contentType', 'clientConnection.qps', 'clientConnection.burst'],
    },
  },
  {
    name: 'ipvs mode: the ipvs section, its sync periods, the node, dual-stack cluster CIDRs',
    text: IPVS,
    want: {
      proxier: {
        mode: 'ipvs',
        nodeName: 'node-a',
        nodeIPs: ['192.168.0.2'],
        podCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
        nodePortAddresses: ['192.168.0.0/24', 'primary'],
        masqueradeAll: true,
        ipvs: { scheduler: 'wrr', strictARP: true, tcpTimeout: 900, tcpFinTimeout: 120, udpTimeout: 5, excludeCIDRs: ['10.0.5.0/24'] },
      },
      run: { syncPeriod: 60, minSyncPeriod: 2 },
      notActedOn: ['featureGates'],
    },
  },
  {
    name: 'nftables mode as JSON: nftables.masqueradeAll and sync periods, NodeCIDR detection not acted on',
    text: NFTABLES_JSON,
    want: {
      proxier: {
        mode: 'nftables',
        nodePortAddresses: [],
        masqueradeAll: true,
        iptables: { masqueradeBit: 14, conntrackTCPLiberal: true },
        nftables: { masqueradeBit: 12 },
        timeouts: { udp: 30, udpStream: 120 },
      },
      run: { syncPeriod: 45, minSyncPeriod: 0.5 },
      notActedOn: ['detectLocalMode'],
    },
  },
]

t.test('KubeProxyConfiguration files read into options', async (t) => {
  for (const c of reads) {
    const got = await loadKubeProxyConfiguration(c.text, { cpus: 2 })
    t.same(got, c.want, c.name)
  }
})

t.test('the options build a working Proxier in their mode', async (t) => {
  for (const c of reads) {
    const { proxier } = await loadKubeProxyConfiguration(c.text, { cpus: 2 })
    const p = new Proxier({ nodeName: 'node-a', nodeIPs: ['192.168.0.2'], seed: 1, ...proxier })
    t.equal(p.options.mode, proxier.mode, c.name)
    p.applyService(makeService('ns', 'web', { clusterIP: '172.30.0.10', ports: [port('http', 80)] }))
    p.applyEndpointSlice(makeSlice('ns', 'web', 1, ['10.244.1.5'], [{ name: 'http', port: 8080 }]))
    t.same(p.sync().errors, [], `${c.name}: syncs`)
    const r = p.route({ src: '10.244.9.9', sport: 40000, dst: '172.30.0.10', dport: 80, protocol: 'TCP', hook: 'prerouting' })
    t.match(r, { action: 'dnat', endpoint: '10.244.1.5:8080' }, `${c.name}: routes`)
    p.dataplane?.destroy()
  }
})

const head = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n'
const errors: { name: string; text: string; error: RegExp; type: typeof TypeError | typeof RangeError }[] = [
  { name: 'unknown nested field, with its path and the near name', text: head + 'ipvs:\n  schedular: rr\n', error: /unknown field "ipvs\.schedular" \(did you mean "ipvs\.scheduler"\?\)/, type: TypeError },
  { name: 'unknown top-level field', text: head + 'masqueradeAll: true\n', error: /unknown field "masqueradeAll"/, type: TypeError },
  { name: 'wrong type of a bit', text: head + 'iptables:\n  masqueradeBit: "14"\n', error: /iptables\.masqueradeBit must be a 32-bit integer, got "14"/, type: TypeError },
  { name: 'wrong type of a flag', text: head + 'ipvs:\n  strictARP: "yes"\n', error: /ipvs\.strictARP must be true or false/, type: TypeError },
  { name: 'a duration that is not one', text: head + 'iptables:\n  syncPeriod: 30\n', error: /iptables\.syncPeriod must be a duration/, type: TypeError },
  { name: 'a list item of the wrong type', text: head + 'nodePortAddresses: [10.0.0.0/8, 5]\n', error: /nodePortAddresses\[1\] must be a string/, type: TypeError },
  { name: 'a feature gate that is not a bool', text: head + 'featureGates:\n  X: 1\n', error: /featureGates\.X must be true or false/, type: TypeError },
  { name: 'a section that is not an object', text: head + 'conntrack: 5\n', error: /conntrack must be an object/, type: TypeError },
  { name: 'another apiVersion', text: 'apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n', error: /apiVersion must be "kubeproxy\.config\.k8s\.io\/v1alpha1"/, type: TypeError },
  { name: 'another kind', text: 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n', error: /kind must be "KubeProxyConfiguration"/, type: TypeError },
  { name: 'a mode svcplane does not have', text: head + 'mode: kernelspace\n', error: /mode must be one of .*got "kernelspace"/, type: RangeError },
  { name: 'a scheduler IPVS does not have', text: head + 'ipvs:\n  scheduler: fastest\n', error: /ipvs\.scheduler must be one of rr, wrr/, type: RangeError },
  { name: 'a masquerade bit out of range', text: head + 'iptables:\n  masqueradeBit: 32\n', error: /iptables\.masqueradeBit must be an integer 0\.\.31, got 32/, type: RangeError },
  { name: 'a cluster CIDR that is not one', text: head + 'clusterCIDR: 10.244.0.0\n', error: /clusterCIDR\[0\] must be a CIDR/, type: RangeError },
  { name: 'a node port address that is none', text: head + 'nodePortAddresses: [eth0]\n', error: /nodePortAddresses\[0\] must be a CIDR, "primary", "localhost" or "all", got "eth0"/, type: RangeError },
  { name: 'an exclude CIDR that is not one', text: head + 'ipvs:\n  excludeCIDRs: [nope]\n', error: /ipvs\.excludeCIDRs\[0\] must be a CIDR/, type: RangeError },
  { name: 'a bind address that is not an IP', text: head + 'bindAddress: node-a\n', error: /bindAddress must be an IP address/, type: RangeError },
  { name: 'a metrics address with a bad port', text: head + 'metricsBindAddress: 127.0.0.1:99999\n', error: /metricsBindAddress: invalid port/, type: RangeError },
  { name: 'a local-traffic mode kube-proxy does not have', text: head + 'detectLocalMode: PodCIDR\n', error: /detectLocalMode must be one of ClusterCIDR, NodeCIDR/, type: RangeError },
  { name: 'a negative conntrack size', text: head + 'conntrack:\n  maxPerCore: -1\n', error: /conntrack\.maxPerCore must be an integer >= 0/, type: RangeError },
  { name: 'two documents', text: head + '---\n' + head, error: /expected one document, found 2/, type: TypeError },
  { name: 'broken YAML', text: head + 'ipvs: [\n', error: /not valid YAML/, type: TypeError },
  { name: 'broken JSON', text: '{"apiVersion": ', error: /not valid JSON/, type: TypeError },
  { name: 'not an object', text: '- a\n- b\n', error: /the document must be an object/, type: TypeError },
]

t.test('mistakes are errors naming the field', async (t) => {
  for (const c of errors) {
    await t.rejects(loadKubeProxyConfiguration(c.text), c.error, c.name)
    await loadKubeProxyConfiguration(c.text).catch((err: unknown) => {
      t.ok(err instanceof c.type, `${c.name}: ${c.type.name}`)
      t.equal((err as { code?: string }).code, 'INVALID', `${c.name}: code INVALID`)
    })
  }
  t.throws(() => kubeProxyConfigurationOptions(null), /the document must be an object/)
})

t.test('--nodeport-addresses keywords', async (t) => {
  const cases: [string[], string[]][] = [
    [['primary'], ['primary']],
    [['all'], []],
    [['10.0.0.0/8', 'all'], []],
    [['localhost'], ['127.0.0.0/8', '::1/128']],
    [['10.0.0.1/8', '10.0.0.0/8'], ['10.0.0.0/8']],
  ]
  for (const [given, want] of cases) t.same(nodePortAddressList(given, 'x'), want, given.join(','))
})
