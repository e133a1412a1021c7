// The iptables side of a real node, as kube-proxy's iptables proxier drives it: features probed
// first (MASQUERADE --random-fully by the iptables version, nfacct counters when the nfacct
// tool can create them), the jump rules from the built-in chains ensured with -C / -I, and the
// rule text written with `iptables-restore --noflush`, which is atomic per table: a refused
// restore leaves the previous rules in place.
import { renderJumpRules } from '../iptables/kube-proxy/render.js'
import { tokenizeLine } from '../iptables/save/tokenize.js'
import { runChecked, runTool } from './tool.js'

/** Which iptables binaries: the distribution's choice, or one backend explicitly. */
export type IptablesBackend = 'iptables' | 'iptables-nft' | 'iptables-legacy'
export const IPTABLES_BACKENDS: readonly IptablesBackend[] = ['iptables', 'iptables-nft', 'iptables-legacy']

export interface IptablesFeatures {
  /** `iptables -V` as printed, e.g. "iptables v1.8.9 (nf_tables)". */
  version: string
  /** MASQUERADE --random-fully (iptables >= 1.6.2, kube-proxy's check). */
  randomFully: boolean
  /** kube-proxy's nfacct counters exist, so its `-m nfacct` rules load. */
  nfacct: boolean
}

/** The nfacct counters kube-proxy's rules name. */
const NFACCT_COUNTERS = ['localhost_nps_accepted_pkts', 'ct_state_invalid_dropped_pkts']

/** Per-service nat chains kube-proxy deletes when no rule of its own uses them any more. */
const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP|XLB)-/

/**
 * Every chain any svcplane mode (iptables, and the userspace mode's portals) writes: what
 * cleanup removes, with every jump to it from a built-in chain.
 */
const OWNED_CHAINS: Record<'nat' | 'filter', RegExp> = {
  nat: /^KUBE-(SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|PROXY-CANARY|PORTALS-CONTAINER|PORTALS-HOST|NODEPORT-CONTAINER|NODEPORT-HOST|(SVC|SVL|EXT|FW|SEP|XLB)-[A-Z0-9]+)$/,
  filter: /^KUBE-(SERVICES|EXTERNAL-SERVICES|FORWARD|NODEPORTS|PROXY-FIREWALL|FIREWALL|PROXY-CANARY|NODEPORT-NON-LOCAL)$/,
}

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])

function versionAtLeast(text: string, want: [number, number, number]): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(text)
  if (!m) return false
  const got = [Number(m[1]), Number(m[2]), Number(m[3])]
  for (let i = 0; i < 3; i++) if (got[i] !== want[i]) return got[i]! > want[i]!
  return true
}

/** The chains each table of an iptables-save text declares. */
export function savedChains(save: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  let table: Set<string> | undefined
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) out.set(line.slice(1).trim(), (table = new Set()))
    else if (line.startsWith(':') && table) table.add(line.slice(1).split(' ')[0]!)
  }
  return out
}

/**
 * A full restore text plus what kube-proxy adds from the kernel's state: every per-service nat
 * chain the kernel has that the text neither writes nor deletes is flushed and deleted (`-X`),
 * so a restart takes over what a previous run left.
 */
export function withStaleChainsDeleted(text: string, kernelNatChains: Iterable<string>): string {
  const natStart = text.indexOf('*nat\n')
  if (natStart < 0) return text
  const commit = text.indexOf('COMMIT\n', natStart)
  const nat = text.slice(natStart, commit)
  const written = new Set([...nat.matchAll(/^:(\S+)/gm)].map((m) => m[1]!))
  const stale = [...kernelNatChains].filter((c) => SERVICE_CHAIN.test(c) && !written.has(c))
  if (stale.length === 0) return text
  const head = text.slice(0, natStart + '*nat\n'.length)
  const body = text.slice(natStart + '*nat\n'.length, commit)
  return head + stale.map((c) => `:${c} - [0:0]\n`).join('') + body + stale.map((c) => `-X ${c}\n`).join('') + text.slice(commit)
}

/**
 * The restore text that removes everything svcplane wrote to one table of an iptables-save
 * text: `-D` for each jump from a built-in chain to an owned chain, then every owned chain
 * flushed and deleted. "" when nothing is left. `only` narrows it to the owned chains it matches
 * (one mode's).
 */
export function cleanupText(save: string, only?: RegExp): string {
  let out = ''
  let table = ''
  let lines: string[] = []
  let owned: string[] = []
  const flush = () => {
    if (table && (lines.length > 0 || owned.length > 0)) out += `*${table}\n${owned.map((c) => `:${c} - [0:0]`).concat(lines, owned.map((c) => `-X ${c}`)).join('\n')}\nCOMMIT\n`
    lines = []
    owned = []
  }
  const pattern = () => {
    const base = OWNED_CHAINS[table as 'nat' | 'filter'] as RegExp | undefined
    return base === undefined ? undefined : { test: (c: string) => base.test(c) && (only?.test(c) ?? true) }
  }
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      flush()
      table = line.slice(1).trim()
    } else if (line.startsWith(':') && pattern()?.test(line.slice(1).split(' ')[0]!)) {
      owned.push(line.slice(1).split(' ')[0]!)
    } else if (line.startsWith('-A ') && pattern()) {
      const args = tokenizeLine(line, 0).map((t) => t.text)
      const target = args[args.indexOf('-j') + 1]
      if (BUILTIN_CHAINS.has(args[1]!) && args.includes('-j') && target !== undefined && pattern()!.test(target)) lines.push(line.replace(/^-A /, '-D '))
    }
  }
  flush()
  return out
}

export type IPFamily = 'IPv4' | 'IPv6'

export class IptablesNode {
  private readonly prefix: string

  constructor(
    readonly backend: IptablesBackend = 'iptables',
    readonly family: IPFamily = 'IPv4',
  ) {
    const base = family === 'IPv6' ? 'ip6tables' : 'iptables'
    this.prefix = backend === 'iptables' ? base : backend.replace('iptables', base)
  }

  private get iptables() {
    return this.prefix
  }

  private get restore() {
    return `${this.prefix}-restore`
  }

  private get save() {
    return `${this.prefix}-save`
  }

  /** Probes what kube-proxy probes before its first sync. */
  async probe(): Promise<IptablesFeatures> {
    const version = (await runChecked(this.iptables, ['-V'])).trim()
    let nfacct = false
    const tool = await runTool('nfacct', ['list'])
    if (tool.status === 0) {
      // Creating a counter that exists fails; what matters is that each one exists afterwards.
      for (const name of NFACCT_COUNTERS) await runTool('nfacct', ['add', name])
      const list = await runTool('nfacct', ['list'])
      nfacct = NFACCT_COUNTERS.every((n) => list.stdout.includes(n))
    }
    return { version, randomFully: versionAtLeast(version, [1, 6, 2]), nfacct }
  }

  /** kube-proxy's EnsureChain + EnsureRule(Prepend) for every jump from a built-in chain. */
  async ensureJumps(localhostNodePorts: boolean): Promise<void> {
    const jumps = renderJumpRules({ ipFamily: this.family === 'IPv6' ? 6 : 4, localhostNodePorts })
    for (const table of ['filter', 'nat'] as const) {
      // Listed top first; inserting at the top in reverse order leaves them in that order.
      for (const rule of [...jumps[table]].reverse()) await this.ensureJump(table, `-I ${rule.replace(/^-A /, '')}`)
    }
  }

  /**
   * One jump from a built-in chain, as an `-I CHAIN ...` (prepend) or `-A CHAIN ...` (append)
   * rule: its target chain created when missing, the rule added unless `-C` finds it.
   */
  async ensureJump(table: 'nat' | 'filter', rule: string): Promise<void> {
    const [op, chain, ...spec] = tokenizeLine(rule, 0).map((t) => t.text)
    const target = spec[spec.indexOf('-j') + 1]!
    const made = await runTool(this.iptables, ['-w', '5', '-t', table, '-N', target])
    if (made.status !== 0 && !/exists/i.test(made.stderr)) await runChecked(this.iptables, ['-w', '5', '-t', table, '-N', target])
    const present = await runTool(this.iptables, ['-w', '5', '-t', table, '-C', chain!, ...spec])
    if (present.status !== 0) await runChecked(this.iptables, ['-w', '5', '-t', table, op === '-A' ? '-A' : '-I', chain!, ...spec])
  }

  /** The kernel's chains per table (iptables-save). */
  async chains(): Promise<Map<string, Set<string>>> {
    return savedChains(await runChecked(this.save, []))
  }

  /** Writes restore text with --noflush; throws APPLY_FAILED with the tool's stderr. */
  async restoreText(text: string): Promise<void> {
    await runChecked(this.restore, ['-w', '5', '--noflush'], text)
  }

  /** A full sync's text, deleting the stale per-service chains the kernel still has. */
  async restoreFull(text: string): Promise<void> {
    const nat = (await this.chains()).get('nat') ?? new Set()
    await this.restoreText(withStaleChainsDeleted(text, nat))
  }

  /** Removes every jump and chain svcplane installed in this family's tables (or those `only` matches); idempotent. */
  async cleanup(only?: RegExp): Promise<void> {
    const text = cleanupText(await runChecked(this.save, []), only)
    if (text !== '') await this.restoreText(text)
  }
}
