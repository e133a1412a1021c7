// Dataplane::processPackets: the batch packet path. Like decideBatch, each group of packets
// goes through three passes so that their cache misses overlap: (1) parse, build the flow
// key, hash and prefetch; (2) conntrack / service lookups; (3) commit new flows, rewrite the
// packets in place, record first fragments, build reject replies.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "dataplane.h"
#include "icmp_error.h"
#include "packet_rewrite.h"
#include "reject_reply.h"

namespace svcplane {

namespace {

enum class Stage : uint8_t { Done, Decide, Track, Quiet, Fragment };

FragKey fragKeyOf(const FlowKey& k, uint32_t id) {
  FragKey f{};
  f.src = k.src;
  f.dst = k.dst;
  f.id = id;
  f.proto = k.proto;
  return f;
}

// Where a packet of a flow goes, seen in direction dir: a packet in the original direction
// takes the reply tuple's view (backend as destination, and the NAT address as source when
// masqueraded); a reply takes the original's (service as source, client as destination).
void targetsOf(const Conntrack& ct, uint32_t flow, Dir dir, Endpoint& src, Endpoint& dst) {
  if (dir == Dir::Original) {
    const FlowKey r = ct.key(flow, Dir::Reply);
    src = {r.dst, r.dport};
    dst = {r.src, r.sport};
  } else {
    const FlowKey o = ct.key(flow, Dir::Original);
    src = {o.dst, o.dport};
    dst = {o.src, o.sport};
  }
}

}  // namespace

bool Dataplane::lookupTracked(const FlowInput& in, uint32_t ctHash, uint64_t now, bool account, Decision& out) {
  out = Decision{};
  ++counters_.packets;
  CtHit hit = ct_.lookup(in.key, ctHash, now);
  if (hit.expired) {
    ct_.remove(
        hit.flow, [this](const Flow& f) { onFlowRemoved(f); }, true);
    hit.flow = Conntrack::kNone;
  }
  if (hit.flow == Conntrack::kNone) {
    out.verdict = Verdict::Pass;
    out.reason = Reason::NotTracked;
    ++counters_.verdicts[size_t(Verdict::Pass)];
    return false;
  }
  if (account) ct_.update(hit.flow, hit.dir, in.tcpFlags, in.bytes, now);
  fillFromFlow(hit.flow, hit.dir, out);
  return true;
}

void Dataplane::decidePacket(FlowInput& in, uint32_t ctHash, uint64_t now, bool fromNode, Decision& out) {
  CtHit hit = ct_.lookup(in.key, ctHash, now, in.tcpFlags);
  if (hit.flow != Conntrack::kNone && !hit.expired) {
    ++counters_.packets;
    ct_.update(hit.flow, hit.dir, in.tcpFlags, in.bytes, now);
    out.verdict = hit.dir == Dir::Original ? Verdict::Forward : Verdict::Reply;
    out.reason = Reason::None;
    out.packetReason = Reason::None;
    out.established = true;
    out.flow = hit.flow;
    out.dir = hit.dir;
    ++counters_.verdicts[size_t(out.verdict)];
    return;
  }
  out = Decision{};
  ++counters_.packets;
  if (hit.expired)
    ct_.remove(
        hit.flow, [this](const Flow& f) { onFlowRemoved(f); }, true);
  in.packet = classify(in.key.src, fromNode);
  in.scope = in.packet & (kInFromPod | kInFromNode) ? Scope::Internal : Scope::External;
  NewFlow nf;
  if (!decideMiss(in, 0, now, out, nf)) commitNewFlow(in, ctHash, nf, now, out);
}

// Three passes over each group of packets, so that their cache misses overlap instead of
// being paid one after another: (1) parse, build the flow key, hash it and prefetch its index
// slot; (2) prefetch the flow each slot points to; (3) in order, look up (or decide and create
// the flow at once, so later packets of the group see it), rewrite in place, record first
// fragments, build reject replies. Everything that reads or changes state is in pass 3, in
// packet order: the batch gives exactly what one packet at a time would.
void Dataplane::processPackets(const PacketRef* pkts, uint32_t n, const PacketOptions& opt, uint64_t now,
                               uint8_t* verdicts, uint8_t* reasons) {
  constexpr uint32_t kGroup = 32;
  ParsedPacket pp[kGroup];
  FlowInput fin[kGroup];
  uint32_t ctHash[kGroup];
  Decision dec[kGroup];
  Stage stage[kGroup];
  PacketCounters& pc = pktCounters_;

  for (uint32_t base = 0; base < n; base += kGroup) {
    uint32_t m = std::min(kGroup, n - base);
    // Pass 1.
    for (uint32_t i = 0; i < m; ++i) {
      const PacketRef& pk = pkts[base + i];
      ParsedPacket& p = pp[i];
      Decision& d = dec[i];
      ++pc.packets;
      stage[i] = Stage::Done;
      Reason r = parsePacket(pk.data, pk.len, opt.link, p);
      if (p.ip.family) ++pc.counts[p.ip.family == 4 ? kPktIpv4 : kPktIpv6];
      if (r != Reason::None) {
        d = Decision{};
        d.verdict = r == Reason::Truncated || r == Reason::Malformed ? Verdict::Drop : Verdict::Pass;
        d.reason = r;
        continue;
      }
      const IpHeaders& ip = p.kind == PacketKind::IcmpError ? p.inner : p.ip;
      switch (ip.proto) {
        case 6: ++pc.counts[kPktTcp]; break;
        case 17: ++pc.counts[kPktUdp]; break;
        case 132: ++pc.counts[kPktSctp]; break;
        default: break;
      }
      FlowInput& in = fin[i];
      // The key is built as five whole words and hashed from them: written piecewise (bytes,
      // halves) and read back as words by the hash, it would stall on store forwarding.
      // The addresses go into the key as whole 16-byte values too: copied from the words, a
      // 16-byte load of two 8-byte stores stalled the same way (a third of this pass).
      uint64_t w[5];
      if (ip.family == 4) {
        uint32_t s4, d4;
        std::memcpy(&s4, pk.data + srcAddrOffset(ip), 4);
        std::memcpy(&d4, pk.data + dstAddrOffset(ip), 4);
        w[0] = w[2] = 0;
        w[1] = 0xffff0000ull | uint64_t(s4) << 32;  // ::ffff:a.b.c.d, little-endian words
        w[3] = 0xffff0000ull | uint64_t(d4) << 32;
        in.key.src = fromV4Bytes(s4);
        in.key.dst = fromV4Bytes(d4);
      } else {
        std::memcpy(in.key.src.b, pk.data + srcAddrOffset(ip), 16);
        std::memcpy(in.key.dst.b, pk.data + dstAddrOffset(ip), 16);
        std::memcpy(w, in.key.src.b, 16);
        std::memcpy(w + 2, in.key.dst.b, 16);
      }
      // Ports straight from the packet: the parser stored them as two halves, and one load of
      // both would wait for those stores.
      uint32_t ports;
      if (p.kind == PacketKind::Flow) {
        uint32_t raw;
        std::memcpy(&raw, pk.data + p.ip.l4, 4);
        raw = __builtin_bswap32(raw);  // sport in the high half, dport in the low
        ports = raw >> 16 | raw << 16;
      } else {
        ports = uint32_t(p.sport) | uint32_t(p.dport) << 16;
      }
      w[4] = uint64_t(ports) | uint64_t(ip.proto) << 32;
      static_assert(offsetof(FlowKey, sport) == 32 && offsetof(FlowKey, dport) == 34 && offsetof(FlowKey, proto) == 36);
      std::memcpy(&in.key.sport, &w[4], 8);
      in.tcpFlags = p.tcpFlags;
      in.bytes = p.ip.end - p.ip.l3;
      in.scope = Scope::External;
      in.packet = 0;
      if (p.kind == PacketKind::IcmpError) {
        ++pc.counts[kPktIcmp];
        if (!icmpChecksumValid(pk.data, p)) {
          d = Decision{};
          d.verdict = Verdict::Drop;
          d.reason = Reason::BadChecksum;
          continue;
        }
        // The quote is a packet of the flow going the other way: look its reverse up.
        in.key = in.key.reversed();
        in.tcpFlags = 0;
        stage[i] = Stage::Quiet;
      } else if (p.kind == PacketKind::LaterFragment) {
        // Its ports come from the fragment map, read in pass 3: the first fragment may be an
        // earlier packet of this very group.
        ++pc.counts[kPktLaterFragments];
        stage[i] = Stage::Fragment;
        continue;
      } else {
        if (p.ip.firstFragment) ++pc.counts[kPktFirstFragments];
        stage[i] = opt.dir == PacketDirection::ToService ? Stage::Decide : Stage::Track;
      }
      ctHash[i] = stage[i] == Stage::Quiet ? ct_.hashOf(in.key) : ct_.hashOfWords(w);
      ct_.prefetch(ctHash[i]);
    }
    // Pass 2.
    for (uint32_t i = 0; i < m; ++i)
      if (stage[i] != Stage::Done && stage[i] != Stage::Fragment) ct_.prefetchFlow(ctHash[i]);
    // Pass 3.
    for (uint32_t i = 0; i < m; ++i) {
      Decision& d = dec[i];
      switch (stage[i]) {
        case Stage::Decide: decidePacket(fin[i], ctHash[i], now, opt.fromNode, d); break;
        case Stage::Track: lookupTracked(fin[i], ctHash[i], now, true, d); break;
        case Stage::Quiet:
          if (!lookupTracked(fin[i], ctHash[i], now, false, d)) d.reason = Reason::IcmpUntracked;
          break;
        case Stage::Fragment: {
          FlowInput& in = fin[i];
          const FragRec* fr = frags_.find(fragKeyOf(in.key, pp[i].ip.fragId), now);
          d = Decision{};
          if (!fr) {
            d.verdict = Verdict::Pass;
            d.reason = Reason::FragmentUnknown;
          } else if (fr->verdict != uint8_t(Verdict::Forward) && fr->verdict != uint8_t(Verdict::Reply)) {
            d.verdict = Verdict(fr->verdict);
            d.reason = Reason(fr->reason);
          } else {
            in.key.sport = fr->sport;
            in.key.dport = fr->dport;
            in.tcpFlags = 0;
            lookupTracked(in, ct_.hashOf(in.key), now, true, d);
          }
          break;
        }
        case Stage::Done: break;
      }
      finishPacket(pkts[base + i], pp[i], opt, fin[i], d, now, base + i, verdicts[base + i], reasons[base + i]);
    }
  }
}

void Dataplane::finishPacket(const PacketRef& pk, const ParsedPacket& p, const PacketOptions& opt, const FlowInput& in,
                             Decision& d, uint64_t now, uint32_t index, uint8_t& verdict, uint8_t& reason) {
  PacketCounters& pc = pktCounters_;
  Reason r = d.reason;
  if (opt.replies && opt.replies->lengths) opt.replies->lengths[index] = 0;
  if (d.verdict == Verdict::Forward || d.verdict == Verdict::Reply) {
    r = d.packetReason;
    Endpoint src, dst;
    targetsOf(ct_, d.flow, d.dir, src, dst);
    if (p.kind == PacketKind::IcmpError) {
      // in.key is the quote reversed: its source is the quote's destination.
      const IpAddr outerSrc = readAddr(pk.data + srcAddrOffset(p.ip), p.ip.family);
      const IpAddr outerDst = readAddr(pk.data + dstAddrOffset(p.ip), p.ip.family);
      translateIcmpError(pk.data, p, dst, src, outerSrc == in.key.src ? &src.addr : nullptr,
                         outerDst == in.key.dst ? &dst.addr : nullptr);
      ++pc.counts[kPktIcmpErrors];
    } else {
      rewriteFlow(pk.data, p.ip, src, dst);
    }
    ++pc.counts[kPktRewritten];
  } else if (d.verdict == Verdict::Reject && opt.replies && p.kind == PacketKind::Flow) {
    ReplySink& s = *opt.replies;
    bool tooSmall = false;
    uint32_t len = buildRejectReply(pk.data, p, opt.reject, s.data + s.used, s.capacity - s.used, &tooSmall);
    if (len) {
      s.offsets[index] = s.used;
      s.lengths[index] = len;
      s.used += len;
      ++pc.counts[kPktRejectReplies];
    } else if (tooSmall) {
      r = Reason::ReplyBufferFull;
    }
  }
  if (p.kind == PacketKind::Flow && p.ip.firstFragment)
    frags_.record(fragKeyOf(in.key, p.ip.fragId), in.key.sport, in.key.dport, uint8_t(d.verdict), uint8_t(r), now);
  verdict = uint8_t(d.verdict);
  reason = uint8_t(r);
  ++pc.verdicts[size_t(d.verdict)];
  ++pc.reasons[size_t(r)];
}

}  // namespace svcplane
