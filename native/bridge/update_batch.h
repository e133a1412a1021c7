// A batch of control-path updates applied with one binding call (a full sync programs
// thousands of backends and services; one Node-API call each cost as much as the model).
// All or nothing: the whole batch is checked against the core's current maps and against the
// batch's own earlier updates (order matters: a frontend a service gives up in the batch is
// free for the services after it) before the first update is applied, so a refused batch
// leaves every map as it was, and each refusal says what the same single upsert would say.
// Binding-neutral: no Node-API, no C ABI types.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dataplane.h"

namespace svcplane::bridge {

struct UpdateBatch {
  std::vector<BackendSpec> backends;  // applied first, in order
  std::vector<ServiceSpec> services;  // then these, in order
};

struct BatchOutcome {
  Result result;
  // Which update was refused (when !result.ok()): services[index] or backends[index].
  bool service = false;
  size_t index = 0;
};

BatchOutcome applyUpdateBatch(Dataplane& dp, const UpdateBatch& batch);

}  // namespace svcplane::bridge
