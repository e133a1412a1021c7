// A compact TCP connection-tracking state machine, modelled on nf_conntrack's: enough to give
// each phase of a connection its own timeout (half-open flows expire fast, established ones
// slowly, closing ones in between).
#pragma once
#include <cstdint>

namespace svcplane {

enum class CtState : uint8_t {
  None = 0,
  TcpSynSent,
  TcpSynRecv,
  TcpEstablished,
  TcpFinWait,    // one side sent FIN
  TcpCloseWait,  // that FIN was acknowledged; the other side may still send
  TcpLastAck,    // both sides sent FIN
  TcpTimeWait,   // the last FIN was acknowledged
  TcpClose,      // reset
  Udp,           // seen one way only
  UdpStream,     // replies seen
  Sctp,
  Count
};

enum TcpFlag : uint8_t { kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10 };

enum class Dir : uint8_t { Original = 0, Reply = 1 };

// Timeouts in nanoseconds, indexed by CtState.
struct CtTimeouts {
  uint64_t ns[size_t(CtState::Count)];

  static constexpr uint64_t kSec = 1000000000ull;
  static CtTimeouts defaults() {
    CtTimeouts t{};
    t.ns[size_t(CtState::TcpSynSent)] = 120 * kSec;
    t.ns[size_t(CtState::TcpSynRecv)] = 60 * kSec;
    t.ns[size_t(CtState::TcpEstablished)] = 86400 * kSec;  // kube-proxy's nf_conntrack_tcp_timeout_established
    t.ns[size_t(CtState::TcpFinWait)] = 120 * kSec;
    t.ns[size_t(CtState::TcpCloseWait)] = 60 * kSec;
    t.ns[size_t(CtState::TcpLastAck)] = 30 * kSec;
    t.ns[size_t(CtState::TcpTimeWait)] = 120 * kSec;
    t.ns[size_t(CtState::TcpClose)] = 10 * kSec;
    t.ns[size_t(CtState::Udp)] = 30 * kSec;
    t.ns[size_t(CtState::UdpStream)] = 120 * kSec;
    t.ns[size_t(CtState::Sctp)] = 210 * kSec;
    return t;
  }
};

// The state a new flow starts in. Flags 0 means "unknown" (a tuple-only caller): a new TCP
// flow is then taken to be opening, like a SYN.
inline CtState initialState(uint8_t proto, uint8_t flags) {
  if (proto == 17) return CtState::Udp;
  if (proto == 132) return CtState::Sctp;
  if (flags & kRst) return CtState::TcpClose;
  if (flags == 0 || (flags & (kSyn | kAck)) == kSyn) return CtState::TcpSynSent;
  // Picked up mid-stream (nf_conntrack_tcp_loose): trust it as established.
  return CtState::TcpEstablished;
}

// finDir remembers which side closed first (bit 0: original, bit 1: reply).
inline CtState nextState(CtState s, Dir d, uint8_t flags, uint8_t& finDir) {
  switch (s) {
    case CtState::Udp: return d == Dir::Reply ? CtState::UdpStream : s;
    case CtState::UdpStream:
    case CtState::Sctp: return s;
    default: break;
  }
  if (flags == 0) return s;  // unknown flags: refresh only
  uint8_t self = d == Dir::Original ? 1 : 2;
  if (flags & kRst) return CtState::TcpClose;
  bool syn = flags & kSyn, ack = flags & kAck, fin = flags & kFin;
  switch (s) {
    case CtState::TcpSynSent:
      if (d == Dir::Reply && syn && ack) return CtState::TcpSynRecv;
      if (d == Dir::Original && ack && !syn) return CtState::TcpEstablished;  // missed the SYN-ACK
      return s;
    case CtState::TcpSynRecv:
      if (d == Dir::Original && ack && !syn)
        return fin ? (finDir = self, CtState::TcpFinWait) : CtState::TcpEstablished;
      return s;
    case CtState::TcpEstablished:
      if (fin) {
        finDir = self;
        return CtState::TcpFinWait;
      }
      return s;
    case CtState::TcpFinWait:
      if (fin && !(finDir & self)) {
        finDir |= self;
        return CtState::TcpLastAck;
      }
      if (ack && !(finDir & self)) return CtState::TcpCloseWait;
      return s;
    case CtState::TcpCloseWait:
      if (fin && !(finDir & self)) {
        finDir |= self;
        return CtState::TcpLastAck;
      }
      return s;
    case CtState::TcpLastAck: return ack ? CtState::TcpTimeWait : s;
    case CtState::TcpTimeWait:
    case CtState::TcpClose:
      // A new SYN on a closed tuple is a new connection: Conntrack::lookup hands it back as
      // expired, so it never reaches here.
      return s;
    default: return s;
  }
}

inline bool isOpen(CtState s) { return s != CtState::TcpClose && s != CtState::TcpTimeWait; }

}  // namespace svcplane
