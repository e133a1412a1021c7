// The doctor on a node's `nft list ruleset` (kube-proxy's nftables mode): what the kube-proxy
// table itself shows is wrong, without the cluster's objects. Services without endpoints (the
// no-endpoint maps), service chains that reach no endpoint, endpoint chains without a DNAT,
// base chains that do not jump where kube-proxy's do,
// a missing masquerade, packets the counters say were refused, and what the parser could not
// interpret (the evaluator cannot judge those rules).
import { parseNftRuleset } from '../nftables/nft/apply.js'
import { servicePortFromNftChain } from '../nftables/nft/kube-proxy-names.js'
import { JUMP_CHAINS } from '../nftables/kube-proxy/proxier-sync.js'
import { exprText, ruleText } from '../nftables/nft/serialize.js'
import { findUnknownNft } from '../nftables/nft/unknown.js'
import type { NftChain, NftElement, NftExpr, NftRule, NftRuleset, NftStatement, NftTable } from '../nftables/nft/types.js'
import { mergeFindings, type Finding, type FindingCode, type Severity } from './findings.js'
import type { DoctorReport } from './diagnose.js'

const KUBE_PROXY_TABLE = 'kube-proxy'
const NO_ENDPOINT_MAPS = ['no-endpoint-services', 'no-endpoint-nodeports'] as const

/** The protocol a finding names (from a chain name or a map key), upper case as the Service spells it. */
function protocolIn(text: string): string {
  return /(?:^|[\s/.])(tcp|udp|sctp)(?:$|[\s/.])/.exec(text)?.[1]?.toUpperCase() ?? ''
}

function finding(code: FindingCode, severity: Severity, servicePort: string, what: string, why: string, fix: string): Finding {
  const service = servicePort.replace(/:[^:]*$/, '')
  return { code, severity, servicePort, service, protocol: servicePort === '' ? '' : protocolIn(what), nodes: [], what, why, fix }
}

/** Every jump/goto target of a statement, anonymous verdict maps included. */
function verdictTargets(s: NftStatement): string[] {
  if (s.kind === 'verdict') return s.chain !== undefined ? [s.chain] : []
  if (s.kind === 'vmap' && s.map.kind === 'set') return s.map.elements.flatMap((e) => dataTargets(e))
  return []
}

function dataTargets(e: NftElement): string[] {
  const d = e.data as NftExpr | undefined
  return d !== undefined && d.kind === 'verdict' && d.chain !== undefined ? [d.chain] : []
}

function where(t: NftTable, chain: NftChain, rule?: NftRule): string {
  const handle = rule?.handle !== undefined ? ` (handle ${rule.handle})` : ''
  return `${t.family} ${t.name} chain ${chain.name}${rule !== undefined ? ` rule "${ruleText(rule)}"` : ''}${handle}`
}

function checkTable(t: NftTable, out: Finding[]): Set<string> {
  const servicePorts = new Set<string>()
  const label = `${t.family} ${t.name}`
  for (const chain of t.chains.values()) {
    const sp = servicePortFromNftChain(chain.name)
    if (sp !== undefined) servicePorts.add(sp)
    const targets = chain.rules.flatMap((r) => r.statements.flatMap((s) => verdictTargets(s)))
    if (sp !== undefined && (chain.name.startsWith('service-') || chain.name.startsWith('local-'))) {
      if (!targets.some((target) => target.startsWith('endpoint-'))) {
        out.push(finding('nft-service-without-endpoints', 'error', sp ?? '', `${label} chain ${chain.name} reaches no endpoint chain`,
          'kube-proxy writes a service chain only for a port with endpoints, ending in `numgen random mod N vmap { ... : goto endpoint-... }`; this one DNATs nothing, so new connections pass through un-NATed',
          'restart kube-proxy (its next full sync rewrites the chain); check its log for failed nft transactions'))
      }
    }
    if (sp !== undefined && chain.name.startsWith('endpoint-')) {
      if (!chain.rules.some((r) => r.statements.some((s) => s.kind === 'nat' && s.type === 'dnat'))) {
        out.push(finding('nft-endpoint-without-dnat', 'error', sp ?? '', `${label} chain ${chain.name} has no dnat rule`,
          'an endpoint chain must end in `dnat to ENDPOINT`; packets sent here keep the service address and reach no endpoint',
          'restart kube-proxy so it rewrites the table'))
      }
    }
    for (const r of chain.rules) {
      const counter = r.statements.find((s) => s.kind === 'counter')
      const refuses = r.statements.some((s) => s.kind === 'reject' || (s.kind === 'verdict' && s.verdict === 'drop'))
      if (counter?.kind === 'counter' && refuses && counter.packets > 0) {
        out.push(finding('nft-refused-packets', 'info', sp ?? '', `${counter.packets} packet(s), ${counter.bytes} bytes, refused by ${where(t, chain, r)}`,
          'the rule\'s counter: new connections were rejected or dropped there (no endpoints, an unserved port or unallocated address, a source outside loadBalancerSourceRanges)',
          'see which with `svcplane explain --nft-ruleset FILE --src ... --dst ...`; the counter resets with `nft reset counters`'))
      }
    }
  }
  for (const [dst, src] of JUMP_CHAINS) {
    const from = t.chains.get(src)
    const ok = from?.base !== undefined && from.rules.some((r) => r.statements.some((s) => verdictTargets(s).includes(dst)))
    if (!ok) {
      out.push(finding('nft-missing-jump', 'error', '', `${label}: ${from === undefined ? `base chain ${src} is missing` : `${src} does not jump to ${dst}`}`,
        `kube-proxy hooks its table by jumping from ${src} to ${dst}; without it the kernel never runs ${dst}`,
        'restart kube-proxy so it rewrites the table (another tool may have flushed the chain)'))
    }
  }
  const masq = t.chains.get('masquerading')
  const mark = t.chains.get('mark-for-masquerade')
  const masquerades = masq?.rules.some((r) => r.statements.some((s) => s.kind === 'nat' && s.type === 'masquerade')) === true
  const marks = mark?.rules.some((r) => r.statements.some((s) => s.kind === 'assign' && s.target.kind === 'meta')) === true
  if (!masquerades || !marks) {
    const missing = !masquerades ? `chain masquerading ${masq === undefined ? 'is missing' : 'has no masquerade rule'}` : `chain mark-for-masquerade ${mark === undefined ? 'is missing' : 'sets no mark'}`
    out.push(finding('nft-missing-masquerade', 'error', '', `${label}: ${missing}`,
      'kube-proxy marks the packets that need SNAT (from outside the pod CIDR, hairpin, external traffic under Cluster policy) and masquerades them in nat-postrouting; without it the endpoint replies to the client directly and the client drops the reply',
      'restart kube-proxy so it rewrites the table'))
  }
  for (const name of NO_ENDPOINT_MAPS) {
    const map = t.sets.get(name)
    if (map === undefined) continue
    const byPort = new Map<string, { frontends: string[]; verdicts: Set<string> }>()
    for (const e of map.elements) {
      const sp = e.comment ?? ''
      if (sp !== '') servicePorts.add(sp)
      const entry = byPort.get(sp) ?? { frontends: [], verdicts: new Set<string>() }
      entry.frontends.push(exprText(e.key).replace(/ \. /g, ' '))
      const d = e.data as NftExpr | undefined
      entry.verdicts.add(d?.kind === 'verdict' ? (d.verdict === 'drop' ? 'dropped' : 'rejected') : 'refused')
      byPort.set(sp, entry)
    }
    for (const [sp, e] of byPort) {
      const dropped = e.verdicts.has('dropped')
      out.push(finding('nft-no-endpoints', 'warning', sp, `${label} map ${name}: new connections to ${e.frontends.join(', ')} are ${[...e.verdicts].join(' or ')}`,
        dropped ? 'the port has endpoints, but none on this node under externalTrafficPolicy/internalTrafficPolicy Local: kube-proxy drops the traffic' : 'the port has no ready (or serving terminating) endpoints: kube-proxy rejects new connections',
        dropped ? 'run an endpoint on this node, send the traffic to a node that has one, or use the Cluster policy' : 'check the Service\'s selector and its pods\' readiness (`kubectl get endpointslices -l kubernetes.io/service-name=NAME`)'))
    }
  }
  return servicePorts
}

export interface NftRulesetReport extends DoctorReport {
  /** The kube-proxy tables found ("ip kube-proxy", "ip6 kube-proxy"). */
  tables: string[]
}

/** The doctor's findings on a node's `nft list ruleset` (text or parsed), as a report `formatReport` prints. */
export function checkNftRuleset(input: string | NftRuleset, node = 'the ruleset\'s node'): NftRulesetReport {
  const rs = typeof input === 'string' ? parseNftRuleset(input) : input
  const findings: Finding[] = []
  const servicePorts = new Set<string>()
  const tables: string[] = []
  for (const t of rs.tables.values()) {
    if (t.name !== KUBE_PROXY_TABLE || (t.family !== 'ip' && t.family !== 'ip6')) continue
    tables.push(`${t.family} ${t.name}`)
    for (const sp of checkTable(t, findings)) servicePorts.add(sp)
  }
  if (tables.length === 0) {
    const found = [...rs.tables.keys()]
    findings.push(finding('nft-no-kube-proxy-table', 'error', '', `no kube-proxy table (tables: ${found.length > 0 ? found.join(', ') : 'none'})`,
      'kube-proxy\'s nftables mode keeps its rules in the tables `ip kube-proxy` and `ip6 kube-proxy`; the node runs another mode, or kube-proxy has not synced',
      'check kube-proxy\'s --proxy-mode and its log; in iptables mode, use `iptables-save` instead'))
  }
  for (const u of findUnknownNft(rs)) {
    findings.push(finding('nft-unknown-expression', 'info', servicePortFromNftChain(u.chain) ?? '', `line ${u.line}: ${u.table}${u.chain !== '' ? ` chain ${u.chain}` : ''}: "${u.text}" is not interpreted`,
      'the evaluator does not know this expression or statement; explain breaks such a rule (as if it did not match)', 'nothing to do for kube-proxy\'s own rules; other tools\' rules may change what a packet does'))
  }
  const services = new Set([...servicePorts].map((sp) => sp.replace(/:[^:]*$/, '')))
  return { nodes: [node], services: services.size, servicePorts: servicePorts.size, findings: mergeFindings(findings), staleFlows: [], clearCommands: [], tables }
}
