// Applies a Proxier's mode to the node this process runs on, after every sync, as kube-proxy's
// proxiers write their rules: iptables-restore (full first, --noflush partial after, full on
// every periodic sync and after a failure) and nft -f (the first transaction, then each sync's
// stale-chain deletion and transaction), and the userspace mode's portal chains next to its
// listeners (userspace-node.ts). Each sync's text is rendered when the sync finishes
// and applied in order; a failed apply leaves the previous rules (both tools are atomic) and
// the next apply is a full one, rendered from the model as it then stands. Native mode
// (native-node.ts) installs its TUN device, rules and pump at create() (taking over what a
// previous run handed off); each sync rewrites the frontends set; stop() hands it all to the
// next run or removes it.
import { show } from '../util/show.js'
import { SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import type { Proxier } from '../modes/index.js'
import { IPTABLES_BACKENDS, IptablesNode, type IptablesBackend, type IptablesFeatures, type IPFamily } from './iptables-node.js'
import { NftablesNode, type NftFamily } from './nftables-node.js'
import { neededSysctls, setSysctls } from './sysctls.js'
import { NativeNode, type TakeoverInfo } from './native-node.js'
import { listeningUserspace, userspaceFamily, UserspaceNode } from './userspace-node.js'

/** The modes a node can run today. */
export const APPLIABLE_MODES = ['iptables', 'nftables', 'userspace', 'native'] as const
export type AppliableMode = (typeof APPLIABLE_MODES)[number]

export interface NodeApplierOptions {
  /** Which iptables binaries (iptables mode). Default 'iptables', the distribution's choice. */
  iptablesBackend?: IptablesBackend
  /** Set forwarding and route_localnet in this namespace (default true). */
  sysctls?: boolean
  /** After each apply. */
  onApplied?(info: AppliedInfo): void
  /** An apply failed; the node keeps its previous rules and the next apply is full. */
  onError?(error: Error): void
  /** Native mode: the TUN device's name (default svcp0). */
  tunDevice?: string
  /** Native mode: a batch of the packet pump failed (it goes on). */
  onPacketError?(error: Error): void
  /** Native mode: where a stop for a restart leaves the flows (default /run/svcplane/native-flows.bin). */
  stateFile?: string
  /** Native mode: a previous run's flows were imported after the first sync. */
  onTakeover?(info: TakeoverInfo): void
}

export interface NodeStopOptions {
  /**
   * true: a stop for a restart. What the next run takes over stays: the iptables and nftables
   * rules (as kube-proxy's), and in native mode the TUN device (made persistent), its routes,
   * rules and nft table, with the flows written to the state file. false: native mode's device,
   * rules, table and state file are removed too (the iptables and nftables modes' rules stay
   * either way: `svcplane run --cleanup` removes them). The userspace mode removes its portal
   * rules and closes its listeners in both cases (nothing would answer on their ports).
   */
  handOff: boolean
}

export interface NodeStopReport {
  /** Native mode, handed off: the flows written to the state file. */
  flowsHandedOff?: number
  stateFile?: string
}

export interface AppliedInfo {
  mode: AppliableMode
  full: boolean
  /** Bytes of rule text written. */
  bytes: number
  durationMs: number
}

interface Job {
  full: boolean
  /** Bytes of rule text; a job that renders when it runs sets it then. */
  bytes: number
  run(): Promise<void>
}

/** How long open userspace connections get to end at shutdown. */
const USERSPACE_DRAIN_MS = 2000

const NFT_FAMILY: Record<IPFamily, NftFamily> = { IPv4: 'ip', IPv6: 'ip6' }

function appliableMode(proxier: Proxier): AppliableMode {
  const mode = proxier.options.mode
  if (!(APPLIABLE_MODES as readonly string[]).includes(mode)) {
    throw new SvcplaneRangeError(`NodeApplier: mode ${JSON.stringify(mode)} cannot be applied to a node yet (appliable: ${APPLIABLE_MODES.join(', ')})`)
  }
  return mode as AppliableMode
}

export class NodeApplier {
  private readonly families: IPFamily[]
  private readonly iptables = new Map<IPFamily, IptablesNode>()
  private readonly nft = new NftablesNode()
  /** Native mode: the TUN device, its rules and the pump. */
  native: NativeNode | undefined
  private readonly userspace: UserspaceNode | undefined
  private features = new Map<IPFamily, IptablesFeatures>()
  private needFull = true
  private pending: Job[] = []
  private draining: Promise<void> | undefined
  private applies = 0
  /** stop() ran: later syncs apply nothing. */
  private stopped = false
  private stopping: Promise<NodeStopReport> | undefined
  private failures = 0
  lastError: Error | undefined

  private constructor(
    readonly proxier: Proxier,
    readonly mode: AppliableMode,
    private readonly options: NodeApplierOptions,
  ) {
    const us = mode === 'userspace' ? listeningUserspace(proxier) : undefined
    // The userspace proxier serves the one family of its bind address.
    this.families = us !== undefined ? [userspaceFamily(us)] : [...proxier.options.node.families]
    for (const f of this.families) this.iptables.set(f, new IptablesNode(options.iptablesBackend ?? 'iptables', f))
    if (us !== undefined) this.userspace = new UserspaceNode(us, this.iptables.get(this.families[0]!)!)
  }

  /** Checks the options, probes the node's features and sets the sysctls; applies nothing yet. */
  static async create(proxier: Proxier, options: NodeApplierOptions = {}): Promise<NodeApplier> {
    if (options === null || typeof options !== 'object') throw new SvcplaneTypeError(`NodeApplier options must be an object, got ${show(options)}`)
    if (options.iptablesBackend !== undefined && !IPTABLES_BACKENDS.includes(options.iptablesBackend)) {
      throw new SvcplaneTypeError(`NodeApplier options: iptablesBackend must be one of ${IPTABLES_BACKENDS.join(', ')}, got ${show(options.iptablesBackend)}`)
    }
    const applier = new NodeApplier(proxier, appliableMode(proxier), options)
    if (applier.mode === 'iptables') {
      for (const [family, node] of applier.iptables) applier.features.set(family, await node.probe())
    }
    if (options.sysctls ?? true) {
      const o = proxier.options
      setSysctls(neededSysctls({
        ipv4: applier.families.includes('IPv4'),
        ipv6: applier.families.includes('IPv6'),
        routeLocalnet: applier.mode === 'iptables' && o.localhostNodePorts && applier.families.includes('IPv4'),
      }))
    }
    if (applier.mode === 'native')
      applier.native = await NativeNode.install(proxier, { device: options.tunDevice, stateFile: options.stateFile, onError: options.onPacketError, onTakeover: options.onTakeover })
    return applier
  }

  /** What the iptables probe found, per family (iptables mode). */
  probed(family: IPFamily = this.families[0]!): IptablesFeatures | undefined {
    return this.features.get(family)
  }

  get stats(): { applies: number; failures: number; pending: number } {
    return { applies: this.applies, failures: this.failures, pending: this.pending.length }
  }

  /**
   * Call after every sync: renders what that sync changed and queues it. `periodic` makes an
   * iptables apply a full one, as kube-proxy's periodic sync is.
   */
  synced(trigger: string = 'change'): void {
    if (this.stopped) return
    const full = this.needFull || (this.mode !== 'nftables' && trigger === 'periodic')
    this.enqueue(this.render(full))
  }

  /** Resolves when every queued apply has run. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining
  }

  /**
   * Stops applying, waits for the queued applies, then hands the node over to the next run or
   * removes what this one installed (NodeStopOptions). Syncs after it apply nothing. Idempotent:
   * a second call does nothing more.
   */
  async stop(options: NodeStopOptions): Promise<NodeStopReport> {
    if (options === null || typeof options !== 'object' || typeof options.handOff !== 'boolean')
      throw new SvcplaneTypeError(`NodeApplier.stop options must be { handOff: boolean }, got ${show(options)}`)
    this.stopping ??= this.stopOnce(options.handOff)
    return this.stopping
  }

  private async stopOnce(handOff: boolean): Promise<NodeStopReport> {
    this.stopped = true
    await this.idle()
    await this.userspace?.shutdown(USERSPACE_DRAIN_MS)
    if (this.native === undefined) return {}
    if (!handOff) {
      await this.native.remove()
      return {}
    }
    const h = await this.native.handOff()
    return { flowsHandedOff: h.flows, stateFile: h.file }
  }

  private enqueue(job: Job): void {
    // A full apply holds everything before it.
    if (job.full) this.pending = []
    this.pending.push(job)
    this.needFull = false
    this.draining ??= this.drain().finally(() => (this.draining = undefined))
  }

  private async drain(): Promise<void> {
    for (let job = this.pending.shift(); job !== undefined; job = this.pending.shift()) {
      const start = performance.now()
      try {
        await job.run()
        this.applies++
        this.lastError = undefined
        this.options.onApplied?.({ mode: this.mode, full: job.full, bytes: job.bytes, durationMs: performance.now() - start })
      } catch (err) {
        this.failures++
        this.lastError = err as Error
        this.pending = []
        this.options.onError?.(err as Error)
        // The texts after it assumed it landed: rebuild from the model once; if that fails too,
        // the next sync tries again.
        if (job.full) this.needFull = true
        else this.pending.push(this.render(true))
      }
    }
  }

  private render(full: boolean): Job {
    if (this.mode === 'native') return this.renderNative(full)
    if (this.userspace !== undefined) return this.renderUserspace(this.userspace, full)
    return this.mode === 'iptables' ? this.renderIptables(full) : this.renderNftables(full)
  }

  /** Native mode: the frontends set the TUN's marking rule matches, replaced in one transaction. */
  private renderNative(full: boolean): Job {
    const text = this.native!.frontendsText()
    const native = this.native!
    // A taken-over run imports its flows once the dataplane holds the first sync's services.
    return { full, bytes: text.length, run: () => native.syncFrontends(text).finally(() => native.startAfterSync()) }
  }

  private renderUserspace(node: UserspaceNode, full: boolean): Job {
    const job: Job = { full, bytes: 0, run: async () => void (job.bytes = await node.apply(full)) }
    return job
  }

  private renderIptables(full: boolean): Job {
    const texts = this.families.map((family) => {
      const f = this.features.get(family)!
      return [family, this.proxier.iptablesRestore({ ipFamily: family, partial: !full, nfacct: f.nfacct, randomFully: f.randomFully })] as const
    })
    return {
      full,
      bytes: texts.reduce((n, [, t]) => n + t.length, 0),
      run: async () => {
        for (const [family, text] of texts) {
          const node = this.iptables.get(family)!
          if (full) {
            await node.ensureJumps(this.proxier.options.localhostNodePorts)
            await node.restoreFull(text)
          } else {
            await node.restoreText(text)
          }
        }
      },
    }
  }

  private renderNftables(full: boolean): Job {
    const nftables = this.proxier.nftables!
    const texts = this.families.map((family) => {
      const last = nftables.lastSync(family)
      // The sync's own full transaction when it was one; otherwise the table as it stands.
      if (full) return { family, stale: '', text: last?.full ? last.transaction.text() : this.proxier.nftablesRuleset(family) }
      return { family, stale: last?.staleChainDeletion?.text() ?? '', text: last?.transaction.text() ?? '' }
    })
    return {
      full,
      bytes: texts.reduce((n, t) => n + t.stale.length + t.text.length, 0),
      run: async () => {
        for (const { family, stale, text } of texts) {
          if (full) {
            await this.nft.replace(NFT_FAMILY[family], text)
          } else {
            await this.nft.transaction(stale)
            await this.nft.transaction(text)
          }
        }
      },
    }
  }
}
