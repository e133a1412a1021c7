// A first-match rule walker in C++: kube-proxy's nat rules compiled (by
// bench/cpp-linear.ts compileLinear) into flat records and walked one by one, the way netfilter's
// legacy iptables does. It exists so the benchmark can measure the O(n) algorithm like for like
// with the hash-based core — same language, same compiler — without the JS-versus-C++ factor.
// It understands the matches and targets kube-proxy's nat rules use; a rule with anything else
// is compiled as never matching (and reported by the compiler).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace svcplane::linear {

// Word offsets inside one compiled rule (kRuleWords 32-bit words per rule).
enum RuleWord : uint32_t {
  kFlags = 0,
  kSrc = 1,       // 4 words, masked
  kSrcMask = 5,   // 4 words
  kDst = 9,
  kDstMask = 13,
  kProto = 17,
  kDportMin = 18,
  kDportMax = 19,
  kMarkValue = 20,
  kMarkMask = 21,
  kProbability = 22,  // match when random32 < this (p * 2^32, saturated)
  kTarget = 23,
  kTargetArg = 24,    // chain index (jump/goto) or xor value (mark)
  kTargetArg2 = 25,   // mark clear mask
  kDnatAddr = 26,     // 4 words
  kDnatPort = 30,
  kRuleWords = 32,
};

enum RuleFlag : uint32_t {
  kHasSrc = 1u << 0,
  kSrcNeg = 1u << 1,
  kHasDst = 1u << 2,
  kDstNeg = 1u << 3,
  kHasProto = 1u << 4,
  kProtoNeg = 1u << 5,
  kHasDport = 1u << 6,
  kDportNeg = 1u << 7,
  kHasMark = 1u << 8,
  kMarkNeg = 1u << 9,
  kHasStatistic = 1u << 10,
  kStatisticNeg = 1u << 11,
  kDstLocal = 1u << 12,
  kDstLocalNeg = 1u << 13,
  kSrcLocal = 1u << 14,
  kSrcLocalNeg = 1u << 15,
  kNeverMatches = 1u << 16,
  kGoto = 1u << 17,
};

enum Target : uint32_t {
  kContinue = 0,
  kAccept = 1,
  kDrop = 2,
  kReject = 3,
  kReturn = 4,
  kJump = 5,
  kDnat = 6,
  kMark = 7,
  kMasquerade = 8,
};

struct Packet {
  uint32_t src[4];
  uint32_t dst[4];
  uint32_t proto;
  uint32_t dport;
};

struct Result {
  uint32_t action;  // Target: kAccept (no NAT), kDnat, kDrop, kReject
  uint32_t dnat[4];
  uint32_t dnatPort;
  uint32_t mark;
  bool masquerade;
  uint32_t visited;  // rules examined
};

class Program {
 public:
  // rules: kRuleWords words per rule; chains: (first rule, rule count, policy) per chain;
  // localAddrs: 4 words per node-local address (addrtype LOCAL).
  Program(std::span<const uint32_t> rules, std::span<const uint32_t> chains, std::span<const uint32_t> localAddrs,
          uint32_t prerouting, uint32_t postrouting, uint64_t seed);
  bool valid() const { return valid_; }
  // A new connection arriving (nat PREROUTING, then nat POSTROUTING).
  void evaluate(const Packet& p, Result& out);

 private:
  enum class Walk { Continue, Return, Terminal };
  Walk walk(uint32_t chain, const Packet& p, Result& out, int depth);
  bool matches(const uint32_t* r, const Packet& p, uint32_t mark);
  bool isLocal(const uint32_t* addr) const;
  uint32_t random32();

  std::vector<uint32_t> rules_, chains_, local_;
  uint32_t pre_, post_;
  uint64_t rng_;
  bool valid_ = true;
};

}  // namespace svcplane::linear
