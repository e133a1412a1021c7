// Proxy ports: each ServicePort of the userspace mode gets one local port its listener takes
// and its portal rules redirect to. From --proxy-port-range they are handed out lowest free
// first (kube-proxy's allocator picks at random in the range; the lowest free one keeps runs
// reproducible); a released port is reused only after the rest of the range.
import type { PortRange } from './userspace-options.js'
import { SvcplaneError } from '../../errors.js'

/** Linux's default net.ipv4.ip_local_port_range starts here. */
export const EPHEMERAL_FIRST = 32768
const EPHEMERAL_LAST = 60999

export class ProxyPortAllocator {
  private readonly used = new Set<number>()
  private cursor: number
  private readonly first: number
  private readonly last: number

  constructor(range: PortRange | undefined) {
    this.first = range?.first ?? EPHEMERAL_FIRST
    this.last = range?.last ?? EPHEMERAL_LAST
    this.cursor = this.first
  }

  get size(): number {
    return this.last - this.first + 1
  }

  /** The next free port; throws (code FULL) when the range is used up. */
  allocate(owner: string): number {
    for (let tried = 0; tried < this.size; tried++) {
      const port = this.cursor
      this.cursor = port === this.last ? this.first : port + 1
      if (!this.used.has(port)) {
        this.used.add(port)
        return port
      }
    }
    throw new SvcplaneError('FULL', `${owner}: no free proxy port in ${this.first}-${this.last} (${this.used.size} in use)`)
  }

  /** Takes a specific port (one the kernel gave a listener). */
  claim(port: number): void {
    this.used.add(port)
  }

  release(port: number): void {
    this.used.delete(port)
  }
}
