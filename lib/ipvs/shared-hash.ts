// The address hash the native core's sh and dh schedulers use (native/core/hash.h keyedHash
// over the 16-byte address, keyed with the shared Maglev seed), so that the TypeScript IPVS
// model and the native core put a client in the same one of the 256 buckets. BigInt is slow,
// but this runs once per new connection of the TypeScript model, never on the native path.
import { parseAddressInto } from '../util/address.js'

/** The Dataplane's default maglevSeed, which the ipvs mode's dataplane is given explicitly. */
export const SHARED_HASH_SEED = 0x5eed5eed5eed5eedn

const MASK = (1n << 64n) - 1n
const P0 = 0xa0761d6478bd642fn
const P1 = 0xe7037ed1a0b428dbn
const P2 = 0x8ebc6af09c88c6e3n

function mulFold(a: bigint, b: bigint): bigint {
  const r = a * b
  return (r & MASK) ^ (r >> 64n)
}

/** keyedHash(addr, 16, seed) of native/core/hash.h, for an address as the core stores it (IPv4 mapped). */
export function addressHash(address: string, seed: bigint = SHARED_HASH_SEED): bigint {
  const bytes = new Uint8Array(16)
  parseAddressInto(address, bytes, 0)
  const view = new DataView(bytes.buffer)
  const lo = view.getBigUint64(0, true)
  const hi = view.getBigUint64(8, true)
  const h = mulFold(lo ^ P1 ^ seed ^ P0, hi ^ seed ^ P2)
  return mulFold(h ^ 16n, P1 ^ seed)
}

/** The bucket (0..255) of an address in the sh / dh tables. */
export function addressBucket(address: string): number {
  return Number(addressHash(address) & 255n)
}
