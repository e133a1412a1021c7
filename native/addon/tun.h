// The TUN device binding of native mode on a node (tun.cc): tunOpen and the TunDevice class.
#pragma once
#include <napi.h>

namespace svcplane::addon {

// Adds tunOpen and TunDevice to the addon's exports.
void registerTun(Napi::Env env, Napi::Object exports);

}  // namespace svcplane::addon
