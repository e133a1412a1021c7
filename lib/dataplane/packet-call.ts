// processPackets' arguments as one struct built once per Dataplane (Katran and better-sqlite3
// take one config, not a list of positions): the scalars in a Float64Array `params`, slots
// named by PACKET_PARAM (native/addon/wire.h PacketParam), and the caller's arrays. The
// addon holds the struct registered (setPacketCall) and is told again only when an array is
// another one or changed size, so a call in a loop over the same buffers carries no argument.
import type { NativeHandle } from './native.js'

/** Slots of PacketCall.params, in the addon's order (test/native/tables.test.ts checks it). */
export const PACKET_PARAM = Object.freeze({ count: 0, direction: 1, now: 2, link: 3, fromNode: 4, reject: 5 } as const)
/** The arrays of a PacketCall, in the addon's order. */
export const PACKET_ARRAYS = ['buffer', 'offsets', 'lengths', 'verdicts', 'reasons', 'replies', 'replyOffsets', 'replyLengths'] as const

type PacketArrayName = (typeof PACKET_ARRAYS)[number]
type PacketArrays = {
  buffer: Uint8Array
  offsets: Uint32Array
  lengths: Uint32Array
  verdicts: Uint8Array
  reasons: Uint8Array
  replies: Uint8Array | null
  replyOffsets: Uint32Array | null
  replyLengths: Uint32Array | null
}

const EMPTY8 = new Uint8Array(0)
const EMPTY32 = new Uint32Array(0)

export class PacketCall implements PacketArrays {
  readonly params = new Float64Array(Object.keys(PACKET_PARAM).length)
  buffer: Uint8Array = EMPTY8
  offsets: Uint32Array = EMPTY32
  lengths: Uint32Array = EMPTY32
  verdicts: Uint8Array = EMPTY8
  reasons: Uint8Array = EMPTY8
  replies: Uint8Array | null = null
  replyOffsets: Uint32Array | null = null
  replyLengths: Uint32Array | null = null
  /** Byte lengths at registration: a detached or resized buffer registers again. */
  private readonly registeredBytes = new Float64Array(PACKET_ARRAYS.length).fill(-1)

  constructor(private readonly h: NativeHandle) {}

  /** Points the struct at these arrays, registering it with the addon when any differs. */
  use(arrays: PacketArrays): void {
    let changed = false
    for (let k = 0; k < PACKET_ARRAYS.length; k++) {
      const name: PacketArrayName = PACKET_ARRAYS[k]
      const a = arrays[name]
      const bytes = a === null ? 0 : a.byteLength
      if (a !== this[name] || bytes !== this.registeredBytes[k]) {
        ;(this as PacketArrays)[name] = a as never
        this.registeredBytes[k] = bytes
        changed = true
      }
    }
    if (!changed) return
    try {
      this.h.setPacketCall(this)
    } catch (err) {
      this.registeredBytes.fill(-1)
      throw err
    }
  }
}
