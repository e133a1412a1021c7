// The nftables side of a real node: kube-proxy's transactions fed to `nft -f -`, which applies
// each one atomically (a refused transaction changes nothing). A full apply first deletes the
// kube-proxy table in the same transaction, so a restart takes over what a previous run left
// without a moment where the table is missing.
import { runChecked } from './tool.js'

export type NftFamily = 'ip' | 'ip6'

export const KUBE_PROXY_TABLE = 'kube-proxy'

/** Deletes the table whether or not it exists (`add` first makes `delete` always valid). */
export function replaceTablePrefix(family: NftFamily): string {
  return `add table ${family} ${KUBE_PROXY_TABLE}\ndelete table ${family} ${KUBE_PROXY_TABLE}\n`
}

export class NftablesNode {
  constructor(readonly nft = 'nft') {}

  /** One transaction; throws APPLY_FAILED with nft's stderr. */
  async transaction(text: string): Promise<void> {
    if (text.trim() === '') return
    await runChecked(this.nft, ['-f', '-'], text)
  }

  /** The table rebuilt from `text` (a full transaction or ruleset), in one transaction. */
  async replace(family: NftFamily, text: string): Promise<void> {
    await this.transaction(replaceTablePrefix(family) + text)
  }

  /** Whether the table exists now. */
  async has(family: NftFamily): Promise<boolean> {
    const out = await runChecked(this.nft, ['list', 'tables', family])
    return out.split('\n').some((l) => l.trim() === `table ${family} ${KUBE_PROXY_TABLE}`)
  }

  /** Removes the kube-proxy tables (ip, ip6) when present; returns the families removed. */
  async cleanup(): Promise<NftFamily[]> {
    const removed: NftFamily[] = []
    for (const family of ['ip', 'ip6'] as const) {
      if (!(await this.has(family))) continue
      await this.transaction(`delete table ${family} ${KUBE_PROXY_TABLE}\n`)
      removed.push(family)
    }
    return removed
  }
}
