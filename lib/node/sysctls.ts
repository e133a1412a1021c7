// The sysctls a forwarding node needs, written under /proc/sys of the network namespace this
// process runs in (they are per namespace): forwarding, and route_localnet so NodePorts answer
// on 127.0.0.1 as kube-proxy's iptables mode arranges. Nothing else is touched.
import { readFileSync, writeFileSync } from 'node:fs'
import { SvcplaneError } from '../errors.js'

export interface SysctlNeeds {
  ipv4: boolean
  ipv6: boolean
  /** iptables mode with localhost NodePorts on IPv4 */
  routeLocalnet: boolean
}

/** The sysctls to set (key in dotted form, value) for these needs. */
export function neededSysctls(needs: SysctlNeeds): Array<[string, string]> {
  const out: Array<[string, string]> = []
  if (needs.ipv4) out.push(['net.ipv4.ip_forward', '1'])
  if (needs.ipv6) out.push(['net.ipv6.conf.all.forwarding', '1'])
  if (needs.routeLocalnet) out.push(['net.ipv4.conf.all.route_localnet', '1'])
  return out
}

/** Sets each sysctl unless it already holds the value; returns the ones changed. */
export function setSysctls(wanted: Array<[string, string]>, root = '/proc/sys'): string[] {
  const changed: string[] = []
  for (const [key, value] of wanted) {
    const path = `${root}/${key.replaceAll('.', '/')}`
    try {
      if (readFileSync(path, 'utf8').trim() === value) continue
      writeFileSync(path, value)
      changed.push(`${key}=${value}`)
    } catch (err) {
      throw new SvcplaneError('APPLY_FAILED', `cannot set ${key}=${value}: ${(err as Error).message}`, { cause: err })
    }
  }
  return changed
}
