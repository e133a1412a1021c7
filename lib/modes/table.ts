// The composition root (kube-proxy's createProxier): one static table from a --proxy-mode name
// to the mode that implements it. lib/proxy never imports a mode; this is the only place
// that knows them all. Adding a mode: its folder under lib/modes, its options section, a row here.
import type { ProxyModelView } from '../proxy/model.js'
import type { ResolvedOptions } from '../proxy/options.js'
import type { ProxyModeImpl } from '../proxy/proxy-mode.js'
import { IPTABLES_OPTION_KEYS, iptablesExtraOptions, type IptablesModeOptions } from './iptables/iptables-options.js'
import { IptablesMode, type IptablesView } from './iptables/iptables-mode.js'
import { NATIVE_OPTION_KEYS, nativeSettings, type NativeModeOptions } from './native/native-options.js'
import { NativeMode, type NativeView } from './native/native-mode.js'
import { NFTABLES_OPTION_KEYS, nftablesSettings, type NftablesModeOptions } from './nftables/nftables-options.js'
import { NftablesMode, type NftablesView } from './nftables/nftables-mode.js'
import { IPVS_OPTION_KEYS, ipvsSettings, type IpvsModeOptions } from './ipvs/ipvs-options.js'
import { IpvsMode, type IpvsView } from './ipvs/ipvs-mode.js'
import { USERSPACE_OPTION_KEYS, userspaceSettings, type UserspaceModeOptions } from './userspace/userspace-options.js'
import { UserspaceMode, type UserspaceView } from './userspace/userspace-mode.js'

/** Every mode's options section, by the section's name (a KubeProxyConfiguration's layout). */
export interface ModeSections {
  native?: NativeModeOptions
  iptables?: IptablesModeOptions
  nftables?: NftablesModeOptions
  ipvs?: IpvsModeOptions
  userspace?: UserspaceModeOptions
}

/** What `proxier.inspect()` returns: the running mode's own state, told apart by `mode`. */
export type ModeView = NativeView | IptablesView | NftablesView | IpvsView | UserspaceView

interface ModeEntry {
  /** Builds the mode; `sections` are the options as given (each mode checks its own section). */
  create(model: ProxyModelView, options: ResolvedOptions, sections: ModeSections): ProxyModeImpl<ModeView>
}

export const PROXY_MODES = {
  native: {
    create: (model, options, sections) => new NativeMode(model, options, nativeSettings(sections.native)),
  },
  iptables: {
    create: (model, options, sections) => new IptablesMode(model, options, iptablesExtraOptions(sections.iptables)),
  },
  nftables: {
    create: (model, options, sections) => new NftablesMode(model, options, nftablesSettings(sections.nftables)),
  },
  ipvs: {
    create: (model, options, sections) => new IpvsMode(model, options, ipvsSettings(sections.ipvs), iptablesExtraOptions(sections.iptables)),
  },
  userspace: {
    create: (model, options, sections) => new UserspaceMode(model, options, userspaceSettings(sections.userspace)),
  },
} satisfies Record<string, ModeEntry>

export type ProxyMode = keyof typeof PROXY_MODES

export const PROXY_MODE_NAMES = Object.keys(PROXY_MODES) as ProxyMode[]

/** Section name -> its keys. A section is checked whatever the mode (iptables text is rendered in any). */
export const SECTION_KEYS: Readonly<Record<keyof ModeSections, readonly string[]>> = {
  native: NATIVE_OPTION_KEYS,
  iptables: IPTABLES_OPTION_KEYS,
  nftables: NFTABLES_OPTION_KEYS,
  ipvs: IPVS_OPTION_KEYS,
  userspace: USERSPACE_OPTION_KEYS,
}

export function isProxyMode(name: unknown): name is ProxyMode {
  return typeof name === 'string' && Object.hasOwn(PROXY_MODES, name)
}
