// The numeric codes the native core uses, and their names at the API.
import type { BackendState, Protocol, Reason, SchedulerName, Verdict } from './types.js'

export const PROTOCOL_NUMBER: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 }
export const PROTOCOL_NAME: Record<number, Protocol> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' }

export const SCHEDULERS: readonly SchedulerName[] = ['random', 'maglev', 'rr', 'wrr', 'lc', 'wlc', 'sh', 'dh']
export const BACKEND_STATES: readonly BackendState[] = ['active', 'terminating', 'quarantined']
export const VERDICTS: readonly Verdict[] = ['pass', 'forward', 'reply', 'reject', 'drop']
export const REASONS: readonly Reason[] = [
  'none',
  'no-frontend',
  'no-backends',
  'source-range',
  'conntrack-full',
  'affinity-full',
]

/** Index of each timeout in the core's CtState order (slot 0, "none", is unused). */
export const TIMEOUT_ORDER = [
  'tcpSynSent',
  'tcpSynRecv',
  'tcpEstablished',
  'tcpFinWait',
  'tcpCloseWait',
  'tcpLastAck',
  'tcpTimeWait',
  'tcpClose',
  'udp',
  'udpStream',
  'sctp',
] as const

/** Status codes of refused control-path calls (native/core/dataplane.h). */
export const enum NativeStatus {
  Ok = 0,
  NotFound = 1,
  InUse = 2,
  Conflict = 3,
  Full = 4,
  Invalid = 5,
}
