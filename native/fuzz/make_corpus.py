#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_packet (native/fuzz/corpus): one file per packet, the first
byte the harness's mode (bit 0 raw IP, bit 1 from-backend, bits 2-3 reject mode, bit 5 keep
replies), then the frame. The packets aim at the harness's services (172.30.0.1 and
fd00::41, ports 81-83 for IPv4, 84-86 for IPv6) so every path is reached from the start."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def v4(a): return bytes(int(x) for x in a.split("."))


def v6(first, last): return struct.pack("!H12xH", first, last)


def l4(proto, sport, dport, payload=b"", flags=0x02):
    if proto == 6:
        return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 0x50, flags, 65535, 0, 0) + payload
    if proto == 17:
        return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack("!HHII", sport, dport, 0x1234, 0) + payload


def with_csum(family, src, dst, proto, seg):
    off = {6: 16, 17: 6, 1: 2, 58: 2}.get(proto)
    if off is None:
        return seg
    pseudo = b"" if proto == 1 else src + dst + (struct.pack("!BBH", 0, proto, len(seg)) if family == 4 else struct.pack("!I3xB", len(seg), proto))
    c = csum(pseudo + seg) or (0xFFFF if proto == 17 else 0)
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def ip4(src, dst, proto, seg, frag=0, ident=7):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), ident, frag, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + seg


def ip6(src, dst, proto, seg, ext=b""):
    if ext:  # ext starts with a hop-by-hop header (next header 0 in the fixed header)
        return struct.pack("!IHBB", 0x60000000, len(ext) + len(seg), 0, 64) + src + dst + ext + seg
    return struct.pack("!IHBB", 0x60000000, len(seg), proto, 64) + src + dst + seg


def eth(frame, v6_=False, vlan=False):
    h = bytes.fromhex("020000000001020000000002")
    if vlan:
        h += b"\x81\x00\x00\x07"
    return h + (b"\x86\xdd" if v6_ else b"\x08\x00") + frame


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    c4, vip4, be4, node4, pod4 = v4("192.168.1.10"), v4("172.30.0.1"), v4("10.0.0.1"), v4("192.168.0.2"), v4("10.0.0.5")
    c6, vip6, be6 = v6(0x2001, 0x10), v6(0xFD00, 0x41), v6(0xFD00, 1)
    for proto in (6, 17, 132):
        for port in (81, 82, 83):
            seg = with_csum(4, c4, vip4, proto, l4(proto, 40000, port, b"hello"))
            seeds[f"v4-{proto}-{port}"] = (1, ip4(c4, vip4, proto, seg))
            seeds[f"v4-eth-{proto}-{port}"] = (0, eth(ip4(pod4, vip4, proto, seg), vlan=port == 82))
        for port in (84, 85, 86):
            seg = with_csum(6, c6, vip6, proto, l4(proto, 40000, port, b"hi"))
            seeds[f"v6-{proto}-{port}"] = (1, ip6(c6, vip6, proto, seg))
        reply = with_csum(4, be4, c4, proto, l4(proto, 8080, 40000, b"", 0x12))
        seeds[f"v4-reply-{proto}"] = (3, ip4(be4, c4, proto, reply))
    # Extension headers and fragments.
    seg = with_csum(6, c6, vip6, 17, l4(17, 40001, 84, b"x" * 20))
    hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([17, 0, 1, 4, 0, 0, 0, 0])
    seeds["v6-ext"] = (1, ip6(c6, vip6, 17, seg, hbh))
    frag6 = bytes([17, 0, 0, 1, 0, 0, 0, 9])
    seeds["v6-frag-first"] = (1, struct.pack("!IHBB", 0x60000000, 8 + 16, 44, 64) + c6 + vip6 + frag6 + seg[:16])
    seg4 = with_csum(4, c4, vip4, 17, l4(17, 40002, 81, b"y" * 24))
    seeds["v4-frag-first"] = (1, ip4(c4, vip4, 17, seg4[:16], frag=0x2000, ident=99))
    seeds["v4-frag-later"] = (1, ip4(c4, vip4, 17, seg4[16:], frag=2, ident=99))
    # An ICMP port unreachable from the backend, quoting a masqueraded packet.
    quoted = ip4(node4, be4, 6, with_csum(4, node4, be4, 6, l4(6, 40000, 8080)))
    icmp = b"\x03\x03\x00\x00\x00\x00\x00\x00" + quoted
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    seeds["v4-icmp-error"] = (3, ip4(be4, node4, 1, icmp))
    q6 = ip6(c6, be6, 17, with_csum(6, c6, be6, 17, l4(17, 40000, 8080)))
    icmp6 = with_csum(6, be6, c6, 58, b"\x01\x04\x00\x00\x00\x00\x00\x00" + q6)
    seeds["v6-icmp-error"] = (3, ip6(be6, c6, 58, icmp6))
    echo = b"\x08\x00\x00\x00\x00\x01\x00\x01"
    seeds["v4-echo"] = (1, ip4(c4, vip4, 1, echo[:2] + struct.pack("!H", csum(echo)) + echo[4:]))
    seeds["arp"] = (0, bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06" + bytes(28))
    seeds["reject-rst"] = (0b101001, ip4(c4, vip4, 6, with_csum(4, c4, vip4, 6, l4(6, 40003, 83))))
    for name, (mode, frame) in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([mode]) + frame)
    print(f"{len(seeds)} seeds in {OUT}")


if __name__ == "__main__":
    main()
