// kube-proxy's nftables proxier for one IP family (pkg/proxy/nftables/proxier.go, the layout of
// v1.33-v1.35): each sync builds the transaction kube-proxy would send to `nft -f` and applies
// it to the table it keeps. The first sync is a full one (base chains, sets and maps, every
// Service); later syncs are partial: every Service's set and map elements are ensured (only
// differences become operations), only changed Services get their chains rewritten, chains
// nothing uses any more are flushed and deleted by a later sync once over a second old.
import type { ServicePortState } from '../../proxy/model.js'
import type { EndpointInfo } from '../../proxy/endpoints.js'
import { externallyAccessible, usesClusterEndpoints, usesLocalEndpoints } from '../../proxy/serviceport.js'
import { cidrContains, parseAddressInto, parseCidr } from '../../util/address.js'
import { CHAIN_PREFIX, isAffinitySetName, isServiceChainName, servicePortChainNameBase, servicePortEndpointChainNameBase } from './chain-names.js'
import { ElementStorage } from './element-storage.js'
import type { NftChainObject, NftFamily } from './objects.js'
import { NftTableState } from './table-state.js'
import { NftTransaction } from './transaction.js'

export const KUBE_PROXY_TABLE = 'kube-proxy'

export interface NftProxierConfig {
  family: 'IPv4' | 'IPv6'
  /** kube-proxy formats 1 << masqueradeBit as %#08x: "0x00004000". */
  masqueradeMark: string
  masqueradeAll: boolean
  /** The local-traffic detector's pod CIDR of this family; none: no detector. */
  podCIDR?: string
  /** The node's primary IP of this family (LoadBalancerSourceRanges that contain it admit the LB IPs). */
  nodeIP?: string
  /** Node addresses that accept NodePorts, or 'all' (kube-proxy's default: every local address). */
  nodePortIPs: string[] | 'all'
  /** Service CIDRs of this family (traffic to unallocated addresses in them is dropped). */
  serviceCIDRs: string[]
}

/** What one sync sent: the stale-chain deletion (its own transaction, run first) and the sync's transaction. */
export interface NftSyncResult {
  staleChainDeletion: NftTransaction | undefined
  transaction: NftTransaction
  full: boolean
}

type BaseChain = Required<Pick<NftChainObject, 'name' | 'base'>>

const BASE_CHAINS: BaseChain[] = [
  { name: 'filter-prerouting-pre-dnat', base: { type: 'filter', hook: 'prerouting', priority: -110 } },
  { name: 'filter-output-pre-dnat', base: { type: 'filter', hook: 'output', priority: -110 } },
  { name: 'filter-input', base: { type: 'filter', hook: 'input', priority: 0 } },
  { name: 'filter-forward', base: { type: 'filter', hook: 'forward', priority: 0 } },
  { name: 'filter-output', base: { type: 'filter', hook: 'output', priority: 0 } },
  { name: 'nat-prerouting', base: { type: 'nat', hook: 'prerouting', priority: -100 } },
  { name: 'nat-output', base: { type: 'nat', hook: 'output', priority: -100 } },
  { name: 'nat-postrouting', base: { type: 'nat', hook: 'postrouting', priority: 100 } },
]

/** [destination, source base chain, match]: the jumps from the base chains, in kube-proxy's order. */
export const JUMP_CHAINS: readonly (readonly [string, string, string])[] = [
  ['nodeport-endpoints-check', 'filter-input', 'ct state new'],
  ['service-endpoints-check', 'filter-input', 'ct state new'],
  ['service-endpoints-check', 'filter-forward', 'ct state new'],
  ['service-endpoints-check', 'filter-output', 'ct state new'],
  ['firewall-check', 'filter-prerouting-pre-dnat', 'ct state new'],
  ['firewall-check', 'filter-output-pre-dnat', 'ct state new'],
  ['services', 'nat-output', ''],
  ['services', 'nat-prerouting', ''],
  ['masquerading', 'nat-postrouting', ''],
  ['cluster-ips-check', 'filter-forward', 'ct state new'],
  ['cluster-ips-check', 'filter-output', 'ct state new'],
]

const MARK_MASQ = 'mark-for-masquerade'
const REJECT_CHAIN = 'reject-chain'

/** The chain and set names of one ServicePort. */
export interface ServicePortNames {
  cluster: string
  local: string
  external: string
  firewall: string
  endpoint(e: EndpointInfo): string
  affinity(e: EndpointInfo): string
}

export function servicePortNames(s: ServicePortState): ServicePortNames {
  const { namespace, serviceName, portName } = s.info
  const protocol = s.info.protocol.toLowerCase()
  const base = servicePortChainNameBase(namespace, serviceName, portName, protocol)
  // kube-proxy computes these hashes once per endpoint, not per sync.
  const epBases = new Map<string, string>()
  const epBase = (e: EndpointInfo) => {
    let b = epBases.get(e.endpoint)
    if (b === undefined) epBases.set(e.endpoint, (b = servicePortEndpointChainNameBase(namespace, serviceName, portName, protocol, e.endpoint)))
    return b
  }
  return {
    cluster: CHAIN_PREFIX.cluster + base,
    local: CHAIN_PREFIX.local + base,
    external: CHAIN_PREFIX.external + base,
    firewall: CHAIN_PREFIX.firewall + base,
    endpoint: (e) => CHAIN_PREFIX.endpoint + epBase(e),
    affinity: (e) => CHAIN_PREFIX.affinity + epBase(e),
  }
}

function cidrHas(cidr: string, ip: string | undefined): boolean {
  if (ip === undefined) return false
  const c = parseCidr(cidr)
  const b = new Uint8Array(16)
  return c !== undefined && parseAddressInto(ip, b, 0) !== 0 && cidrContains(c, b, 0)
}

export class NftProxierSync {
  readonly table: NftTableState
  readonly family: NftFamily
  private readonly ipX: 'ip' | 'ip6'
  private readonly addrType: string
  private needFullSync = true
  private flushed = false
  /** Chains flushed because nothing uses them, with the time (seconds) they became stale. */
  readonly staleChains = new Map<string, number>()
  private readonly clusterIPs = new ElementStorage('set', 'cluster-ips')
  private readonly serviceIPs = new ElementStorage('map', 'service-ips')
  private readonly firewallIPs = new ElementStorage('map', 'firewall-ips')
  private readonly noEndpointServices = new ElementStorage('map', 'no-endpoint-services')
  private readonly noEndpointNodePorts = new ElementStorage('map', 'no-endpoint-nodeports')
  private readonly serviceNodePorts = new ElementStorage('map', 'service-nodeports')
  /** Names by ServicePort key, kept for the ports the last sync saw. */
  private names = new Map<string, ServicePortNames>()

  constructor(readonly config: NftProxierConfig) {
    this.family = config.family === 'IPv6' ? 'ip6' : 'ip'
    this.ipX = this.family
    this.addrType = config.family === 'IPv6' ? 'ipv6_addr' : 'ipv4_addr'
    this.table = new NftTableState(this.family, KUBE_PROXY_TABLE)
  }

  private newTransaction(): NftTransaction {
    return new NftTransaction(this.family, KUBE_PROXY_TABLE)
  }

  /** Adds and flushes `chain` once per transaction. `skip`: only record it as in use. */
  private ensureChain(chain: string, tx: NftTransaction, created: Set<string>, skip = false): void {
    if (created.has(chain)) return
    created.add(chain)
    if (skip) return
    tx.add({ kind: 'chain', name: chain })
    tx.flush({ kind: 'chain', name: chain })
  }

  private setup(tx: NftTransaction): void {
    const { ipX, addrType, config } = this
    const noLocalhost = ipX === 'ip6' ? 'ip6 daddr != ::1' : 'ip daddr != 127.0.0.0/8'
    const rule = (chain: string, text: string, comment?: string) =>
      tx.add({ kind: 'rule', chain, rule: text, ...(comment !== undefined ? { comment } : {}) })
    tx.add({ kind: 'table', comment: 'rules for kube-proxy' })
    // Once per process, delete and recreate the base chains so a changed priority applies.
    if (!this.flushed) {
      for (const bc of BASE_CHAINS) {
        tx.add({ kind: 'chain', name: bc.name })
        tx.delete({ kind: 'chain', name: bc.name })
      }
      this.flushed = true
    }
    for (const bc of BASE_CHAINS) {
      tx.add({ kind: 'chain', ...bc })
      tx.flush({ kind: 'chain', name: bc.name })
    }
    const created = new Set<string>()
    for (const [dst, src, match] of JUMP_CHAINS) {
      this.ensureChain(dst, tx, created)
      rule(src, match === '' ? `jump ${dst}` : `${match} jump ${dst}`)
    }
    for (const c of ['services', 'cluster-ips-check', 'masquerading', MARK_MASQ]) this.ensureChain(c, tx, created)
    rule(MARK_MASQ, `mark set mark or ${config.masqueradeMark}`)
    rule('masquerading', `mark and ${config.masqueradeMark} == 0 return`)
    rule('masquerading', `mark set mark xor ${config.masqueradeMark}`)
    rule('masquerading', 'masquerade fully-random')
    tx.add({ kind: 'set', name: 'cluster-ips', type: addrType, comment: 'Active ClusterIPs' })
    rule('cluster-ips-check', `${ipX} daddr @cluster-ips reject`, 'Reject traffic to invalid ports of ClusterIPs')
    if (config.serviceCIDRs.length > 0) {
      rule('cluster-ips-check', `${ipX} daddr { ${config.serviceCIDRs.join(',')} } drop`, 'Drop traffic to unallocated ClusterIPs')
    }
    const matchAll = config.nodePortIPs === 'all'
    tx.add({ kind: 'set', name: 'nodeport-ips', type: addrType, comment: 'IPs that accept NodePort traffic' })
    if (config.nodePortIPs === 'all') {
      tx.delete({ kind: 'set', name: 'nodeport-ips' })
    } else {
      tx.flush({ kind: 'set', name: 'nodeport-ips' })
      for (const ip of config.nodePortIPs) tx.add({ kind: 'element', container: 'set', name: 'nodeport-ips', key: [ip] })
    }
    const verdictMap = `${addrType} . inet_proto . inet_service : verdict`
    tx.add({ kind: 'map', name: 'no-endpoint-services', type: verdictMap, comment: 'vmap to drop or reject packets to services with no endpoints' })
    tx.add({ kind: 'map', name: 'no-endpoint-nodeports', type: 'inet_proto . inet_service : verdict', comment: 'vmap to drop or reject packets to service nodeports with no endpoints' })
    tx.add({ kind: 'chain', name: REJECT_CHAIN, comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports' })
    tx.flush({ kind: 'chain', name: REJECT_CHAIN })
    rule(REJECT_CHAIN, 'reject')
    rule('service-endpoints-check', `${ipX} daddr . meta l4proto . th dport vmap @no-endpoint-services`)
    rule('nodeport-endpoints-check', `${matchAll ? noLocalhost : `${ipX} daddr @nodeport-ips`} meta l4proto . th dport vmap @no-endpoint-nodeports`)
    tx.add({ kind: 'map', name: 'firewall-ips', type: verdictMap, comment: 'destinations that are subject to LoadBalancerSourceRanges' })
    this.ensureChain('firewall-check', tx, created)
    rule('firewall-check', `${ipX} daddr . meta l4proto . th dport vmap @firewall-ips`)
    tx.add({ kind: 'map', name: 'service-ips', type: verdictMap, comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic' })
    tx.add({ kind: 'map', name: 'service-nodeports', type: 'inet_proto . inet_service : verdict', comment: 'NodePort traffic' })
    rule('services', `${ipX} daddr . meta l4proto . th dport vmap @service-ips`)
    rule('services', `${matchAll ? `fib daddr type local ${noLocalhost}` : `${ipX} daddr @nodeport-ips`} meta l4proto . th dport vmap @service-nodeports`)
    for (const s of this.storages()) s.reset(tx)
  }

  private storages(): ElementStorage[] {
    return [this.clusterIPs, this.serviceIPs, this.firewallIPs, this.noEndpointServices, this.noEndpointNodePorts, this.serviceNodePorts]
  }

  /**
   * One sync at `now` (seconds): `servicePorts` are all of this family's, `changed` the Services
   * ("ns/name") whose ports or endpoints changed since the last sync. Applies what it builds to
   * the table; on a failed transaction the table stays as it was and the next sync is full.
   */
  sync(servicePorts: readonly ServicePortState[], changed: ReadonlySet<string>, now: number): NftSyncResult {
    let staleChainDeletion: NftTransaction | undefined
    if (this.staleChains.size > 0) {
      const tx = this.newTransaction()
      for (const [chain, since] of this.staleChains) {
        if (since < now - 1) {
          tx.delete({ kind: 'chain', name: chain })
          this.staleChains.delete(chain)
        }
      }
      if (tx.size > 0) {
        staleChainDeletion = tx
        // A chain that is still there is found stale again below, with a later time.
        try { this.table.apply(tx.operations) } catch { /* retried by a later sync */ }
      }
    }
    const full = this.needFullSync
    const tx = this.newTransaction()
    if (full) this.setup(tx)
    const activeChains = new Set<string>()
    const activeAffinitySets = new Set<string>()
    const names = new Map<string, ServicePortNames>()
    for (const s of servicePorts) {
      const n = this.names.get(s.info.key) ?? servicePortNames(s)
      names.set(s.info.key, n)
      this.syncServicePort(s, n, tx, activeChains, activeAffinitySets, !full && !changed.has(s.info.service))
    }
    this.names = names
    // Chains can't go at once (before kernel 6.2 a map element's reference lingers a moment):
    // flush them now and delete them once they have been stale for a second.
    for (const chain of this.table.chainNames()) {
      if (!isServiceChainName(chain)) continue
      if (activeChains.has(chain)) {
        this.staleChains.delete(chain)
      } else {
        tx.flush({ kind: 'chain', name: chain })
        this.staleChains.set(chain, now)
      }
    }
    for (const set of this.table.setNames('set')) {
      if (isAffinitySetName(set) && !activeAffinitySets.has(set)) tx.delete({ kind: 'set', name: set })
    }
    for (const st of this.storages()) st.cleanup(tx)
    try {
      this.table.apply(tx.operations)
    } catch (error) {
      this.needFullSync = true
      this.staleChains.clear()
      throw error
    }
    this.needFullSync = false
    return { staleChainDeletion, transaction: tx, full }
  }

  private syncServicePort(s: ServicePortState, names: ServicePortNames, tx: NftTransaction, activeChains: Set<string>, activeAffinitySets: Set<string>, skip: boolean): void {
    const { info, categorized } = s
    const { ipX, config } = this
    const protocol = info.protocol.toLowerCase()
    const port = String(info.port)
    const affinity = info.affinityTimeoutSeconds > 0
    const { cluster: clusterEndpoints, local: localEndpoints, allReachable, hasAnyEndpoints: hasEndpoints } = categorized
    const rule = (chain: string, text: string, comment?: string) =>
      tx.add({ kind: 'rule', chain, rule: text, ...(comment !== undefined ? { comment } : {}) })

    for (const ep of allReachable) {
      this.ensureChain(names.endpoint(ep), tx, activeChains, skip)
      if (affinity) activeAffinitySets.add(names.affinity(ep))
    }
    const usesClusterPolicyChain = clusterEndpoints.length > 0 && usesClusterEndpoints(info)
    if (usesClusterPolicyChain) this.ensureChain(names.cluster, tx, activeChains, skip)
    const usesLocalPolicyChain = localEndpoints.length > 0 && usesLocalEndpoints(info)
    if (usesLocalPolicyChain) this.ensureChain(names.local, tx, activeChains, skip)

    const internalTrafficChain = info.internalPolicyLocal ? names.local : names.cluster
    const hasInternalEndpoints = hasEndpoints && !(info.internalPolicyLocal && localEndpoints.length === 0)
    const externalPolicyChain = info.externalPolicyLocal ? names.local : names.cluster
    const hasExternalEndpoints = hasEndpoints && !(info.externalPolicyLocal && localEndpoints.length === 0)
    const usesExternalTrafficChain = hasEndpoints && externallyAccessible(info)
    if (usesExternalTrafficChain) this.ensureChain(names.external, tx, activeChains, skip)

    const internalVerdict = !hasEndpoints ? `goto ${REJECT_CHAIN}` : 'drop'
    const externalVerdict = !hasEndpoints ? `goto ${REJECT_CHAIN}` : 'drop'

    this.clusterIPs.ensure(tx, [info.clusterIP])
    if (hasInternalEndpoints) {
      this.serviceIPs.ensure(tx, [info.clusterIP, protocol, port], [`goto ${internalTrafficChain}`])
    } else {
      this.noEndpointServices.ensure(tx, [info.clusterIP, protocol, port], [internalVerdict], info.name)
    }
    for (const ip of info.externalIPs) {
      if (hasEndpoints) this.serviceIPs.ensure(tx, [ip, protocol, port], [`goto ${names.external}`])
      if (!hasExternalEndpoints) this.noEndpointServices.ensure(tx, [ip, protocol, port], [externalVerdict], info.name)
    }
    const usesFWChain = info.loadBalancerVIPs.length > 0 && info.loadBalancerSourceRanges.length > 0
    if (usesFWChain) this.ensureChain(names.firewall, tx, activeChains, skip)
    for (const ip of info.loadBalancerVIPs) {
      if (hasEndpoints) this.serviceIPs.ensure(tx, [ip, protocol, port], [`goto ${names.external}`])
      if (usesFWChain) this.firewallIPs.ensure(tx, [ip, protocol, port], [`goto ${names.firewall}`])
    }
    if (!hasExternalEndpoints) {
      for (const ip of info.loadBalancerVIPs) this.noEndpointServices.ensure(tx, [ip, protocol, port], [externalVerdict], info.name)
    }
    if (info.nodePort !== 0) {
      const key = [protocol, String(info.nodePort)]
      if (hasEndpoints) this.serviceNodePorts.ensure(tx, key, [`goto ${names.external}`])
      if (!hasExternalEndpoints) this.noEndpointNodePorts.ensure(tx, key, [externalVerdict], info.name)
    }
    if (skip) return

    if (hasInternalEndpoints) {
      if (config.masqueradeAll) {
        rule(internalTrafficChain, `${ipX} daddr ${info.clusterIP} jump ${MARK_MASQ}`)
      } else if (config.podCIDR !== undefined) {
        // Off-cluster traffic to a service IP may bounce to another node: masquerade it.
        rule(internalTrafficChain, `${ipX} daddr ${info.clusterIP} ${ipX} saddr != ${config.podCIDR} jump ${MARK_MASQ}`)
      }
    }
    if (usesExternalTrafficChain) {
      if (!info.externalPolicyLocal) {
        rule(names.external, `jump ${MARK_MASQ}`)
      } else {
        if (config.podCIDR !== undefined) {
          rule(names.external, `${ipX} saddr ${config.podCIDR} goto ${names.cluster}`, 'short-circuit pod traffic')
        }
        rule(names.external, `fib saddr type local jump ${MARK_MASQ}`, 'masquerade local traffic')
        rule(names.external, `fib saddr type local goto ${names.cluster}`, 'short-circuit local traffic')
      }
      if (hasExternalEndpoints) rule(names.external, `goto ${externalPolicyChain}`)
    }
    if (usesFWChain) {
      const sources = [...info.loadBalancerSourceRanges]
      if (info.loadBalancerSourceRanges.some((c) => cidrHas(c, config.nodeIP))) sources.push(...info.loadBalancerVIPs)
      rule(names.firewall, `${ipX} saddr != { ${sources.join(' , ')} } drop`)
    }
    if (affinity) {
      for (const ep of allReachable) {
        tx.add({ kind: 'set', name: names.affinity(ep), type: this.addrType, flags: ['dynamic', 'timeout'], timeout: info.affinityTimeoutSeconds })
      }
    }
    if (usesClusterPolicyChain) this.writeServiceToEndpointRules(tx, names, names.cluster, clusterEndpoints, affinity)
    if (usesLocalPolicyChain) this.writeServiceToEndpointRules(tx, names, names.local, localEndpoints, affinity)
    for (const ep of allReachable) {
      const chain = names.endpoint(ep)
      // Traffic that loops back to its sender has to be SNATed.
      rule(chain, `${ipX} saddr ${ep.ip} jump ${MARK_MASQ}`)
      if (affinity) rule(chain, `update @${names.affinity(ep)} { ${ipX} saddr }`)
      rule(chain, `meta l4proto ${protocol} dnat to ${ep.endpoint}`)
    }
  }

  private writeServiceToEndpointRules(tx: NftTransaction, names: ServicePortNames, chain: string, endpoints: readonly EndpointInfo[], affinity: boolean): void {
    if (affinity) {
      for (const ep of endpoints) {
        tx.add({ kind: 'rule', chain, rule: `${this.ipX} saddr @${names.affinity(ep)} goto ${names.endpoint(ep)}` })
      }
    }
    const entries = endpoints.map((ep, i) => `${i} : goto ${names.endpoint(ep)}`).join(' , ')
    tx.add({ kind: 'rule', chain, rule: `numgen random mod ${endpoints.length} vmap { ${entries} }` })
  }
}
