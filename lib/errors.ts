// The library's errors: every one carries a stable `code` a caller can branch on without
// parsing the message (like better-sqlite3's SqliteError). Bad arguments stay TypeError /
// RangeError (so `instanceof TypeError` keeps holding) and carry code 'INVALID'.
// Imports nothing of ours but lib/util: every layer may throw these.

/** Why a call failed. */
export type ErrorCode =
  /** A bad argument: wrong type, out of range, unknown option. */
  | 'INVALID'
  /** The id or name given does not exist (deleting an unknown service or backend). */
  | 'NOT_FOUND'
  /** Still referenced (a backend a service lists). */
  | 'IN_USE'
  /** Owned by something else (a frontend another service holds). */
  | 'CONFLICT'
  /** A map reached the capacity it was given; nothing was applied. */
  | 'FULL'
  /** The object was destroyed. */
  | 'DESTROYED'
  /** The compiled addon could not be loaded (native mode, Dataplane). */
  | 'NATIVE_UNAVAILABLE'
  /** A call only another proxy mode has (proxier.ipvsState() in mode 'iptables'). */
  | 'WRONG_MODE'
  /** A call the object's state does not allow now (ServiceProxy.start() twice, sync() after stop()). */
  | 'WRONG_STATE'
  /** A connection to an endpoint was not made in time (the userspace proxy's connect timeout). */
  | 'TIMEOUT'
  /** A server could not listen on its address (the cause says why: EADDRINUSE, EACCES, ...). */
  | 'LISTEN_FAILED'
  /** The Kubernetes API refused or failed a list or watch (informers' onError). */
  | 'API_ERROR'
  /** An input file is larger than its size limit (InputTooLargeError, with `limit`). */
  | 'TOO_LARGE'
  /** A node tool (iptables-restore, nft, sysctl) refused what it was given; the node keeps its previous rules. */
  | 'APPLY_FAILED'

export const ERROR_CODES: readonly ErrorCode[] = [
  'INVALID', 'NOT_FOUND', 'IN_USE', 'CONFLICT', 'FULL', 'DESTROYED', 'NATIVE_UNAVAILABLE',
  'WRONG_MODE', 'WRONG_STATE', 'TIMEOUT', 'LISTEN_FAILED', 'API_ERROR', 'TOO_LARGE', 'APPLY_FAILED',
]

/** An error of the library that is not a bad argument. */
export class SvcplaneError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
SvcplaneError.prototype.name = 'SvcplaneError'

/** A bad argument's type (code 'INVALID'); `instanceof TypeError` holds. */
export class SvcplaneTypeError extends TypeError {
  readonly code: ErrorCode = 'INVALID'
}
SvcplaneTypeError.prototype.name = 'TypeError'

/**
 * A value out of range (code 'INVALID'), or an id that names nothing (code 'NOT_FOUND'), or a
 * capacity reached (code 'FULL'); `instanceof RangeError` holds.
 */
export class SvcplaneRangeError extends RangeError {
  readonly code: ErrorCode
  constructor(message: string, code: ErrorCode = 'INVALID') {
    super(message)
    this.code = code
  }
}
SvcplaneRangeError.prototype.name = 'RangeError'

/** The code of an error the library threw, or undefined for anything else. */
export function errorCode(err: unknown): ErrorCode | undefined {
  if (err === null || typeof err !== 'object') return undefined
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : undefined
}
