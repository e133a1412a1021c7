// Changes recorded between syncs, like kube-proxy's Service and EndpointSlice change trackers:
// only the latest state of each object is kept, so a burst of updates to one Service costs one
// recomputation at the next sync.
import type { ValidService } from '../k8s/service.js'
import type { ValidEndpointSlice } from '../k8s/endpointslice.js'

export interface PendingChanges {
  /** "ns/name" -> new state, or null when deleted. */
  services: Map<string, ValidService | null>
  /** "ns/sliceName" -> new state, or null when deleted. */
  slices: Map<string, ValidEndpointSlice | null>
}

export class ChangeTracker {
  private changes: PendingChanges = { services: new Map(), slices: new Map() }

  serviceChanged(key: string, svc: ValidService | null): void {
    this.changes.services.set(key, svc)
  }

  sliceChanged(key: string, slice: ValidEndpointSlice | null): void {
    this.changes.slices.set(key, slice)
  }

  /** Objects with a change waiting for the next sync. */
  get pending(): number {
    return this.changes.services.size + this.changes.slices.size
  }

  /** Hands the recorded changes over and starts a new record. */
  drain(): PendingChanges {
    const out = this.changes
    this.changes = { services: new Map(), slices: new Map() }
    return out
  }
}
