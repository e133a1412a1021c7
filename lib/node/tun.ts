// A TUN device of this process (native/addon/tun.cc): opened with ioctl(TUNSETIFF) as
// IFF_TUN | IFF_NO_PI, so every read and write is one bare IP packet. Not persistent unless
// made so (setPersistent, for a restart): then the device and its routes outlive the process,
// packets routed to it are dropped until a new process opens it again (same name), and
// clearing persist makes it go when it is closed.
import { nativeBinding } from '../dataplane/native.js'
import { SvcplaneError, SvcplaneRangeError, SvcplaneTypeError } from '../errors.js'
import { show } from '../util/show.js'

interface NativeTunDevice {
  watch(callback: () => void): void
  unwatch(): void
  read(buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, maxPackets: number, maxFrame: number): number
  write(
    buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, verdicts: Uint8Array, count: number,
    replies: Uint8Array | null, replyOffsets: Uint32Array | null, replyLengths: Uint32Array | null,
  ): number
  stats(): TunStats
  close(): void
}

interface TunBinding {
  tunOpen(name: string): { fd: number; name: string } | { errno: number; message: string }
  tunSetPersist(fd: number, on: boolean): number
  TunDevice: new (fd: number) => NativeTunDevice
}

export interface TunStats {
  /** Reads that returned at least one packet. */
  batches: number
  packetsRead: number
  packetsWritten: number
  readErrors: number
  writeErrors: number
  /** errno of the last failed write (0: none). */
  lastWriteErrno: number
}

/** Interface names we accept: 1..15 letters, digits, '_' or '-' (no '.', which sysctl paths would split). */
const NAME = /^[A-Za-z0-9_-]{1,15}$/

export class TunDevice {
  private closed = false

  private constructor(
    readonly name: string,
    private readonly dev: NativeTunDevice,
    private readonly fd: number,
    private readonly binding: TunBinding,
  ) {}

  /** Opens (creating) TUN device `name`; SvcplaneError APPLY_FAILED with the system's reason when it cannot. */
  static open(name: string): TunDevice {
    if (typeof name !== 'string' || !NAME.test(name))
      throw new SvcplaneTypeError(`TUN device name must be 1-15 characters of letters, digits, '_' or '-', got ${show(name)}`)
    const binding = nativeBinding() as unknown as Partial<TunBinding>
    if (typeof binding.tunOpen !== 'function' || typeof binding.TunDevice !== 'function' || typeof binding.tunSetPersist !== 'function')
      throw new SvcplaneError('NATIVE_UNAVAILABLE', 'the loaded svcplane addon has no TUN support (rebuild it: npm run build:native)')
    const r = binding.tunOpen(name)
    if ('errno' in r) {
      const hint = r.errno === 2 ? ' (no /dev/net/tun: load the tun module, or give the container the device)' : r.errno === 1 ? ' (needs CAP_NET_ADMIN)' : ''
      throw new SvcplaneError('APPLY_FAILED', `cannot open TUN device ${name}: ${r.message}${hint}`)
    }
    return new TunDevice(r.name, new binding.TunDevice(r.fd), r.fd, binding as TunBinding)
  }

  /** Calls `onReadable` on the JS thread whenever packets wait (it should read until read() gives 0). */
  watch(onReadable: () => void): void {
    if (typeof onReadable !== 'function') throw new SvcplaneTypeError(`onReadable must be a function, got ${show(onReadable)}`)
    this.check()
    this.dev.watch(onReadable)
  }

  unwatch(): void {
    if (!this.closed) this.dev.unwatch()
  }

  /**
   * Reads waiting packets into `buffer` (packet i at offsets[i], lengths[i] bytes) until none
   * wait, `maxPackets`, or less than `maxFrame` bytes of room are left. Returns the count.
   */
  read(buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, maxPackets: number, maxFrame: number): number {
    this.check()
    if (!Number.isInteger(maxPackets) || maxPackets < 1 || maxPackets > offsets.length || maxPackets > lengths.length)
      throw new SvcplaneRangeError(`maxPackets must be an integer 1..${Math.min(offsets.length, lengths.length)}, got ${show(maxPackets)}`)
    if (!Number.isInteger(maxFrame) || maxFrame < 68 || maxFrame > 65535) throw new SvcplaneRangeError(`maxFrame must be an integer 68..65535, got ${show(maxFrame)}`)
    const n = this.dev.read(buffer, offsets, lengths, maxPackets, maxFrame)
    if (n < 0) throw new SvcplaneError('APPLY_FAILED', `reading TUN device ${this.name} failed: errno ${-n}`)
    return n
  }

  /** Writes packet i of the batch as verdicts[i] says (see tun.cc); returns the packets written. */
  write(
    buffer: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, verdicts: Uint8Array, count: number,
    replies?: { buffer: Uint8Array; offsets: Uint32Array; lengths: Uint32Array },
  ): number {
    this.check()
    return this.dev.write(buffer, offsets, lengths, verdicts, count, replies?.buffer ?? null, replies?.offsets ?? null, replies?.lengths ?? null)
  }

  /** TUNSETPERSIST: whether the device outlives this process (a restart takes it over). */
  setPersistent(on: boolean): void {
    this.check()
    const errno = this.binding.tunSetPersist(this.fd, on)
    if (errno !== 0) throw new SvcplaneError('APPLY_FAILED', `TUNSETPERSIST ${on ? 1 : 0} on ${this.name} failed: errno ${errno}`)
  }

  stats(): TunStats {
    this.check()
    return this.dev.stats()
  }

  get isOpen(): boolean {
    return !this.closed
  }

  /** Stops the watch and closes the device (unless persistent, it disappears with its routes). Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.dev.close()
  }

  private check(): void {
    if (this.closed) throw new SvcplaneError('DESTROYED', `TUN device ${this.name} is closed`)
  }
}
