// kube-proxy's userspace LoadBalancerRR: per ServicePort the endpoints in a shuffled order and
// an index that walks them; with ClientIP affinity a map from client IP to the endpoint it got
// and when it last used it. A new endpoint set (compared as a set) is shuffled again, the
// index starts over and the affinity of clients whose endpoint left is forgotten; an empty set
// forgets every client. Time is passed in (seconds), never read here.
import type { RandomSource } from '../../util/random.js'

export interface AffinityEntry {
  clientIP: string
  endpoint: string
  /** Seconds of the caller's clock. */
  lastUsed: number
}

interface BalancerState {
  endpoints: string[]
  index: number
  /** 0: no session affinity; else the ClientIP timeout in seconds. */
  affinitySeconds: number
  affinity: Map<string, AffinityEntry>
}

export type PickReason = 'round-robin' | 'affinity'

export interface Pick {
  endpoint: string
  reason: PickReason
  /** Position of the endpoint in the shuffled order. */
  index: number
  /** The affinity entry used or written; undefined without affinity. */
  affinity?: AffinityEntry
}

export class LoadBalancerRR {
  private readonly services = new Map<string, BalancerState>()

  constructor(private readonly random: RandomSource) {}

  /** Creates or updates a ServicePort's affinity; its endpoints and clients stay. */
  setAffinity(servicePort: string, affinitySeconds: number): void {
    const s = this.state(servicePort)
    if (affinitySeconds === 0) s.affinity.clear()
    s.affinitySeconds = affinitySeconds
  }

  private state(servicePort: string): BalancerState {
    let s = this.services.get(servicePort)
    if (s === undefined) this.services.set(servicePort, (s = { endpoints: [], index: 0, affinitySeconds: 0, affinity: new Map() }))
    return s
  }

  /** Installs a ServicePort's endpoints ("IP:port"); an unchanged set keeps order, index and clients. */
  setEndpoints(servicePort: string, endpoints: readonly string[]): void {
    const s = this.state(servicePort)
    const next = new Set(endpoints)
    if (next.size === s.endpoints.length && s.endpoints.every((e) => next.has(e))) return
    if (next.size === 0) s.affinity.clear()
    else for (const [client, a] of s.affinity) if (!next.has(a.endpoint)) s.affinity.delete(client)
    s.endpoints = this.shuffle([...next].sort())
    s.index = 0
  }

  private shuffle(list: string[]): string[] {
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[list[i], list[j]] = [list[j]!, list[i]!]
    }
    return list
  }

  deleteService(servicePort: string): void {
    this.services.delete(servicePort)
  }

  /** The endpoints in the order round-robin walks them, and where the next pick starts. */
  order(servicePort: string): { endpoints: readonly string[]; next: number } | undefined {
    const s = this.services.get(servicePort)
    return s === undefined ? undefined : { endpoints: [...s.endpoints], next: s.index }
  }

  /** The live affinity entries of a ServicePort (expired ones are left out). */
  affinityEntries(servicePort: string, now: number): AffinityEntry[] {
    const s = this.services.get(servicePort)
    if (s === undefined) return []
    return [...s.affinity.values()].filter((a) => !expired(a, s.affinitySeconds, now)).map((a) => ({ ...a }))
  }

  /**
   * NextEndpoint: the client's affinity endpoint while its entry is younger than the timeout
   * (whole seconds, as kube-proxy compares them), else the next in round-robin order. `reset`
   * skips the affinity entry (kube-proxy retries a failed dial so). Undefined: no endpoints.
   */
  next(servicePort: string, clientIP: string, now: number, reset = false): Pick | undefined {
    const s = this.services.get(servicePort)
    if (s === undefined || s.endpoints.length === 0) return undefined
    const sticky = s.affinitySeconds > 0
    if (sticky && !reset) {
      const a = s.affinity.get(clientIP)
      if (a !== undefined && !expired(a, s.affinitySeconds, now)) {
        a.lastUsed = now
        return { endpoint: a.endpoint, reason: 'affinity', index: s.endpoints.indexOf(a.endpoint), affinity: { ...a } }
      }
    }
    const index = s.index
    const endpoint = s.endpoints[index]!
    s.index = (index + 1) % s.endpoints.length
    if (!sticky) return { endpoint, reason: 'round-robin', index }
    const entry = { clientIP, endpoint, lastUsed: now }
    s.affinity.set(clientIP, entry)
    return { endpoint, reason: 'round-robin', index, affinity: { ...entry } }
  }

  /** CleanupStaleStickySessions for every ServicePort; returns how many entries went. */
  cleanup(now: number): number {
    let removed = 0
    for (const s of this.services.values()) {
      for (const [client, a] of s.affinity) {
        if (expired(a, s.affinitySeconds, now)) {
          s.affinity.delete(client)
          removed++
        }
      }
    }
    return removed
  }
}

function expired(a: AffinityEntry, seconds: number, now: number): boolean {
  return Math.trunc(now - a.lastUsed) >= seconds
}
