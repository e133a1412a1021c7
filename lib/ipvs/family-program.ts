// One ipvs proxier's programming for a family, kept up to date ServicePort by ServicePort:
// each ServicePort's virtual servers, set entries and kube-ipvs0 addresses are remembered, so
// a sync recomputes only the ServicePorts that changed. Shared entries and addresses are
// reference counted; a virtual server two Services claim goes to the first in model order.
import type { ProxyModelView, ServicePortState } from '../proxy/model.js'
import { familyIpsets, ipsetEntriesOf, primaryNodeIPOf, type FamilyIpsets, type NoNodeAccessEntry } from './ipsets.js'
import type { Family } from './node-port-addresses.js'
import { virtualServerKey } from './types.js'
import { virtualServersOf, type DesiredVirtualServer, type VirtualServerConfig } from './virtual-servers.js'

interface Contribution {
  order: string
  servers: Map<string, DesiredVirtualServer>
  entries: [string, string][]
  bound: string[]
  noNodeAccess: NoNodeAccessEntry[]
}

function bump(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta
  if (n > 0) counts.set(key, n)
  else counts.delete(key)
}

/** The model's ServicePort order (name, protocol, family). */
const orderOf = (s: ServicePortState) => `${s.info.name}\u0000${s.info.protocol}\u0000${s.info.family}`

export class FamilyProgram {
  private readonly contributions = new Map<string, Contribution>()
  /** Set name -> entry -> how many ServicePorts put it there. */
  private readonly counts = new Map<string, Map<string, number>>()
  /** Virtual server key -> the ServicePorts that claim it. */
  private readonly owners = new Map<string, Set<string>>()
  private readonly boundCounts = new Map<string, number>()
  /** ServicePorts with KUBE-IPVS-OUT-FILTER entries. */
  private readonly closed = new Set<string>()

  constructor(readonly family: Family, private readonly config: VirtualServerConfig) {}

  /**
   * Recomputes the ServicePorts `keys` (model keys, of any family) from the model; returns the
   * virtual servers whose desired state may have changed, each with what it should now be.
   */
  update(model: ProxyModelView, keys: Iterable<string>): Map<string, DesiredVirtualServer | undefined> {
    const touched = new Set<string>()
    const primary = primaryNodeIPOf(model, this.family)
    for (const key of keys) {
      const old = this.contributions.get(key)
      if (old !== undefined) this.withdraw(key, old, touched)
      const state = model.servicePort(key)
      if (state === undefined || state.info.family !== this.family) continue
      const vs = virtualServersOf(state, this.config)
      const sets = ipsetEntriesOf(state, this.config, primary)
      const c: Contribution = { order: orderOf(state), servers: new Map(), entries: sets.entries, bound: vs.bound, noNodeAccess: sets.noNodeAccess }
      for (const d of vs.servers) {
        const k = virtualServerKey(d.server.address, d.server.port, d.server.protocol)
        if (!c.servers.has(k)) c.servers.set(k, d)
      }
      this.contributions.set(key, c)
      if (c.noNodeAccess.length > 0) this.closed.add(key)
      for (const [name, entry] of c.entries) {
        let m = this.counts.get(name)
        if (m === undefined) this.counts.set(name, (m = new Map()))
        bump(m, entry, +1)
      }
      for (const a of c.bound) bump(this.boundCounts, a, +1)
      for (const k of c.servers.keys()) {
        let o = this.owners.get(k)
        if (o === undefined) this.owners.set(k, (o = new Set()))
        o.add(key)
        touched.add(k)
      }
    }
    const out = new Map<string, DesiredVirtualServer | undefined>()
    for (const k of touched) out.set(k, this.winner(k))
    return out
  }

  private withdraw(key: string, c: Contribution, touched: Set<string>): void {
    this.contributions.delete(key)
    this.closed.delete(key)
    for (const [name, entry] of c.entries) bump(this.counts.get(name)!, entry, -1)
    for (const a of c.bound) bump(this.boundCounts, a, -1)
    for (const k of c.servers.keys()) {
      const o = this.owners.get(k)!
      o.delete(key)
      if (o.size === 0) this.owners.delete(k)
      touched.add(k)
    }
  }

  private winner(vsKey: string): DesiredVirtualServer | undefined {
    let best: Contribution | undefined
    for (const key of this.owners.get(vsKey) ?? []) {
      const c = this.contributions.get(key)!
      if (best === undefined || c.order < best.order) best = c
    }
    return best?.servers.get(vsKey)
  }

  /** kube-ipvs0's addresses for this family. */
  bound(): Set<string> {
    return new Set(this.boundCounts.keys())
  }

  /** Whether `entry` is in the set (IPv4 name); KUBE-IPVS-IPS is kube-ipvs0's addresses. */
  has(set: string, entry: string): boolean {
    if (set === 'KUBE-IPVS-IPS') return this.boundCounts.has(entry)
    return (this.counts.get(set)?.get(entry) ?? 0) > 0
  }

  entriesOf(set: string): Iterable<string> {
    return set === 'KUBE-IPVS-IPS' ? this.boundCounts.keys() : this.counts.get(set)?.keys() ?? []
  }

  nonEmpty(set: string): boolean {
    return set === 'KUBE-IPVS-IPS' ? this.boundCounts.size > 0 : (this.counts.get(set)?.size ?? 0) > 0
  }

  /** LB frontends whose source ranges leave the node out, in model order. */
  get noNodeAccess(): NoNodeAccessEntry[] {
    return [...this.closed].map((k) => this.contributions.get(k)!).sort((a, b) => (a.order < b.order ? -1 : 1)).flatMap((c) => c.noNodeAccess)
  }

  /** The sets as `ipset save` lists them. */
  ipsets(): FamilyIpsets {
    const counts = new Map(this.counts)
    counts.set('KUBE-IPVS-IPS', this.boundCounts)
    return familyIpsets(this.family, counts, this.noNodeAccess)
  }
}
