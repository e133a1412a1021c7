// kube-proxy's nftElementStorage: what a set or map holds, so a partial sync adds only the
// elements that are new, re-adds those whose value changed, and deletes the leftovers one by
// one, instead of flushing and refilling the container.
import { elementKey, type NftElementObject } from './objects.js'
import type { NftTransaction } from './transaction.js'

export class ElementStorage {
  /** key text -> value text */
  private readonly elements = new Map<string, string>()
  private leftover = new Set<string>()

  constructor(readonly container: 'set' | 'map', readonly name: string) {}

  /** Full sync: the container is flushed and refilled. */
  reset(tx: NftTransaction): void {
    this.elements.clear()
    tx.flush({ kind: this.container, name: this.name })
    this.leftover = new Set()
  }

  ensure(tx: NftTransaction, key: string[], value?: string[], comment?: string): void {
    const k = elementKey(key)
    const v = elementKey(value ?? [])
    const element: NftElementObject = { kind: 'element', container: this.container, name: this.name, key }
    if (value !== undefined) element.value = value
    if (comment !== undefined) element.comment = comment
    const existing = this.elements.get(k)
    if (existing === undefined) {
      tx.add(element)
      this.elements.set(k, v)
      return
    }
    if (existing !== v) {
      tx.delete(element)
      tx.add(element)
      this.elements.set(k, v)
    }
    this.leftover.delete(k)
  }

  /** Deletes what no Service ensured this sync; the next sync starts from what is left. */
  cleanup(tx: NftTransaction): void {
    for (const k of this.leftover) {
      tx.delete({ kind: 'element', container: this.container, name: this.name, key: k.split(' . ') })
      this.elements.delete(k)
    }
    this.leftover = new Set(this.elements.keys())
  }

  get size(): number {
    return this.elements.size
  }
}
