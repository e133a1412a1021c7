// The Proxier users construct: the mode-agnostic core (lib/proxy) with the mode the options
// name, built by the composition root, and kube-proxy's iptables-restore text rendered from
// the model by a sync listener, in any mode.
import { show } from '../util/show.js'
import { ModelRestoreWriter, type IptablesRestoreRequest } from '../iptables/kube-proxy/restore-writer.js'
import { COMMON_OPTION_KEYS, resolveOptions, type CommonProxierOptions } from '../proxy/options.js'
import { ProxierCore } from '../proxy/proxier.js'
import { rejectUnknownKeys } from '../util/known-keys.js'
import { iptablesExtraOptions } from './iptables/iptables-options.js'
import type { IptablesMode } from './iptables/iptables-mode.js'
import type { NftablesMode } from './nftables/nftables-mode.js'
import { nftablesSettings } from './nftables/nftables-options.js'
import type { IpvsMode, IpvsState } from './ipvs/ipvs-mode.js'
import { ipvsSettings } from './ipvs/ipvs-options.js'
import { userspaceSettings } from './userspace/userspace-options.js'
import { isProxyMode, PROXY_MODE_NAMES, PROXY_MODES, SECTION_KEYS, type ModeSections, type ModeView, type ProxyMode } from './table.js'
import { SvcplaneError, SvcplaneTypeError } from '../errors.js'

export interface ProxierOptions extends Omit<CommonProxierOptions, 'mode' | 'iptables'>, ModeSections {
  /** kube-proxy's --proxy-mode. */
  mode: ProxyMode
}

/** Where the options that now sit under a mode's section used to be, for the error message. */
const MOVED_KEYS: Record<string, string> = {
  masqueradeBit: 'iptables.masqueradeBit',
  localhostNodePorts: 'iptables.localhostNodePorts',
  nfacct: 'iptables.nfacct',
  randomFully: 'iptables.randomFully',
  masqueradeMark: 'iptables.masqueradeMark',
  conntrackTCPLiberal: 'iptables.conntrackTCPLiberal',
  largeClusterEndpointsThreshold: 'iptables.largeClusterEndpointsThreshold',
  scheduler: 'native.scheduler',
  capacity: 'native.capacity',
}

function checkedOptions(options: ProxierOptions): ProxierOptions {
  if (typeof options !== 'object' || options === null) throw new SvcplaneTypeError(`Proxier options must be an object, got ${show(options)}`)
  rejectUnknownKeys('Proxier options', options, [...COMMON_OPTION_KEYS, ...Object.keys(SECTION_KEYS)], MOVED_KEYS)
  if (!isProxyMode(options.mode)) {
    throw new SvcplaneTypeError(`Proxier options: mode must be one of ${PROXY_MODE_NAMES.map((m) => JSON.stringify(m)).join(', ')}, got ${show(options.mode)}`)
  }
  return options
}

export class Proxier extends ProxierCore<ModeView> {
  private readonly restoreWriter: ModelRestoreWriter

  constructor(options: ProxierOptions) {
    const given = checkedOptions(options)
    const resolved = resolveOptions(given)
    // Checked whatever the mode: iptablesRestore() renders the iptables section in any mode.
    const iptables = iptablesExtraOptions(given.iptables)
    nftablesSettings(given.nftables)
    ipvsSettings(given.ipvs)
    userspaceSettings(given.userspace)
    super(resolved, (model) => PROXY_MODES[given.mode].create(model, resolved, given))
    this.restoreWriter = new ModelRestoreWriter(this.state, iptables)
    this.addSyncListener(this.restoreWriter)
  }

  /** The native Dataplane, in mode 'native' (shorthand for inspect().dataplane). */
  get dataplane() {
    const view = this.inspect()
    return view.mode === 'native' ? view.dataplane : undefined
  }

  /** The iptables mode (rulesets, evaluator, per-rule counters, conntrack), in mode 'iptables'. */
  get iptables(): IptablesMode | undefined {
    const view = this.inspect()
    return view.mode === 'iptables' ? view.iptables : undefined
  }

  /** The nftables mode (tables, transactions, conntrack), in mode 'nftables'. */
  get nftables(): NftablesMode | undefined {
    const view = this.inspect()
    return view.mode === 'nftables' ? view.nftables : undefined
  }

  private requireNftables(method: string): NftablesMode {
    const n = this.nftables
    if (n === undefined) {
      throw new SvcplaneError('WRONG_MODE', `proxier.${method}() needs mode 'nftables' (this Proxier runs mode ${JSON.stringify(this.options.mode)})`)
    }
    return n
  }

  /**
   * nftables mode: the kube-proxy table (`ip`, and `ip6` when IPv6 is served) as the syncs left
   * it, in knftables' dump form (`add table/chain/set/map/rule/element` lines) that `nft -f`
   * loads into an empty namespace. `family` picks one table.
   */
  nftablesRuleset(family?: 'IPv4' | 'IPv6'): string {
    return this.requireNftables('nftablesRuleset').ruleset(family)
  }

  /**
   * nftables mode: what the last sync() sent to `nft`, one operation a line (`add`, `flush`,
   * `delete`, element adds and deletes); "" before the first sync. kube-proxy deletes stale
   * chains in a transaction of its own first: `proxier.nftables.lastSync().staleChainDeletion`.
   */
  nftablesTransaction(family?: 'IPv4' | 'IPv6'): string {
    return this.requireNftables('nftablesTransaction').transaction(family)
  }

  /** The ipvs mode (IPVS table, ipsets, rules), in mode 'ipvs'. */
  get ipvs(): IpvsMode | undefined {
    const view = this.inspect()
    return view.mode === 'ipvs' ? view.ipvs : undefined
  }

  /**
   * Mode 'ipvs': the virtual servers with their real servers, the ipsets, the iptables rules
   * and kube-ipvs0's addresses, as kube-proxy's ipvs proxier programs them. Other modes throw
   * (code WRONG_MODE).
   */
  ipvsState(): IpvsState {
    const mode = this.ipvs
    if (mode === undefined) {
      throw new SvcplaneError('WRONG_MODE', `ipvsState() needs mode "ipvs"; this Proxier runs mode ${JSON.stringify(this.options.mode)}`)
    }
    return mode.state()
  }

  /**
   * kube-proxy's iptables-restore input for the current state, in any proxy mode: what the
   * last sync() writes. Full sync by default; `{ partial: true }` gives kube-proxy's
   * partial-sync text (KEP-3453): the chains of the Services that sync changed, the top-level
   * chains, and `-X` for the chains it made unused. No side effects.
   */
  iptablesRestore(request: IptablesRestoreRequest = {}): string {
    return this.restoreWriter.render(request)
  }
}
