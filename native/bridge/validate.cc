#include "validate.h"

#include "names.h"

namespace svcplane::bridge {

namespace {

std::string num(uint64_t v) { return std::to_string(v); }
Result invalid(std::string message) { return {Status::Invalid, std::move(message)}; }

}  // namespace

Result checkCapacity(const char* field, uint64_t value) {
  if (value < 1 || value > kMaxCapacity) return invalid(std::string(field) + " must be 1.." + num(kMaxCapacity) + ", got " + num(value));
  return {};
}

Result checkMaglevTableSize(const char* field, uint64_t value) {
  if (value < 7 || value > 1000003 || !isPrime(uint32_t(value)))
    return invalid(std::string(field) + " must be a prime 7..1000003, got " + num(value));
  return {};
}

Result checkFullPolicy(const char* field, uint64_t value) {
  if (value > uint64_t(FullPolicy::Refuse)) return invalid(std::string(field) + " must be 0 (evict oldest) or 1 (refuse), got " + num(value));
  return {};
}

Result checkBackendState(uint32_t backendId, uint64_t state) {
  if (state >= count(kBackendStateNames))
    return invalid("backend " + num(backendId) + " state must be 0..2, got " + num(state));
  return {};
}

Result checkScheduler(const std::string& who, uint64_t kind) {
  if (kind >= uint64_t(kSchedulerKinds)) return invalid(who + " scheduler must be 0.." + num(kSchedulerKinds - 1) + ", got " + num(kind));
  return {};
}

Result checkEmptyVerdict(const std::string& who, uint64_t verdict) {
  if (verdict != uint64_t(Verdict::Reject) && verdict != uint64_t(Verdict::Drop))
    return invalid(who + " empty verdict must be reject (3) or drop (4), got " + num(verdict));
  return {};
}

Result checkFrontend(const std::string& who, size_t index, uint64_t protocol, uint64_t scope, uint64_t masquerade) {
  const std::string field = who + " frontends[" + num(index) + "]";
  if (protocol > 255 || !isKnownProtocol(uint8_t(protocol))) return invalid(field + ".protocol must be TCP, UDP or SCTP, got " + num(protocol));
  if (scope > 1) return invalid(field + ".scope must be 0 or 1, got " + num(scope));
  if (masquerade >= uint64_t(kMasqPolicies)) return invalid(field + ".masquerade must be 0.." + num(kMasqPolicies - 1) + ", got " + num(masquerade));
  return {};
}

Result checkPrefix(const std::string& field, const IpAddr& net, uint64_t prefixLen) {
  uint64_t max = net.isV4() ? 32 : 128;
  if (prefixLen > max) return invalid(field + ".prefix_len must be 0.." + num(max) + ", got " + num(prefixLen));
  return {};
}

Result checkRejectMode(uint64_t mode) {
  if (mode >= count(kRejectNames)) return invalid("reject mode must be 0..2, got " + num(mode));
  return {};
}

}  // namespace svcplane::bridge
