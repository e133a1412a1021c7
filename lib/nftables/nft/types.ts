// The data model for nftables rulesets: what `nft -f` loads (the `add ...` command form that
// knftables writes) and what `nft list ruleset` prints (the block form). Both parse into the
// same tree; values are kept in a canonical spelling (addresses compressed, integers decimal,
// timeouts in seconds) so a ruleset read back from the kernel compares equal to the one loaded.

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev'
export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress'
export type NftChainType = 'filter' | 'nat' | 'route'

/** Verdicts as statements and as the data of a verdict map. */
export type NftVerdictName = 'accept' | 'drop' | 'continue' | 'return' | 'jump' | 'goto'

export interface NftVerdict {
  kind: 'verdict'
  verdict: NftVerdictName
  /** target of jump / goto */
  chain?: string
}

/** `ip saddr`, `ip6 daddr`, `th dport`, `tcp dport`, ... */
export interface NftPayloadExpr {
  kind: 'payload'
  protocol: string
  field: string
}

/** `meta l4proto`, `meta mark` (also spelled `mark`), `meta iifname` (`iifname`). */
export interface NftMetaExpr {
  kind: 'meta'
  key: string
}

/** `ct state`, `ct mark`, `ct status`. */
export interface NftCtExpr {
  kind: 'ct'
  key: string
}

/** `fib saddr type`, `fib daddr . iif type`. */
export interface NftFibExpr {
  kind: 'fib'
  /** the inputs joined by `.`: saddr, daddr, mark, iif, oif */
  flags: string[]
  /** type, oif, oifname */
  result: string
}

/** `numgen random mod N [offset M]`, `numgen inc mod N`. */
export interface NftNumgenExpr {
  kind: 'numgen'
  mode: 'random' | 'inc'
  mod: number
  offset?: number
}

/** `a . b . c` */
export interface NftConcatExpr {
  kind: 'concat'
  parts: NftExpr[]
}

/** `meta mark & 0x4000`, `meta mark | 0x4000` (also spelled and / or / xor). */
export interface NftBinopExpr {
  kind: 'binop'
  op: '&' | '|' | '^' | '<<' | '>>'
  left: NftExpr
  right: NftExpr
}

/**
 * A literal in canonical text: an address ("10.0.0.1", "fd00::1"), a prefix ("10.0.0.0/8"),
 * a range ("8000-8080"), an integer in decimal ("16384"), a symbol ("tcp", "new", "local"),
 * or a string that was quoted ("lo").
 */
export interface NftValue {
  kind: 'value'
  text: string
  quoted?: boolean
}

/** `established,related`: a comma list outside braces (flag types). */
export interface NftListExpr {
  kind: 'list'
  values: NftValue[]
}

/** An anonymous set or map: `{ 80, 443 }`, `{ 0 : goto a, 1 : goto b }`. */
export interface NftSetExpr {
  kind: 'set'
  elements: NftElement[]
}

/** `@name`: a named set or map. */
export interface NftSetRef {
  kind: 'setref'
  name: string
}

/** `EXPR map @m` / `EXPR map { k : v }`: a data lookup. */
export interface NftMapExpr {
  kind: 'map'
  key: NftExpr
  map: NftSetExpr | NftSetRef
}

/** An expression the parser does not interpret; its text is kept as written. */
export interface NftUnknownExpr {
  kind: 'unknown'
  text: string
}

export type NftExpr =
  | NftPayloadExpr
  | NftMetaExpr
  | NftCtExpr
  | NftFibExpr
  | NftNumgenExpr
  | NftConcatExpr
  | NftBinopExpr
  | NftValue
  | NftListExpr
  | NftSetExpr
  | NftSetRef
  | NftMapExpr
  | NftVerdict
  | NftUnknownExpr

export type NftRelOp = '==' | '!=' | '<' | '>' | '<=' | '>='

/** A set or map element: key, and for a map its data. */
export interface NftElement {
  key: NftExpr
  data?: NftExpr
  comment?: string
  /** seconds */
  timeout?: number
  /** seconds left, as `nft list` prints for elements with a timeout */
  expires?: number
  counter?: { packets: number; bytes: number }
}

export type NftStatement =
  | { kind: 'match'; left: NftExpr; op: NftRelOp; right: NftExpr }
  | { kind: 'vmap'; key: NftExpr; map: NftSetExpr | NftSetRef }
  | NftVerdict
  | { kind: 'counter'; packets: number; bytes: number }
  /** `meta mark set EXPR`, `ct mark set EXPR` */
  | { kind: 'assign'; target: NftMetaExpr | NftCtExpr; value: NftExpr }
  | NftNatStatement
  | { kind: 'reject'; with?: string }
  /** `update @s { ip saddr }`, `add @s { ip saddr timeout 10s }` */
  | { kind: 'dynset'; op: 'add' | 'update' | 'delete'; set: string; key: NftExpr; timeout?: number }
  /** a statement the parser does not interpret (log, limit, queue, ...), as written */
  | { kind: 'unknown'; text: string }

export interface NftNatStatement {
  kind: 'nat'
  type: 'dnat' | 'snat' | 'masquerade' | 'redirect'
  /** `dnat ip to ...` in an inet table */
  family?: 'ip' | 'ip6'
  addr?: NftExpr
  /** port or port range (a value), or undefined */
  port?: NftExpr
  /** fully-random, random, persistent */
  flags: string[]
}

export interface NftRule {
  statements: NftStatement[]
  comment?: string
  /** kernel handle, from `nft -a list` output */
  handle?: number
  /** 1-based source line */
  line: number
}

export interface NftBaseChain {
  type: NftChainType
  hook: NftHook
  /** numeric priority (named priorities resolved: dstnat = -100, filter = 0, ...) */
  priority: number
  /** the priority as written, when it was a name: "dstnat", "dstnat - 10" */
  priorityText?: string
  policy?: 'accept' | 'drop'
  device?: string
}

export interface NftChain {
  name: string
  base?: NftBaseChain
  comment?: string
  rules: NftRule[]
  handle?: number
  line: number
}

export interface NftSet {
  kind: 'set' | 'map'
  name: string
  /** key types, one per concatenated part: ['ipv4_addr', 'inet_proto', 'inet_service'] */
  keyType: string[]
  /** a map's data type: 'verdict', 'ipv4_addr', ... */
  dataType?: string
  /** interval, timeout, dynamic, constant */
  flags: string[]
  /** default element timeout, seconds */
  timeout?: number
  size?: number
  comment?: string
  elements: NftElement[]
  handle?: number
  /** declarations the parser keeps without interpreting (policy, gc-interval, auto-merge) */
  extra?: string[]
  line: number
}

export interface NftTable {
  family: NftFamily
  name: string
  comment?: string
  flags?: string[]
  /** insertion order is the order `nft list` prints */
  chains: Map<string, NftChain>
  sets: Map<string, NftSet>
  handle?: number
  line: number
}

export interface NftRuleset {
  /** keyed "family name", e.g. "ip kube-proxy" */
  tables: Map<string, NftTable>
}

/** One operation of an `nft -f` transaction. */
export type NftCommand =
  | { op: 'add' | 'create'; object: 'table'; table: NftTable; line: number }
  | { op: 'add' | 'create'; object: 'chain'; family: NftFamily; table: string; chain: NftChain; line: number }
  | { op: 'add' | 'create'; object: 'set'; family: NftFamily; table: string; set: NftSet; line: number }
  | {
      op: 'add' | 'insert' | 'replace'
      object: 'rule'
      family: NftFamily
      table: string
      chain: string
      rule: NftRule
      /** `index N`, `position H` / `handle H` */
      at?: { by: 'index' | 'handle'; value: number }
      line: number
    }
  | { op: 'add' | 'create' | 'delete'; object: 'element'; family: NftFamily; table: string; set: string; elements: NftElement[]; line: number }
  | { op: 'flush' | 'delete'; object: 'table'; family: NftFamily; name: string; line: number }
  | { op: 'flush' | 'delete'; object: 'chain' | 'set' | 'map'; family: NftFamily; table: string; name: string; line: number }
  | { op: 'delete'; object: 'rule'; family: NftFamily; table: string; chain: string; handle: number; line: number }
  | { op: 'flush'; object: 'ruleset'; family?: NftFamily; line: number }
  /** a whole `table F NAME { ... }` block: merged into the ruleset like nft does */
  | { op: 'block'; object: 'table'; table: NftTable; line: number }
