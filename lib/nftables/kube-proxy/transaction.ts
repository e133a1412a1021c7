// What one sync sends to `nft -f`: an ordered list of operations, applied atomically.
import { operationText, type NftFamily, type NftObject, type NftOperation } from './objects.js'

export class NftTransaction {
  readonly operations: NftOperation[] = []

  constructor(readonly family: NftFamily, readonly table: string) {}

  add(object: NftObject): void {
    this.operations.push({ verb: 'add', object })
  }

  flush(object: NftObject): void {
    this.operations.push({ verb: 'flush', object })
  }

  delete(object: NftObject): void {
    this.operations.push({ verb: 'delete', object })
  }

  /** knftables' NumOperations(): what kube-proxy's repeated-sync test counts. */
  get size(): number {
    return this.operations.length
  }

  /** One operation a line, as `nft -f` reads it ("" when empty). */
  text(): string {
    return this.operations.map((op) => `${operationText(op, this.family, this.table)}\n`).join('')
  }
}
