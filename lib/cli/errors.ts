// CLI errors and how they reach the user: one line naming what failed and why (the cause
// chain), never a stack trace. Exit status 2 for usage mistakes, 1 for everything else.

/** The command line itself is wrong (unknown option, missing value): exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  constructor(
    message: string,
    /** The command whose usage to point at, when known. */
    readonly command?: string,
  ) {
    super(message)
  }
}

/** The command could not do its work: exit status 1. `cause` says why. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    // Errors from the HTTP client carry a status code and often a bare "Not Found" message.
    const status = (err as { statusCode?: number; code?: unknown }).statusCode
    const text = err.message !== '' ? err.message : err.name
    return status !== undefined && !text.includes(String(status)) ? `${text} (HTTP ${status})` : text
  }
  if (typeof err === 'string') return err
  try {
    return JSON.stringify(err)
  } catch {
    return String(err)
  }
}

/** "what failed: why: why deeper", following Error.cause without repeating itself. */
export function describeError(err: unknown): string {
  const parts: string[] = []
  let cur: unknown = err
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    const m = messageOf(cur)
    if (m !== '' && !parts.some((p) => p.includes(m))) parts.push(m)
    cur = cur instanceof Error ? (cur as { cause?: unknown }).cause : undefined
  }
  return parts.join(': ')
}

export function exitCodeOf(err: unknown): number {
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
}
