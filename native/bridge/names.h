// The names of the core's codes, as both bindings show them: the Node addon exports these
// tables (lib/dataplane reads them; test/native/tables.test.ts checks its unions against
// them) and the C ABI's svcplane_*_name() return them. Indexed by the core's enum values.
#pragma once
#include <cstddef>

#include "core/dataplane.h"

namespace svcplane::bridge {

inline constexpr const char* kVerdictNames[] = {"pass", "forward", "reply", "reject", "drop"};
inline constexpr const char* kReasonNames[] = {
    "none",          "no-frontend",          "no-backends",      "source-range",   "conntrack-full",
    "affinity-full", "not-tracked",          "truncated",        "malformed",      "not-ip",
    "unsupported-protocol", "fragment-unknown", "icmp-untracked", "icmp-echo",     "nat-ports-exhausted",
    "no-masquerade-address", "bad-checksum",  "reply-buffer-full"};
inline constexpr const char* kSchedulerNames[] = {"random", "maglev", "rr", "wrr", "lc", "wlc", "sh", "dh"};
inline constexpr const char* kBackendStateNames[] = {"active", "terminating", "quarantined"};
inline constexpr const char* kMasqueradeNames[] = {"never", "always", "outside-pod-cidrs", "from-node"};
inline constexpr const char* kRejectNames[] = {"none", "icmp-port-unreachable", "tcp-reset"};
inline constexpr const char* kConntrackStateNames[] = {"none",      "syn-sent", "syn-recv", "established",
                                                        "fin-wait",  "close-wait", "last-ack", "time-wait",
                                                        "close",     "udp",      "udp-stream", "sctp"};
// The timeout of each conntrack state (slot 0, "none", has none), as option names.
inline constexpr const char* kTimeoutNames[] = {"",          "tcpSynSent",  "tcpSynRecv", "tcpEstablished",
                                                 "tcpFinWait", "tcpCloseWait", "tcpLastAck", "tcpTimeWait",
                                                 "tcpClose",  "udp",         "udpStream",  "sctp"};
inline constexpr const char* kPacketCountNames[] = {"ipv4",           "ipv6",           "tcp",       "udp",
                                                     "sctp",           "icmpErrors",     "firstFragments",
                                                     "laterFragments", "icmpErrorsTranslated", "rewritten",
                                                     "masqueraded",    "rejectReplies"};
// Control-path statuses (core Status), as the C ABI names them.
inline constexpr const char* kStatusNames[] = {"ok", "not-found", "in-use", "conflict", "full", "invalid"};

template <size_t N>
constexpr size_t count(const char* const (&)[N]) {
  return N;
}

static_assert(count(kVerdictNames) == kVerdicts, "a verdict without a name");
static_assert(count(kReasonNames) == kPacketReasons, "a reason without a name");
static_assert(count(kSchedulerNames) == kSchedulerKinds, "a scheduler without a name");
static_assert(count(kMasqueradeNames) == kMasqPolicies, "a masquerade policy without a name");
static_assert(count(kConntrackStateNames) == size_t(CtState::Count), "a conntrack state without a name");
static_assert(count(kTimeoutNames) == size_t(CtState::Count), "a conntrack state without a timeout name");
static_assert(count(kPacketCountNames) == kPktCounters, "a packet counter without a name");
static_assert(count(kStatusNames) == size_t(Status::Invalid) + 1, "a status without a name");

// The name at index i of a table, or "unknown".
template <size_t N>
const char* nameAt(const char* const (&table)[N], size_t i) {
  return i < N ? table[i] : "unknown";
}

}  // namespace svcplane::bridge
