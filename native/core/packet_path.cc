// Dataplane::processPackets: the batch packet path. Like decideBatch, each group of packets
// goes through three passes so that their cache misses overlap: (1) parse, build the flow
// key, hash and prefetch; (2) conntrack / service lookups; (3) commit new flows, rewrite the
// packets in place, record first fragments, build reject replies.
#include <algorithm>

#include "dataplane.h"
#include "icmp_error.h"
#include "packet_rewrite.h"
#include "reject_reply.h"

namespace svcplane {

namespace {

enum class Stage : uint8_t { Done, Decide, Track, Quiet };

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
void targetsOf(const Flow& f, Dir dir, Endpoint& src, Endpoint& dst) {
  if (dir == Dir::Original) {
    src = {f.reply.dst, f.reply.dport};
    dst = {f.reply.src, f.reply.sport};
  } else {
    src = {f.orig.dst, f.orig.dport};
    dst = {f.orig.src, f.orig.sport};
  }
}

}  // namespace

bool Dataplane::lookupTracked(const FlowInput& in, uint32_t ctHash, uint64_t now, bool account, Decision& out) {
  out = Decision{};
  ++counters_.packets;
  CtHit hit = ct_.lookup(in.key, ctHash, now);
  if (hit.expired) {
    ct_.remove(hit.flow, [this](const Flow& f) { onFlowRemoved(f); }, true);
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

void Dataplane::processPackets(const PacketRef* pkts, uint32_t n, const PacketOptions& opt, uint64_t now,
                               uint8_t* verdicts, uint8_t* reasons) {
  constexpr uint32_t kGroup = 16;
  ParsedPacket pp[kGroup];
  FlowInput fin[kGroup];
  uint32_t ctHash[kGroup], feHash[kGroup];
  Decision dec[kGroup];
  NewFlow pending[kGroup];
  Stage stage[kGroup];
  bool isNew[kGroup];
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
      isNew[i] = false;
      d = Decision{};
      Reason r = parsePacket(pk.data, pk.len, opt.link, p);
      if (p.ip.family) ++pc.counts[p.ip.family == 4 ? kPktIpv4 : kPktIpv6];
      if (r != Reason::None) {
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
      in = FlowInput{};
      in.key.src = readAddr(pk.data + srcAddrOffset(ip), ip.family);
      in.key.dst = readAddr(pk.data + dstAddrOffset(ip), ip.family);
      in.key.proto = ip.proto;
      in.key.sport = p.sport;
      in.key.dport = p.dport;
      in.tcpFlags = p.tcpFlags;
      in.bytes = p.ip.end - p.ip.l3;
      in.scope = Scope::External;
      if (p.kind == PacketKind::IcmpError) {
        ++pc.counts[kPktIcmp];
        if (!icmpChecksumValid(pk.data, p)) {
          d.verdict = Verdict::Drop;
          d.reason = Reason::BadChecksum;
          continue;
        }
        // The quote is a packet of the flow going the other way: look its reverse up.
        in.key = in.key.reversed();
        in.tcpFlags = 0;
        stage[i] = Stage::Quiet;
      } else if (p.kind == PacketKind::LaterFragment) {
        ++pc.counts[kPktLaterFragments];
        const FragRec* fr = frags_.find(fragKeyOf(in.key, p.ip.fragId), now);
        if (!fr) {
          d.verdict = Verdict::Pass;
          d.reason = Reason::FragmentUnknown;
          continue;
        }
        if (fr->verdict != uint8_t(Verdict::Forward) && fr->verdict != uint8_t(Verdict::Reply)) {
          d.verdict = Verdict(fr->verdict);
          d.reason = Reason(fr->reason);
          continue;
        }
        in.key.sport = fr->sport;
        in.key.dport = fr->dport;
        in.tcpFlags = 0;
        stage[i] = Stage::Track;
      } else if (opt.dir == PacketDirection::ToService) {
        if (p.ip.firstFragment) ++pc.counts[kPktFirstFragments];
        in.packet = classify(in.key.src, opt.fromNode);
        in.scope = in.packet & (kInFromPod | kInFromNode) ? Scope::Internal : Scope::External;
        stage[i] = Stage::Decide;
      } else {
        if (p.ip.firstFragment) ++pc.counts[kPktFirstFragments];
        stage[i] = Stage::Track;
      }
      // The frontend is hashed in decideLookup, on a conntrack miss only: established flows,
      // the bulk of packets, never need it.
      ctHash[i] = ct_.hashOf(in.key);
      ct_.prefetch(ctHash[i]);
      feHash[i] = 0;
    }
    // Pass 2.
    for (uint32_t i = 0; i < m; ++i) {
      switch (stage[i]) {
        case Stage::Decide:
          isNew[i] = !decideLookup(fin[i], ctHash[i], feHash[i], now, dec[i], pending[i]);
          if (isNew[i]) ct_.prefetch(pending[i].replyHash);
          break;
        case Stage::Track:
          lookupTracked(fin[i], ctHash[i], now, true, dec[i]);
          break;
        case Stage::Quiet:
          if (!lookupTracked(fin[i], ctHash[i], now, false, dec[i])) dec[i].reason = Reason::IcmpUntracked;
          break;
        case Stage::Done:
          break;
      }
    }
    // Pass 3.
    for (uint32_t i = 0; i < m; ++i) {
      if (isNew[i]) commitNewFlow(fin[i], ctHash[i], pending[i], now, dec[i]);
      finishPacket(pkts[base + i], pp[i], opt, fin[i], dec[i], now, base + i, verdicts[base + i], reasons[base + i]);
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
    targetsOf(ct_.at(d.flow), d.dir, src, dst);
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
