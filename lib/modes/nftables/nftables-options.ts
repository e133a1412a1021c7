// The nftables section of the Proxier options (`nftables: { ... }`), as in a
// KubeProxyConfiguration's `nftables:` block. serviceCIDRs, nodePortAddresses and
// masqueradeAll are shared by every mode and sit at the top.
import { show } from '../../util/show.js'
import { rejectUnknownKeys } from '../../util/known-keys.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export interface NftablesModeOptions {
  /** Bit of the masquerade mark (0..31). Default: iptables.masqueradeBit, else 14 (0x4000). */
  masqueradeBit?: number
  /** The mark text in the rules, e.g. "0x4000"; default kube-proxy's %#08x of 1 << masqueradeBit ("0x00004000"). */
  masqueradeMark?: string
}

export interface NftablesSettings {
  masqueradeBit?: number
  masqueradeMark?: string
}

export const NFTABLES_OPTION_KEYS: readonly string[] = ['masqueradeBit', 'masqueradeMark']

export function nftablesSettings(section: NftablesModeOptions | undefined): NftablesSettings {
  const o = (section ?? {}) as Record<string, unknown>
  if (typeof o !== 'object' || o === null) throw new SvcplaneTypeError(`Proxier options: nftables must be an object, got ${show(o)}`)
  rejectUnknownKeys('Proxier options: nftables', o, NFTABLES_OPTION_KEYS)
  const out: NftablesSettings = {}
  const bit = o.masqueradeBit
  if (bit !== undefined) {
    if (typeof bit !== 'number' || !Number.isInteger(bit) || bit < 0 || bit > 31) {
      throw new SvcplaneRangeError(`Proxier options: nftables.masqueradeBit must be an integer 0..31, got ${show(bit)}`)
    }
    out.masqueradeBit = bit
  }
  if (o.masqueradeMark !== undefined) {
    if (typeof o.masqueradeMark !== 'string' || !/^0x[0-9a-fA-F]{1,8}$/.test(o.masqueradeMark)) {
      throw new SvcplaneTypeError(`Proxier options: nftables.masqueradeMark must be a hex mark like "0x4000", got ${show(o.masqueradeMark)}`)
    }
    out.masqueradeMark = o.masqueradeMark
  }
  return out
}
