// Flow handoff's binding (handoff.cc): exportFlows(handle, now) and importFlows(handle, blob, now)
// over native/core/flow_handoff.h.
#pragma once
#include <napi.h>

#include "core/dataplane.h"

namespace svcplane::addon {

// The core instance of a DataplaneHandle object; nullptr (an exception pending) when it is none
// or destroyed.
using DataplaneOf = svcplane::Dataplane* (*)(const Napi::CallbackInfo& info, const Napi::Value& handle);

// Adds exportFlows and importFlows to the addon's exports.
void registerHandoff(Napi::Env env, Napi::Object exports, DataplaneOf dataplaneOf);

}  // namespace svcplane::addon
