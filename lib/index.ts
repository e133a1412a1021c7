// Public entry point of svcplane.
export { Dataplane, DEFAULT_CAPACITY, DEFAULT_TIMEOUTS } from './dataplane/dataplane.js'
export type { DataplaneCounters, FlowEntry } from './dataplane/dataplane.js'
export { FlowBatch, DecisionBatch, TCP_FLAGS } from './dataplane/wire.js'
export { parseCidr, canonicalAddress, formatAddress, addressFamily } from './dataplane/address.js'
export type * from './dataplane/types.js'
