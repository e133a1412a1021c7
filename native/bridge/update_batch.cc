#include "update_batch.h"

#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace svcplane::bridge {

namespace {

std::string num(uint64_t v) { return std::to_string(v); }

struct KeyHash {
  size_t operator()(const FrontendKey& k) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the packed key
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    for (size_t i = 0; i < sizeof k; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return size_t(h);
  }
};

BatchOutcome refuse(Status s, std::string message, bool service, size_t index) {
  return {{s, std::move(message)}, service, index};
}

// The maps as they will be after the batch's updates so far, without touching the core: the
// core's state under an overlay of what earlier updates in the batch changed.
class Preview {
 public:
  explicit Preview(Dataplane& dp) : dp_(dp) {}

  bool backendExists(uint32_t id) const { return newBackends_.count(id) || dp_.backends().peek(id); }
  bool serviceExists(uint32_t id) const { return newServices_.count(id) || dp_.services().peek(id); }
  uint64_t backends() const { return dp_.backends().size() + newBackends_.size(); }
  uint64_t services() const { return dp_.services().size() + newServices_.size(); }
  uint64_t frontends() const { return uint64_t(int64_t(dp_.frontends().size()) + frontendDelta_); }

  void addBackend(uint32_t id) {
    if (!dp_.backends().peek(id)) newBackends_.insert(id);
  }

  // The service owning key k now (0: none).
  uint32_t owner(const FrontendKey& k) const {
    if (auto it = owner_.find(k); it != owner_.end()) return it->second;
    const FrontendRec* fe = dp_.frontends().peek(k);
    return fe ? fe->serviceId : 0;
  }

  // How many frontends the map holds after `spec` replaces the service's frontends.
  int64_t frontendsAfter(const ServiceSpec& spec) const {
    int64_t n = int64_t(frontends());
    for (const FrontendSpec& f : spec.frontends)
      if (owner(f.key) == 0) ++n;
    for (const FrontendKey& old : frontendsOf(spec.id))
      if (!listed(spec, old)) --n;
    return n;
  }

  void addService(const ServiceSpec& spec) {
    if (!dp_.services().peek(spec.id)) newServices_.insert(spec.id);
    for (const FrontendKey& old : frontendsOf(spec.id))
      if (!listed(spec, old)) {
        owner_[old] = 0;
        --frontendDelta_;
      }
    std::vector<FrontendKey>& mine = frontends_[spec.id];
    mine.clear();
    for (const FrontendSpec& f : spec.frontends) {
      if (owner(f.key) == 0) ++frontendDelta_;
      owner_[f.key] = spec.id;
      mine.push_back(f.key);
    }
  }

 private:
  static bool listed(const ServiceSpec& spec, const FrontendKey& k) {
    for (const FrontendSpec& f : spec.frontends)
      if (f.key == k) return true;
    return false;
  }
  const std::vector<FrontendKey>& frontendsOf(uint32_t id) const {
    if (auto it = frontends_.find(id); it != frontends_.end()) return it->second;
    const ServiceRec* s = dp_.services().peek(id);
    return s ? s->frontends : none_;
  }

  Dataplane& dp_;
  std::unordered_set<uint32_t> newBackends_, newServices_;
  std::unordered_map<FrontendKey, uint32_t, KeyHash> owner_;
  std::unordered_map<uint32_t, std::vector<FrontendKey>> frontends_;
  int64_t frontendDelta_ = 0;
  const std::vector<FrontendKey> none_;
};

// The checks Dataplane::upsertBackend / upsertService make, against the preview; the same
// messages. Raw values (states, schedulers, protocols, CIDRs) were checked by the binding.
BatchOutcome check(Dataplane& dp, const UpdateBatch& batch, uint64_t peak[3]) {
  const DataplaneConfig& cfg = dp.config();
  Preview p(dp);
  for (size_t i = 0; i < batch.backends.size(); ++i) {
    const BackendSpec& b = batch.backends[i];
    if (b.id == 0) return refuse(Status::Invalid, "backend id must be >= 1", false, i);
    if (b.weight == 0 || b.weight > 65535)
      return refuse(Status::Invalid, "backend " + num(b.id) + " weight must be 1..65535", false, i);
    if (!p.backendExists(b.id) && p.backends() + 1 > cfg.maxBackends)
      return refuse(Status::Full, "backends map is full (capacity " + num(cfg.maxBackends) + ")", false, i);
    p.addBackend(b.id);
  }
  peak[2] = p.backends();
  peak[0] = p.services();
  peak[1] = p.frontends();
  for (size_t i = 0; i < batch.services.size(); ++i) {
    const ServiceSpec& s = batch.services[i];
    if (s.id == 0) return refuse(Status::Invalid, "service id must be >= 1", true, i);
    if (!p.serviceExists(s.id) && p.services() + 1 > cfg.maxServices)
      return refuse(Status::Full, "services map is full (capacity " + num(cfg.maxServices) + ")", true, i);
    for (size_t f = 0; f < s.frontends.size(); ++f) {
      const FrontendKey& k = s.frontends[f].key;
      for (size_t j = 0; j < f; ++j)
        if (s.frontends[j].key == k)
          return refuse(Status::Invalid, "frontends[" + num(f) + "] repeats frontends[" + num(j) + "]", true, i);
      if (uint32_t o = p.owner(k); o != 0 && o != s.id)
        return refuse(Status::Conflict, "frontends[" + num(f) + "] is already a frontend of service " + num(o), true,
                      i);
    }
    const int64_t frontends = p.frontendsAfter(s);
    if (frontends > int64_t(cfg.maxFrontends))
      return refuse(Status::Full, "frontends map is full (capacity " + num(cfg.maxFrontends) + ")", true, i);
    for (uint32_t id : s.backendIds)
      if (!p.backendExists(id)) return refuse(Status::NotFound, "backend " + num(id) + " does not exist", true, i);
    p.addService(s);
    if (p.services() > peak[0]) peak[0] = p.services();
    if (uint64_t(frontends) > peak[1]) peak[1] = uint64_t(frontends);
  }
  return {};
}

}  // namespace

BatchOutcome applyUpdateBatch(Dataplane& dp, const UpdateBatch& batch) {
  uint64_t peak[3] = {0, 0, 0};  // services, frontends, backends at their most during the batch
  if (BatchOutcome refused = check(dp, batch, peak); !refused.result.ok()) return refused;
  // Sized once for the whole batch rather than doubling on the way; within the ceilings (checked).
  if (Result r = dp.reserve(uint32_t(peak[0]), uint32_t(peak[1]), uint32_t(peak[2])); !r.ok()) return {r, false, 0};
  for (size_t i = 0; i < batch.backends.size(); ++i)
    if (Result r = dp.upsertBackend(batch.backends[i]); !r.ok()) return {r, false, i};
  for (size_t i = 0; i < batch.services.size(); ++i)
    if (Result r = dp.upsertService(batch.services[i]); !r.ok()) return {r, true, i};
  return {};
}

}  // namespace svcplane::bridge
