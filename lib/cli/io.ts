// Where a command writes and what it can see of its environment. main() gets the process's;
// tests pass buffers and an AbortSignal, so every command runs in-process.

export interface Output {
  write(text: string): unknown
}

export interface CliIO {
  stdout: Output
  stderr: Output
  /** Whether stderr is a terminal (progress bars and colours only then). */
  isTTY: boolean
  env: Record<string, string | undefined>
  cwd: string
  /** Aborted to stop long-running commands (SIGINT / SIGTERM in the real process). */
  signal: AbortSignal
  /** What "-" reads (a --cluster - file); absent: no standard input. */
  stdin?: AsyncIterable<Uint8Array | string>
}

export function processIO(signal: AbortSignal): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: process.stderr.isTTY === true,
    env: process.env,
    cwd: process.cwd(),
    signal,
    stdin: process.stdin,
  }
}

/** An in-memory CliIO for tests and embedding: what was written is in `out` and `err`. */
export function bufferIO(signal: AbortSignal = new AbortController().signal, env: Record<string, string | undefined> = {}, stdin?: string) {
  const io = {
    out: '',
    err: '',
    stdout: { write: (s: string) => ((io.out += s), true) },
    stderr: { write: (s: string) => ((io.err += s), true) },
    isTTY: false,
    env,
    cwd: process.cwd(),
    signal,
    stdin: stdin === undefined ? undefined : (async function* () {
      yield stdin
    })(),
  }
  return io
}
