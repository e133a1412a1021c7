// The Dataplane's defaults and limits, as plain values (no addon needed to read them). The
// addon exports the core's own (native/core/dataplane.h); test/native/tables.test.ts checks
// that these equal them.
import type { ConntrackTimeouts } from './types.js'

/** The most entries a map holds. */
export const MAX_CAPACITY = 1 << 25

/**
 * Capacities by map. For services, frontends (and revnat) and backends these are ceilings:
 * the maps start at INITIAL_CAPACITY (or the ceiling, when smaller) and grow with the cluster.
 * The flow maps (conntrack, affinity, natPorts, fragments) are allocated at this size once.
 */
export const DEFAULT_CAPACITY = Object.freeze({
  services: MAX_CAPACITY,
  frontends: MAX_CAPACITY,
  backends: MAX_CAPACITY,
  conntrack: 65536,
  affinity: 65536,
  natPorts: 65536,
  fragments: 1024,
})

/** Where the growing maps start. */
export const INITIAL_CAPACITY = Object.freeze({ services: 1024, frontends: 4096, backends: 16384 })

/** The maps that grow (and whose capacity is a ceiling). */
export const GROWING_MAPS = ['services', 'frontends', 'backends'] as const

export const DEFAULT_TIMEOUTS: Readonly<ConntrackTimeouts> = Object.freeze({
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 86400,
  tcpFinWait: 120,
  tcpCloseWait: 60,
  tcpLastAck: 30,
  tcpTimeWait: 120,
  tcpClose: 10,
  udp: 30,
  udpStream: 120,
  sctp: 210,
})

export const DEFAULT_MAGLEV_TABLE_SIZE = 16381
