// `ipset save` for kube-proxy's sets: a create line with the parameters kube-proxy creates the
// set with (ipset.createSet: family, hashsize 1024, maxelem 65536; bitmap:port range 0-65535),
// then one add line per entry.
import { IPSET_INFO, ipsetName, type FamilyIpsets } from './ipsets.js'

export function formatIpsetSave(families: readonly FamilyIpsets[]): string {
  const lines: string[] = []
  for (const sets of families) {
    const family = sets.family === 'IPv6' ? 'inet6' : 'inet'
    for (const info of IPSET_INFO) {
      const name = ipsetName(info.name, sets.family)
      const params = info.type === 'bitmap:port' ? 'range 0-65535' : `family ${family} hashsize 1024 maxelem 65536`
      lines.push(`create ${name} ${info.type} ${params}`)
      for (const entry of sets.entries.get(info.name) ?? []) lines.push(`add ${name} ${entry}`)
    }
  }
  return lines.join('\n') + '\n'
}
