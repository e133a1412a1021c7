// The objects of one nftables table and the operations on them, written the way knftables
// writes them for `nft -f` (and the way its Fake dumps a table): one operation per line,
// "add chain ip kube-proxy services", "add element ip kube-proxy cluster-ips { 172.30.0.41 }".

export type NftFamily = 'ip' | 'ip6'
export type NftVerb = 'add' | 'flush' | 'delete'

export interface NftTableObject {
  kind: 'table'
  comment?: string
}

export interface NftChainObject {
  kind: 'chain'
  name: string
  /** Base chains only: type, hook and numeric priority. */
  base?: { type: 'filter' | 'nat'; hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting'; priority: number }
  comment?: string
}

export interface NftSetObject {
  kind: 'set' | 'map'
  name: string
  /** "ipv4_addr", "ipv4_addr . inet_proto . inet_service : verdict". */
  type?: string
  flags?: string[]
  /** Seconds. */
  timeout?: number
  comment?: string
}

export interface NftRuleObject {
  kind: 'rule'
  chain: string
  rule: string
  comment?: string
}

export interface NftElementObject {
  kind: 'element'
  /** Whether the element belongs to a set or a map (the text is the same). */
  container: 'set' | 'map'
  name: string
  key: string[]
  /** Maps only: the verdict ("goto service-...", "drop"). */
  value?: string[]
  comment?: string
}

export type NftObject = NftTableObject | NftChainObject | NftSetObject | NftRuleObject | NftElementObject

export interface NftOperation {
  verb: NftVerb
  object: NftObject
}

const quote = (s: string) => JSON.stringify(s)

function chainBody(c: NftChainObject): string {
  const parts: string[] = []
  if (c.base !== undefined) parts.push(`type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority} ;`)
  if (c.comment !== undefined) parts.push(`comment ${quote(c.comment)} ;`)
  return parts.length === 0 ? '' : ` { ${parts.join(' ')} }`
}

function setBody(s: NftSetObject): string {
  const parts: string[] = []
  if (s.type !== undefined) parts.push(`type ${s.type} ;`)
  if (s.flags !== undefined && s.flags.length > 0) parts.push(`flags ${s.flags.join(',')} ;`)
  if (s.timeout !== undefined) parts.push(`timeout ${s.timeout}s ;`)
  if (s.comment !== undefined) parts.push(`comment ${quote(s.comment)} ;`)
  return parts.length === 0 ? '' : ` { ${parts.join(' ')} }`
}

/** The text of one operation, as `nft -f` reads it. */
export function operationText(op: NftOperation, family: NftFamily, table: string): string {
  const o = op.object
  const head = `${op.verb} ${o.kind} ${family} ${table}`
  switch (o.kind) {
    case 'table':
      return op.verb === 'add' && o.comment !== undefined ? `${head} { comment ${quote(o.comment)} ; }` : head
    case 'chain':
      return `${head} ${o.name}${op.verb === 'add' ? chainBody(o) : ''}`
    case 'set':
    case 'map':
      return `${head} ${o.name}${op.verb === 'add' ? setBody(o) : ''}`
    case 'rule':
      return `${head} ${o.chain} ${o.rule}${o.comment !== undefined ? ` comment ${quote(o.comment)}` : ''}`
    case 'element': {
      let body = o.key.join(' . ')
      if (op.verb === 'add') {
        if (o.comment !== undefined) body += ` comment ${quote(o.comment)}`
        if (o.value !== undefined) body += ` : ${o.value.join(' . ')}`
      }
      return `${op.verb} element ${family} ${table} ${o.name} { ${body} }`
    }
  }
}

export const elementKey = (key: readonly string[]): string => key.join(' . ')

/** The chains a rule or verdict names with jump/goto (also inside `vmap { ... }`). */
export function chainsReferenced(text: string): string[] {
  return [...text.matchAll(/\b(?:jump|goto) ([^\s,}]+)/g)].map((m) => m[1]!)
}

/** The named sets and maps a rule uses ("@cluster-ips"). */
export function setsReferenced(text: string): string[] {
  return [...text.matchAll(/@([^\s,}]+)/g)].map((m) => m[1]!)
}
