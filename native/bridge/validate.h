// The checks both bindings make on raw values before the core sees them, so the Node addon and
// the C ABI refuse the same things with the same words (neither coerces: no `% 3`, no clamping).
// Each returns Status::Invalid with a message naming the field, or Ok. The TypeScript layer
// checks first, with the API's names; these keep memory and the core safe whatever arrives.
#pragma once
#include <cstdint>
#include <string>

#include "core/dataplane.h"

namespace svcplane::bridge {

// Capacities of the maps: 1..kMaxCapacity (0 means "default" for the caller to substitute).
Result checkCapacity(const char* field, uint64_t value);
Result checkMaglevTableSize(const char* field, uint64_t value);
Result checkFullPolicy(const char* field, uint64_t value);
Result checkBackendState(uint32_t backendId, uint64_t state);
Result checkScheduler(const std::string& who, uint64_t kind);
Result checkEmptyVerdict(const std::string& who, uint64_t verdict);
// A frontend's raw fields; `index` names it in the message.
Result checkFrontend(const std::string& who, size_t index, uint64_t protocol, uint64_t scope, uint64_t masquerade);
// A CIDR's prefix length as given for its family (0..32 for IPv4, 0..128 for IPv6).
Result checkPrefix(const std::string& field, const IpAddr& net, uint64_t prefixLen);
Result checkRejectMode(uint64_t mode);

}  // namespace svcplane::bridge
