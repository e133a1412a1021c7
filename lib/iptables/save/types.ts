// The data model for iptables-save / iptables-restore text.
//
// Every option keeps its position (`pos`) in the source rule and whether its
// values were quoted, so a parsed rule serializes back to the same text; the
// typed fields beside the options are decoded views the evaluator compiles.

import type { Cidr } from '../../util/address-words.js'

/** One option of a rule: `-s 10.0.0.0/8`, `! --ctstate NEW`, `--set`. */
export interface RuleOption {
  /** as written: '-s', '--dport', '--to-destination' */
  name: string
  negated: boolean
  /** true for the legacy spelling `--dport ! 80` (bang after the name) */
  bangAfterName?: boolean
  values: string[]
  /** per value: it was written in double quotes */
  quoted?: boolean[]
  /** ordinal of this piece in the source rule; orders serialization */
  pos: number
}

export interface AddrSpec {
  negated: boolean
  /** one or more prefixes (a comma list behaves as "any of") */
  cidrs: Cidr[]
  text: string
}

export interface IfaceSpec {
  negated: boolean
  name: string
  /** "veth+" matches any interface starting with "veth" */
  wildcard: boolean
}

export interface PortRange {
  min: number
  max: number
}

export interface PortSpec {
  negated: boolean
  ranges: PortRange[]
}

export interface FlagListSpec {
  negated: boolean
  values: string[]
}

/** The IP-header part of a rule (-s, -d, -p, -i, -o, -f), checked before any -m match. */
export interface IpSpec {
  src?: AddrSpec
  dst?: AddrSpec
  protocol?: { negated: boolean; name: string; number: number }
  inIface?: IfaceSpec
  outIface?: IfaceSpec
  fragment?: { negated: boolean }
  options: RuleOption[]
}

interface MatchCommon {
  /** module name as written after -m ('tcp', 'comment', ...) */
  module: string
  /** position of the `-m name` piece */
  pos: number
  /** loaded by `-p tcp` without `-m tcp` (old syntax); no `-m` piece is written */
  implicit?: boolean
  options: RuleOption[]
}

export interface PortMatch extends MatchCommon {
  kind: 'port'
  dport?: PortSpec
  sport?: PortSpec
  tcpFlags?: { negated: boolean; mask: string[]; comp: string[] }
  syn?: { negated: boolean }
}
export interface MultiportMatch extends MatchCommon {
  kind: 'multiport'
  dports?: PortSpec
  sports?: PortSpec
  ports?: PortSpec
}
export interface AddrtypeMatch extends MatchCommon {
  kind: 'addrtype'
  srcType?: FlagListSpec
  dstType?: FlagListSpec
  limitIfaceIn: boolean
  limitIfaceOut: boolean
}
export interface MarkMatch extends MatchCommon {
  kind: 'mark'
  negated: boolean
  value: number
  mask: number
}
export interface CommentMatch extends MatchCommon {
  kind: 'comment'
  comment: string
}
export interface StatisticMatch extends MatchCommon {
  kind: 'statistic'
  mode: 'random' | 'nth'
  negated: boolean
  /** probability as written; the kernel quantizes it to 31 bits */
  probability?: number
  every?: number
  packet?: number
}
export interface RecentMatch extends MatchCommon {
  kind: 'recent'
  name: string
  command: 'set' | 'rcheck' | 'update' | 'remove'
  negated: boolean
  seconds?: number
  hitcount?: number
  reap: boolean
  rttl: boolean
  /** address mask as text (default all ones) */
  mask?: string
  side: 'source' | 'dest'
}
export interface ConntrackMatch extends MatchCommon {
  kind: 'conntrack'
  ctstate?: FlagListSpec
}
export interface StateMatch extends MatchCommon {
  kind: 'state'
  state: FlagListSpec
}
export interface PhysdevMatch extends MatchCommon {
  kind: 'physdev'
  physdevIn?: IfaceSpec
  physdevOut?: IfaceSpec
  isIn?: { negated: boolean }
  isOut?: { negated: boolean }
  isBridged?: { negated: boolean }
}
export interface NfacctMatch extends MatchCommon {
  kind: 'nfacct'
  name: string
}
export interface SetMatch extends MatchCommon {
  kind: 'set'
  negated: boolean
  setName: string
  /** one direction per dimension of the set */
  flags: Array<'src' | 'dst'>
}
/** A module the model does not decode; kept verbatim. */
export interface OpaqueMatch extends MatchCommon {
  kind: 'opaque'
}

export type Match =
  | PortMatch
  | MultiportMatch
  | AddrtypeMatch
  | MarkMatch
  | CommentMatch
  | StatisticMatch
  | RecentMatch
  | ConntrackMatch
  | StateMatch
  | PhysdevMatch
  | NfacctMatch
  | SetMatch
  | OpaqueMatch

interface TargetCommon {
  /** target name as written after -j / -g */
  name: string
  /** -g (goto) rather than -j (jump) */
  goto: boolean
  /** position of the `-j NAME` piece */
  pos: number
  options: RuleOption[]
}

export interface VerdictTarget extends TargetCommon {
  kind: 'accept' | 'drop' | 'return'
}
export interface RejectTarget extends TargetCommon {
  kind: 'reject'
  rejectWith?: string
}
export interface NatRange {
  /** address text ("10.0.0.1"), absent when only a port is given */
  addr?: string
  addrEnd?: string
  portMin?: number
  portMax?: number
}
export interface DnatTarget extends TargetCommon {
  kind: 'dnat'
  to?: NatRange
}
export interface SnatTarget extends TargetCommon {
  kind: 'snat'
  to?: NatRange
  randomFully: boolean
}
export interface MasqueradeTarget extends TargetCommon {
  kind: 'masquerade'
  toPorts?: PortRange
  randomFully: boolean
}
export interface MarkTarget extends TargetCommon {
  kind: 'mark'
  /** normalized to the kernel's form: mark = (mark & ~mask) ^ value */
  xorValue: number
  clearMask: number
}
export interface LogTarget extends TargetCommon {
  kind: 'log'
}
export interface JumpTarget extends TargetCommon {
  kind: 'jump'
  chain: string
}
/** Unknown target extension (or a jump to a chain never declared); kept verbatim. */
export interface OpaqueTarget extends TargetCommon {
  kind: 'opaque'
}

export type Target =
  | VerdictTarget
  | RejectTarget
  | DnatTarget
  | SnatTarget
  | MasqueradeTarget
  | MarkTarget
  | LogTarget
  | JumpTarget
  | OpaqueTarget

export interface Counters {
  packets: number
  bytes: number
}

export type RuleCommand = 'A' | 'I' | 'D' | 'R'

export interface Rule {
  /** 1-based source line */
  line: number
  table: string
  chain: string
  command: RuleCommand
  /** rule number for -I / -D / -R when given */
  index?: number
  /** `[pkts:bytes]` prefix (iptables-save -c) */
  counters?: Counters
  ip: IpSpec
  matches: Match[]
  target?: Target
  /** the first `-m comment` text, for convenience */
  comment?: string
}

export type Statement =
  | { type: 'comment'; line: number; text: string }
  | { type: 'blank'; line: number; text: string }
  | { type: 'table'; line: number; name: string }
  | { type: 'chain'; line: number; table: string; name: string; policy: string; counters?: Counters }
  | { type: 'rule'; line: number; rule: Rule }
  | { type: 'command'; line: number; table: string; command: 'N' | 'X' | 'F' | 'Z' | 'P' | 'E'; args: string[] }
  | { type: 'commit'; line: number; table: string }

export interface Chain {
  name: string
  table: string
  builtin: boolean
  /** ACCEPT / DROP for built-in chains; undefined for user chains */
  policy?: string
  counters?: Counters
  /** the declaring line, 0 for a built-in chain never declared */
  line: number
  rules: Rule[]
}

export interface Table {
  name: string
  line: number
  chains: Map<string, Chain>
}

/** Something the evaluator cannot interpret; the rule is kept, never dropped. */
export interface UnsupportedItem {
  line: number
  table: string
  chain: string
  what: 'match' | 'target' | 'option'
  name: string
  reason: string
}

export interface IptablesDocument {
  statements: Statement[]
  /** effective state after applying every statement in order */
  tables: Map<string, Table>
  unsupported: UnsupportedItem[]
  /** address family inferred from the addresses seen (4 when none) */
  family: 4 | 6
  trailingNewline: boolean
}
