// kube-proxy's --cleanup: removes what any mode left on this node (the iptables chains and the
// jumps to them from the built-in chains, with every backend and family installed; the nft
// kube-proxy tables; native mode's policy rules, routing table, nft table, and the persistent
// TUN device and state file a stop for a restart left). Idempotent: a
// node with nothing left is not an error.
import { runTool } from './tool.js'
import { cleanupText, IPTABLES_BACKENDS, IptablesNode, type IptablesBackend } from './iptables-node.js'
import { NftablesNode } from './nftables-node.js'
import { cleanupNativeNode, DEFAULT_STATE_FILE, DEFAULT_TUN_NAME } from './native-node.js'

export interface CleanupReport {
  /** e.g. "iptables-nft IPv4: 14 chains", "nft ip kube-proxy" */
  removed: string[]
}

async function installed(cmd: string, args = ['-V']): Promise<boolean> {
  return (await runTool(cmd, args)).status === 0
}

/** Backends to clean: both real ones (where installed), since either may hold old rules. */
async function backendsPresent(): Promise<IptablesBackend[]> {
  const out: IptablesBackend[] = []
  for (const b of IPTABLES_BACKENDS.filter((b) => b !== 'iptables')) if (await installed(b)) out.push(b)
  if (out.length === 0 && (await installed('iptables'))) out.push('iptables')
  return out
}

export interface CleanupOptions {
  /** Native mode's state file (default DEFAULT_STATE_FILE). */
  stateFile?: string
  /** Native mode's TUN device (default DEFAULT_TUN_NAME). */
  tunDevice?: string
}

export async function cleanupNode(options: CleanupOptions = {}): Promise<CleanupReport> {
  const removed: string[] = []
  for (const backend of await backendsPresent()) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const node = new IptablesNode(backend, family)
      const save = await runTool(`${backend.replace('iptables', family === 'IPv6' ? 'ip6tables' : 'iptables')}-save`, [])
      if (save.status !== 0) continue
      const text = cleanupText(save.stdout)
      if (text === '') continue
      await node.cleanup()
      const chains = (text.match(/^-X /gm) ?? []).length
      const jumps = (text.match(/^-D /gm) ?? []).length
      removed.push(`${backend} ${family}: ${chains} chains, ${jumps} jumps`)
    }
  }
  if (await installed('nft', ['--version'])) for (const family of await new NftablesNode().cleanup()) removed.push(`nft table ${family} kube-proxy`)
  if (await installed('nft', ['--version'])) removed.push(...(await cleanupNativeNode(true, { device: options.tunDevice ?? DEFAULT_TUN_NAME, stateFile: options.stateFile ?? DEFAULT_STATE_FILE })))
  return { removed }
}
