// A small seedable PRNG (mulberry32) so that `-m statistic --mode random`
// decisions are reproducible in tests and simulations. Any `() => number`
// returning values in [0, 1) can be injected instead.
import { SvcplaneRangeError } from '../errors.js'

export type RandomSource = () => number

export function seededRandom(seed: number): RandomSource {
  if (!Number.isFinite(seed)) throw new SvcplaneRangeError(`seed must be a finite number, got ${seed}`)
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
