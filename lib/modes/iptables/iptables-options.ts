// The iptables section of the Proxier options (`iptables: { ... }`), as in a
// KubeProxyConfiguration. masqueradeBit and localhostNodePorts are read by the model in every
// mode (lib/proxy/options.ts); the rest describe the node's iptables for the renderer.
import { show } from '../../util/show.js'
import type { IptablesExtraOptions } from '../../iptables/kube-proxy/from-model.js'
import type { ModelIptablesOptions } from '../../proxy/options.js'
import { rejectUnknownKeys } from '../../util/known-keys.js'
import { SvcplaneTypeError, SvcplaneRangeError } from '../../errors.js'

export interface IptablesModeOptions extends ModelIptablesOptions, IptablesExtraOptions {}

export const IPTABLES_OPTION_KEYS: readonly string[] = [
  'masqueradeBit', 'localhostNodePorts', 'nfacct', 'randomFully', 'masqueradeMark', 'conntrackTCPLiberal', 'largeClusterEndpointsThreshold',
]

/** The renderer's options from the iptables section, checked (the model checks its two keys). */
export function iptablesExtraOptions(section: IptablesModeOptions | undefined): IptablesExtraOptions {
  const o = (section ?? {}) as Record<string, unknown>
  if (typeof o !== 'object' || o === null) throw new SvcplaneTypeError(`Proxier options: iptables must be an object, got ${show(o)}`)
  rejectUnknownKeys('Proxier options: iptables', o, IPTABLES_OPTION_KEYS)
  const out: IptablesExtraOptions = {}
  for (const k of ['nfacct', 'randomFully', 'conntrackTCPLiberal'] as const) {
    if (o[k] === undefined) continue
    if (typeof o[k] !== 'boolean') throw new SvcplaneTypeError(`Proxier options: iptables.${k} must be a boolean, got ${show(o[k])}`)
    out[k] = o[k] as boolean
  }
  if (o.masqueradeMark !== undefined) {
    if (typeof o.masqueradeMark !== 'string' || !/^0x[0-9a-fA-F]{1,8}$/.test(o.masqueradeMark)) {
      throw new SvcplaneTypeError(`Proxier options: iptables.masqueradeMark must be a hex mark like "0x4000", got ${show(o.masqueradeMark)}`)
    }
    out.masqueradeMark = o.masqueradeMark
  }
  const t = o.largeClusterEndpointsThreshold
  if (t !== undefined) {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) {
      throw new SvcplaneRangeError(`Proxier options: iptables.largeClusterEndpointsThreshold must be an integer >= 0, got ${show(t)}`)
    }
    out.largeClusterEndpointsThreshold = t
  }
  return out
}
