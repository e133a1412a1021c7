// Exponential backoff with jitter between reconnects, like client-go's reflector
// (800 ms doubling to 30 s), reset once a connection has worked.
export interface BackoffOptions {
  initialMs?: number
  maxMs?: number
  factor?: number
  /** Fraction of random spread added to each delay (0..1). */
  jitter?: number
  random?: () => number
}

export class Backoff {
  private attempt = 0
  private readonly o: Required<BackoffOptions>

  constructor(options: BackoffOptions = {}) {
    this.o = { initialMs: 800, maxMs: 30_000, factor: 2, jitter: 0.2, random: Math.random, ...options }
  }

  /** The next delay in milliseconds. */
  next(): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.o.factor ** this.attempt)
    this.attempt++
    return Math.round(base * (1 + this.o.jitter * this.o.random()))
  }

  reset(): void {
    this.attempt = 0
  }

  get attempts(): number {
    return this.attempt
  }
}
