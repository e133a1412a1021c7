// Public types of the Dataplane layer. Strings at the API, numbers inside the native core.

export type Protocol = 'TCP' | 'UDP' | 'SCTP'
/** `internal`: traffic from this node or its pods; `external`: from anywhere else. */
export type Scope = 'internal' | 'external'
export type SchedulerName = 'random' | 'maglev' | 'rr' | 'wrr' | 'lc' | 'wlc' | 'sh' | 'dh'
export type BackendState = 'active' | 'terminating' | 'quarantined'
export type FullPolicy = 'evict-oldest' | 'refuse'

/** Conntrack timeouts in seconds (defaults follow Linux nf_conntrack, TCP established as kube-proxy sets it). */
export interface ConntrackTimeouts {
  tcpSynSent: number
  tcpSynRecv: number
  tcpEstablished: number
  tcpFinWait: number
  tcpCloseWait: number
  tcpLastAck: number
  tcpTimeWait: number
  tcpClose: number
  udp: number
  udpStream: number
  sctp: number
}

export interface DataplaneCapacity {
  /** Service records (each with one backend set and scheduler). */
  services?: number
  /** Frontends (address, port, protocol, scope) over all services; also the revnat map's size. */
  frontends?: number
  backends?: number
  conntrack?: number
  affinity?: number
  /** Masqueraded flows (NAT port map of the packet path). */
  natPorts?: number
  /** Fragmented datagrams awaiting their later fragments (packet path). */
  fragments?: number
}

export interface DataplaneOptions {
  capacity?: DataplaneCapacity
  /** What a full conntrack table does with a new flow. Default `evict-oldest`. */
  conntrackFullPolicy?: FullPolicy
  /** What a full affinity table does with a new client. Default `evict-oldest`. */
  affinityFullPolicy?: FullPolicy
  timeouts?: Partial<ConntrackTimeouts>
  /** Secret for the hash tables; random per instance when omitted. Fix it only in tests. */
  seed?: bigint | number
  /** Maglev table size M, a prime (default 16381). */
  maglevTableSize?: number
  /** Shared by every node so that all build the same Maglev tables (default a fixed constant). */
  maglevSeed?: bigint | number
  /** Seed of the random scheduler's generator; from `seed` when omitted. */
  rngSeed?: bigint | number
  /**
   * Packet threads, 1..64 (default 1: one Dataplane on the calling thread). N > 1 makes N
   * shards of the flow state (lib/dataplane/threads.ts, docs/threads.md): processPackets
   * fans each batch out over N native threads; every other method works as with 1.
   */
  threads?: number
}

export interface BackendSpec {
  /** Caller-chosen id, 1 .. 2^32-1. */
  id: number
  address: string
  port: number
  state?: BackendState
  /** 1 .. 65535, default 1. */
  weight?: number
  nodeLocal?: boolean
  zone?: string
}

export interface FrontendSpec {
  address: string
  port: number
  protocol: Protocol
  scope: Scope
  /** Whether the service's sourceRanges apply to this frontend (load-balancer IPs). */
  checkSourceRanges?: boolean
  /**
   * Packet path: when new flows are masqueraded (source rewritten to the node address).
   * `outside-pod-cidrs`: sources outside the configured pod CIDRs (none when there are none;
   * all with masqueradeAll); `from-node`: sources that are a node address and not a pod.
   * Hairpin flows (client = backend) are always masqueraded. Default `never`.
   */
  masquerade?: 'never' | 'always' | 'outside-pod-cidrs' | 'from-node'
}

export interface ServiceSpec {
  /** Caller-chosen id, 1 .. 2^32-1. */
  id: number
  frontends: FrontendSpec[]
  /** Backend ids, each already upserted. Only `active` ones take new flows. */
  backends: number[]
  scheduler?: SchedulerName
  /** ClientIP session affinity timeout in seconds; 0 (default) turns affinity off. */
  affinityTimeout?: number
  /** CIDRs allowed to reach frontends with `checkSourceRanges`; empty allows all. */
  sourceRanges?: string[]
  /** What a packet gets when the service has no backend for new flows. Default `reject`. */
  emptyVerdict?: 'reject' | 'drop'
}

export interface Flow {
  src: string
  sport: number
  dst: string
  dport: number
  protocol: Protocol
  /** Which frontend scope to try first: `internal` for traffic from this node or its pods. Default `external`. */
  scope?: Scope
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); drives the conntrack state machine. */
  tcpFlags?: number
  /** Packet length for the flow's byte counter. */
  bytes?: number
}

export type Verdict = 'pass' | 'forward' | 'reply' | 'reject' | 'drop'
export type Reason =
  | 'none'
  | 'no-frontend'
  | 'no-backends'
  | 'source-range'
  | 'conntrack-full'
  | 'affinity-full'

export interface Decision {
  verdict: Verdict
  reason: Reason
  /** Set when a frontend matched (or, for `reply`, the flow's service). */
  serviceId: number
  /** 0 when no backend. */
  backendId: number
  /** Where a forwarded packet goes (backend), or the service address a reply is rewritten to. */
  address: string
  port: number
  /** Whether the flow was already tracked. */
  established: boolean
  /** Whether the backend came from the affinity map. */
  affinityHit: boolean
}

export interface MapStats {
  hits: number
  misses: number
  inserts: number
  updates: number
  deletes: number
  evictions: number
  refusals: number
  expirations: number
}

export interface MapInfo {
  name: string
  size: number
  capacity: number
  /** Bytes of memory the map holds (allocated once at construction). */
  bytes: number
  stats: MapStats
}
