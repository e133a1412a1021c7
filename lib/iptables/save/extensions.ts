// What the parser knows about iptables extensions: which options each match
// module and target takes and how many values each option consumes. Options
// of unknown modules take every following non-option word, so unknown
// extensions still round-trip.

/** option name -> number of values */
export type OptionArity = Record<string, number>

const PORT_OPTS: OptionArity = {
  '--dport': 1, '--destination-port': 1, '--sport': 1, '--source-port': 1,
}

export const MATCH_OPTIONS: Record<string, OptionArity> = {
  tcp: { ...PORT_OPTS, '--tcp-flags': 2, '--syn': 0, '--tcp-option': 1 },
  udp: { ...PORT_OPTS },
  udplite: { ...PORT_OPTS },
  sctp: { ...PORT_OPTS, '--chunk-types': 2 },
  dccp: { ...PORT_OPTS, '--dccp-types': 1, '--dccp-option': 1 },
  icmp: { '--icmp-type': 1 },
  icmp6: { '--icmpv6-type': 1 },
  multiport: {
    '--dports': 1, '--destination-ports': 1, '--sports': 1, '--source-ports': 1, '--ports': 1,
  },
  addrtype: { '--src-type': 1, '--dst-type': 1, '--limit-iface-in': 0, '--limit-iface-out': 0 },
  mark: { '--mark': 1 },
  connmark: { '--mark': 1 },
  comment: { '--comment': 1 },
  statistic: { '--mode': 1, '--probability': 1, '--every': 1, '--packet': 1 },
  recent: {
    '--name': 1, '--set': 0, '--rcheck': 0, '--update': 0, '--remove': 0, '--seconds': 1,
    '--reap': 0, '--hitcount': 1, '--rttl': 0, '--mask': 1, '--rsource': 0, '--rdest': 0,
  },
  conntrack: {
    '--ctstate': 1, '--ctproto': 1, '--ctorigsrc': 1, '--ctorigdst': 1, '--ctreplsrc': 1,
    '--ctrepldst': 1, '--ctorigsrcport': 1, '--ctorigdstport': 1, '--ctreplsrcport': 1,
    '--ctrepldstport': 1, '--ctstatus': 1, '--ctexpire': 1, '--ctdir': 1,
  },
  state: { '--state': 1 },
  physdev: {
    '--physdev-in': 1, '--physdev-out': 1, '--physdev-is-in': 0, '--physdev-is-out': 0,
    '--physdev-is-bridged': 0,
  },
  nfacct: { '--nfacct-name': 1 },
  set: {
    '--match-set': 2, '--set': 2, '--return-nomatch': 0, '--update-counters': 0,
    '--update-subcounters': 0, '--packets-eq': 1, '--packets-lt': 1, '--packets-gt': 1,
    '--bytes-eq': 1, '--bytes-lt': 1, '--bytes-gt': 1,
  },
  limit: { '--limit': 1, '--limit-burst': 1 },
  rpfilter: { '--loose': 0, '--validmark': 0, '--accept-local': 0, '--invert': 0 },
  owner: { '--uid-owner': 1, '--gid-owner': 1, '--socket-exists': 0, '--suppl-groups': 0 },
  pkttype: { '--pkt-type': 1 },
  iprange: { '--src-range': 1, '--dst-range': 1 },
  length: { '--length': 1 },
  ttl: { '--ttl-eq': 1, '--ttl-gt': 1, '--ttl-lt': 1 },
  hl: { '--hl-eq': 1, '--hl-gt': 1, '--hl-lt': 1 },
  socket: { '--transparent': 0, '--nowildcard': 0, '--restore-skmark': 0 },
  policy: { '--dir': 1, '--pol': 1, '--strict': 0, '--reqid': 1, '--spi': 1, '--proto': 1, '--mode': 1, '--tunnel-src': 1, '--tunnel-dst': 1, '--next': 0 },
  mac: { '--mac-source': 1 },
  string: { '--algo': 1, '--from': 1, '--to': 1, '--string': 1, '--hex-string': 1, '--icase': 0 },
  u32: { '--u32': 1 },
  bpf: { '--bytecode': 1, '--object-pinned': 1 },
  devgroup: { '--src-group': 1, '--dst-group': 1 },
  cgroup: { '--path': 1, '--cgroup': 1 },
  hashlimit: {
    '--hashlimit-upto': 1, '--hashlimit-above': 1, '--hashlimit-burst': 1, '--hashlimit-mode': 1,
    '--hashlimit-srcmask': 1, '--hashlimit-dstmask': 1, '--hashlimit-name': 1,
    '--hashlimit-htable-size': 1, '--hashlimit-htable-max': 1, '--hashlimit-htable-expire': 1,
    '--hashlimit-htable-gcinterval': 1, '--hashlimit': 1,
  },
}

export const TARGET_OPTIONS: Record<string, OptionArity> = {
  ACCEPT: {}, DROP: {}, RETURN: {},
  REJECT: { '--reject-with': 1 },
  DNAT: { '--to-destination': 1, '--random': 0, '--persistent': 0 },
  SNAT: { '--to-source': 1, '--random': 0, '--random-fully': 0, '--persistent': 0 },
  MASQUERADE: { '--to-ports': 1, '--random': 0, '--random-fully': 0 },
  REDIRECT: { '--to-ports': 1, '--random': 0 },
  MARK: {
    '--set-xmark': 1, '--set-mark': 1, '--or-mark': 1, '--and-mark': 1, '--xor-mark': 1,
  },
  CONNMARK: {
    '--set-xmark': 1, '--set-mark': 1, '--save-mark': 0, '--restore-mark': 0, '--nfmask': 1,
    '--ctmask': 1, '--mask': 1, '--and-mark': 1, '--or-mark': 1, '--xor-mark': 1,
  },
  LOG: {
    '--log-level': 1, '--log-prefix': 1, '--log-tcp-sequence': 0, '--log-tcp-options': 0,
    '--log-ip-options': 0, '--log-uid': 0, '--log-macdecode': 0,
  },
  NFLOG: { '--nflog-group': 1, '--nflog-prefix': 1, '--nflog-range': 1, '--nflog-size': 1, '--nflog-threshold': 1 },
  CT: { '--notrack': 0, '--zone': 1, '--helper': 1, '--ctevents': 1, '--expevents': 1, '--timeout': 1 },
  TCPMSS: { '--set-mss': 1, '--clamp-mss-to-pmtu': 0 },
  CHECKSUM: { '--checksum-fill': 0 },
  TPROXY: { '--on-port': 1, '--on-ip': 1, '--tproxy-mark': 1 },
  NOTRACK: {},
  SET: { '--add-set': 2, '--del-set': 2, '--exist': 0, '--timeout': 1 },
}

/** Options that belong to the IP header part of a rule, with their canonical name. */
export const BASE_OPTIONS: Record<string, { canonical: string; arity: number }> = {
  '-s': { canonical: '-s', arity: 1 }, '--source': { canonical: '-s', arity: 1 }, '--src': { canonical: '-s', arity: 1 },
  '-d': { canonical: '-d', arity: 1 }, '--destination': { canonical: '-d', arity: 1 }, '--dst': { canonical: '-d', arity: 1 },
  '-p': { canonical: '-p', arity: 1 }, '--protocol': { canonical: '-p', arity: 1 },
  '-i': { canonical: '-i', arity: 1 }, '--in-interface': { canonical: '-i', arity: 1 },
  '-o': { canonical: '-o', arity: 1 }, '--out-interface': { canonical: '-o', arity: 1 },
  '-f': { canonical: '-f', arity: 0 }, '--fragment': { canonical: '-f', arity: 0 },
  '-4': { canonical: '-4', arity: 0 }, '--ipv4': { canonical: '-4', arity: 0 },
  '-6': { canonical: '-6', arity: 0 }, '--ipv6': { canonical: '-6', arity: 0 },
  '-c': { canonical: '-c', arity: 2 }, '--set-counters': { canonical: '-c', arity: 2 },
}

/** Protocol names iptables accepts after -p, with their IP protocol numbers. */
export const PROTOCOLS: Record<string, number> = {
  all: 0, tcp: 6, udp: 17, udplite: 136, icmp: 1, icmpv6: 58, 'ipv6-icmp': 58, esp: 50,
  ah: 51, sctp: 132, mh: 135, gre: 47, ipip: 4, ipencap: 4, ipv6: 41, dccp: 33, igmp: 2, vrrp: 112,
  'ipv6-frag': 44, 'ipv6-route': 43, 'ipv6-nonxt': 59, 'ipv6-opts': 60, ospf: 89, pim: 103,
}

/** Targets whose semantics the evaluator implements. */
export const EVALUATED_TARGETS = new Set([
  'ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'SNAT', 'MASQUERADE', 'MARK', 'LOG', 'NFLOG',
])

/** Target names that never name a chain (an extension by that name always wins). */
export const KNOWN_TARGETS = new Set(Object.keys(TARGET_OPTIONS))

/** Built-in chains of each table, in kernel order. */
export const BUILTIN_CHAINS: Record<string, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
}
