#include "linear_rules.h"

namespace svcplane::linear {

Program::Program(std::span<const uint32_t> rules, std::span<const uint32_t> chains,
                 std::span<const uint32_t> localAddrs, uint32_t prerouting, uint32_t postrouting, uint64_t seed)
    : rules_(rules.begin(), rules.end()),
      chains_(chains.begin(), chains.end()),
      local_(localAddrs.begin(), localAddrs.end()),
      pre_(prerouting),
      post_(postrouting),
      rng_(seed ? seed : 0x9e3779b97f4a7c15ull) {
  // Reject a program whose chain ranges or jump targets fall outside it, so walking it can
  // never read out of bounds.
  uint32_t nChains = uint32_t(chains_.size() / 3), nRules = uint32_t(rules_.size() / kRuleWords);
  if (chains_.size() % 3 || rules_.size() % kRuleWords || pre_ >= nChains || post_ >= nChains) valid_ = false;
  for (uint32_t c = 0; valid_ && c < nChains; ++c)
    if (uint64_t(chains_[3 * c]) + chains_[3 * c + 1] > nRules) valid_ = false;
  for (uint32_t i = 0; valid_ && i < nRules; ++i) {
    const uint32_t* r = &rules_[size_t(i) * kRuleWords];
    if (r[kTarget] == kJump && r[kTargetArg] >= nChains) valid_ = false;
    if (r[kTarget] > kMasquerade) valid_ = false;
  }
}

uint32_t Program::random32() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return uint32_t(rng_ >> 32);
}

static bool inPrefix(const uint32_t* addr, const uint32_t* net, const uint32_t* mask) {
  return ((addr[0] & mask[0]) == net[0]) & ((addr[1] & mask[1]) == net[1]) & ((addr[2] & mask[2]) == net[2]) &
         ((addr[3] & mask[3]) == net[3]);
}

bool Program::isLocal(const uint32_t* a) const {
  for (size_t i = 0; i + 4 <= local_.size(); i += 4)
    if (a[0] == local_[i] && a[1] == local_[i + 1] && a[2] == local_[i + 2] && a[3] == local_[i + 3]) return true;
  return false;
}

bool Program::matches(const uint32_t* r, const Packet& p, uint32_t mark) {
  const uint32_t f = r[kFlags];
  if (f & kNeverMatches) return false;
  if ((f & kHasDst) && inPrefix(p.dst, r + kDst, r + kDstMask) == bool(f & kDstNeg)) return false;
  if ((f & kHasProto) && (p.proto == r[kProto]) == bool(f & kProtoNeg)) return false;
  if ((f & kHasDport) && (p.dport >= r[kDportMin] && p.dport <= r[kDportMax]) == bool(f & kDportNeg)) return false;
  if ((f & kHasSrc) && inPrefix(p.src, r + kSrc, r + kSrcMask) == bool(f & kSrcNeg)) return false;
  if ((f & kHasMark) && ((mark & r[kMarkMask]) == r[kMarkValue]) == bool(f & kMarkNeg)) return false;
  if ((f & kDstLocal) && isLocal(p.dst) == bool(f & kDstLocalNeg)) return false;
  if ((f & kSrcLocal) && isLocal(p.src) == bool(f & kSrcLocalNeg)) return false;
  // The statistic match draws last, as the kernel evaluates matches in order and kube-proxy
  // writes it after the others.
  if ((f & kHasStatistic) && (random32() < r[kProbability]) == bool(f & kStatisticNeg)) return false;
  return true;
}

Program::Walk Program::walk(uint32_t chain, const Packet& p, Result& out, int depth) {
  if (depth > 64) {
    out.action = kDrop;  // a loop in the program; the kernel refuses such rulesets
    return Walk::Terminal;
  }
  const uint32_t first = chains_[3 * chain], count = chains_[3 * chain + 1];
  for (uint32_t i = first; i < first + count; ++i) {
    const uint32_t* r = &rules_[size_t(i) * kRuleWords];
    ++out.visited;
    if (!matches(r, p, out.mark)) continue;
    switch (r[kTarget]) {
      case kContinue: break;
      case kMark: out.mark = (out.mark & ~r[kTargetArg2]) ^ r[kTargetArg]; break;
      case kReturn: return Walk::Return;
      case kJump: {
        Walk w = walk(r[kTargetArg], p, out, depth + 1);
        if (w == Walk::Terminal) return w;
        if (r[kFlags] & kGoto) return Walk::Return;
        break;
      }
      case kDnat:
        out.action = kDnat;
        for (int k = 0; k < 4; ++k) out.dnat[k] = r[kDnatAddr + k];
        out.dnatPort = r[kDnatPort] ? r[kDnatPort] : p.dport;
        return Walk::Terminal;
      case kMasquerade: out.masquerade = true; return Walk::Terminal;
      default:  // accept, drop, reject
        out.action = r[kTarget];
        return Walk::Terminal;
    }
  }
  return Walk::Continue;  // falls off the end: RETURN for user chains, the policy for built-ins
}

void Program::evaluate(const Packet& p, Result& out) {
  out = Result{};
  out.action = kAccept;
  if (!valid_) {
    out.action = kDrop;
    return;
  }
  walk(pre_, p, out, 0);
  if (out.action == kDrop || out.action == kReject) return;
  Packet after = p;
  if (out.action == kDnat) {
    for (int k = 0; k < 4; ++k) after.dst[k] = out.dnat[k];
    after.dport = out.dnatPort;
  }
  uint32_t action = out.action;
  out.action = kAccept;
  walk(post_, after, out, 0);
  if (out.action == kAccept) out.action = action;
}

}  // namespace svcplane::linear
