// Reading an input file with a size limit, in chunks: a path to /dev/zero, a FIFO that never
// ends or a 50 GB file by mistake ends with a clear error instead of exhausting memory (or a
// C++ abort inside readFileSync). The async reader also stops when its signal is aborted.
import * as fs from 'node:fs'
import { SvcplaneRangeError } from '../errors.js'

const CHUNK = 1 << 20

/** The input is larger than its limit. `limit` is in bytes. */
export class InputTooLargeError extends RangeError {
  override name = 'InputTooLargeError'
  readonly code = 'TOO_LARGE'
  constructor(readonly limit: number, what: string) {
    super(`${what} is larger than the ${formatBytes(limit)} input limit`)
  }
}

/** "256 MiB", "1.5 GiB", "900 bytes". */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) [v, u] = [v / 1024, u + 1]
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`
}

/** "256Mi", "1G", "64k", "1000": a byte count (binary suffixes K/Ki, M/Mi, G/Gi; case-insensitive). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$/i.exec(text)
  if (m === null) throw new SvcplaneRangeError(`invalid size ${JSON.stringify(text)} (examples: 1000, 64Ki, 256Mi, 1Gi)`)
  const scale = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').charAt(0).toLowerCase() as 'k'] ?? 1
  return Math.floor(Number(m[1]) * scale)
}

export interface ReadLimitOptions {
  /** Bytes; more is an InputTooLargeError. */
  maxBytes: number
  /** Names the input in errors ("cluster file c.json"). */
  what: string
  /** Sees the first chunk read (up to 1 MiB) and throws to refuse the input early (binary data, wrong magic). */
  checkStart?: (start: Uint8Array) => void
  signal?: AbortSignal
}

function checkMax(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new SvcplaneRangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`)
}

/** Reads a file (any kind: regular, FIFO, device) up to the limit. */
export function readFileLimitedSync(path: string, o: ReadLimitOptions): Buffer {
  checkMax(o.maxBytes)
  const fd = fs.openSync(path, 'r')
  try {
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK)
      const n = fs.readSync(fd, buf, 0, CHUNK, null)
      if (n === 0) break
      if (total === 0) o.checkStart?.(buf.subarray(0, n))
      total += n
      if (total > o.maxBytes) throw new InputTooLargeError(o.maxBytes, o.what)
      chunks.push(buf.subarray(0, n))
    }
    return Buffer.concat(chunks, total)
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads a stream (stdin) or a file path up to the limit, stopping when `signal` aborts. */
export async function readLimited(source: string | AsyncIterable<Uint8Array | string>, o: ReadLimitOptions): Promise<Buffer> {
  checkMax(o.maxBytes)
  const stream = typeof source === 'string' ? fs.createReadStream(source, { highWaterMark: CHUNK }) : source
  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const piece of stream) {
      o.signal?.throwIfAborted()
      const chunk = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
      if (total === 0 && chunk.length > 0) o.checkStart?.(chunk)
      total += chunk.length
      if (total > o.maxBytes) throw new InputTooLargeError(o.maxBytes, o.what)
      chunks.push(chunk)
    }
  } finally {
    if (stream instanceof fs.ReadStream) stream.destroy()
  }
  return Buffer.concat(chunks, total)
}
