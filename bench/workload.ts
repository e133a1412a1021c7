// Deterministic workloads: the same seed gives the same services, backends and flows, so
// every implementation and every run is measured on identical input.

import { seededRandom } from '../lib/util/random.js'

/** The seeded PRNG of the library (mulberry32): the same seed, the same workload. */
export const rng = seededRandom

/** The i-th service's cluster IP, in 172.16.0.0/12 (room for a million services). */
export function clusterIP(i: number): string {
  const n = (172 << 24) + (16 << 16) + i + 1
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** The j-th endpoint address, in 10.128.0.0/9. */
export function endpointIP(j: number): string {
  const n = (10 << 24) + (128 << 16) + j + 1
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** The k-th client address, in 10.0.0.0/9 (pods). */
export function clientIP(k: number): string {
  const n = (10 << 24) + (k % (1 << 23)) + 1
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

export interface PlainService {
  index: number
  clusterIP: string
  port: number
  endpoints: string[]
}

/** The plain workload: N ClusterIP services, TCP port 80, `endpointsPerService` endpoints on 8080. */
export function plainServices(n: number, endpointsPerService = 2): PlainService[] {
  const out: PlainService[] = []
  for (let i = 0; i < n; i++) {
    const endpoints: string[] = []
    for (let e = 0; e < endpointsPerService; e++) endpoints.push(endpointIP(i * endpointsPerService + e))
    out.push({ index: i, clusterIP: clusterIP(i), port: 80, endpoints })
  }
  return out
}
