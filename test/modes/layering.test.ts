// The layering of DESIGN.md, checked on the sources: data flows down, nothing below imports
// from above. lib/proxy imports no mode and no consumer; only lib/modes knows every mode.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const LIB = join(__dirname, '..', '..', 'lib')

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The lib/ folders a file imports from ("proxy", "dataplane", ...). */
function importedFolders(file: string): Set<string> {
  const out = new Set<string>()
  const text = readFileSync(file, 'utf8')
  for (const m of text.matchAll(/^(?:import|export)\b[^'"]*?from '(\.[^']+)'|^import '(\.[^']+)'/gm)) {
    const target = relative(LIB, join(file, '..', m[1] ?? m[2]!))
    if (!target.startsWith('..')) out.add(target.split('/')[0]!)
  }
  return out
}

/** Folder -> the lib/ folders it must never import. */
const FORBIDDEN: Record<string, string[]> = {
  util: ['k8s', 'proxy', 'modes', 'iptables', 'nftables', 'dataplane', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  k8s: ['proxy', 'modes', 'iptables', 'nftables', 'dataplane', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  proxy: ['modes', 'iptables', 'nftables', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  iptables: ['modes', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  ipvs: ['modes', 'nftables', 'dataplane', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  nftables: ['modes', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  dataplane: ['k8s', 'proxy', 'modes', 'iptables', 'nftables', 'cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
  modes: ['cli', 'doctor', 'watch', 'metrics', 'pcap'],
  compare: ['cli', 'doctor', 'watch', 'metrics', 'pcap', 'service-proxy'],
}

t.test('no layer imports from a layer above it', async (t) => {
  for (const file of sources(LIB)) {
    const folder = relative(LIB, file).split('/')[0]!
    const forbidden = FORBIDDEN[folder]
    if (forbidden === undefined) continue
    const bad = [...importedFolders(file)].filter((f) => forbidden.includes(f))
    t.same(bad, [], relative(LIB, file))
  }
})

t.test('no registries or side-effect imports wire the modes', async (t) => {
  const wiring = ['proxy', 'modes', 'iptables', 'nftables', 'dataplane', 'doctor', 'index.ts']
  for (const file of sources(LIB).filter((f) => wiring.includes(relative(LIB, f).split('/')[0]!))) {
    const text = readFileSync(file, 'utf8')
    t.notMatch(text, /registerProxyMode|registerIptablesRestoreWriter|declare module/, relative(LIB, file))
    t.notMatch(text, /^import '\.[^']*'/m, `${relative(LIB, file)}: no side-effect import`)
  }
})
