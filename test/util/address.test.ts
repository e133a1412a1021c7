// The one address library: the strict text parser (lib/util/address.ts), the word form the
// netfilter evaluators use (lib/util/address-words.ts) and host:port text (lib/util/host-port.ts)
// agree on what is an address and how it is spelled.
import t from 'tap'
import { canonicalAddress } from '../../lib/util/address.js'
import { formatAddr, parseAddr, parseCidr } from '../../lib/util/address-words.js'
import { joinHostPort, splitHostPort } from '../../lib/util/host-port.js'

const TEXTS = [
  '10.0.0.1', '0.0.0.0', '255.255.255.255', '010.0.0.1', '10.0.0.256', '10.0.0', '10.0.0.1.2', '1.2.3.04', ' 10.0.0.1', '',
  '2001:db8::1', '2001:DB8:0:0:0:0:0:1', '::', '::1', 'fe80::1%eth0', '2001:db8::1::2', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9',
  '::ffff:10.0.0.1', '12345::1', 'g::1', '10.0.0.1/8', 'localhost',
]

t.test('the word form accepts exactly the addresses the strict parser accepts, and spells them the same', async (t) => {
  for (const text of TEXTS) {
    const canonical = canonicalAddress(text)
    const words = parseAddr(text)
    t.equal(words !== undefined, canonical !== undefined, `${JSON.stringify(text)}: both parsers agree it is ${canonical === undefined ? 'not ' : ''}an address`)
    // An IPv4-mapped address is family 4 to the native core, an IPv6 address to an ip6tables rule.
    if (words && canonical && !text.startsWith('::ffff:')) t.equal(formatAddr(words), canonical, `${text} formats as ${canonical}`)
  }
})

t.test('CIDRs in word form: prefix lengths, dotted masks, host bits cleared', async (t) => {
  const cases: [string, string | undefined, number | undefined][] = [
    ['10.1.2.3/8', '10.0.0.0', 8],
    ['10.0.0.0/255.255.0.0', '10.0.0.0', 16],
    ['10.0.0.0/255.0.255.0', '10.0.0.0', -1],
    ['2001:db8::1/32', '2001:db8::', 32],
    ['10.0.0.0/33', undefined, undefined],
    ['010.0.0.0/8', undefined, undefined],
  ]
  for (const [text, network, bits] of cases) {
    const c = parseCidr(text)
    t.equal(c && formatAddr(c), network, `${text}: network`)
    t.equal(c?.bits, bits, `${text}: bits`)
  }
})

t.test('host:port text is made and taken apart in one place', async (t) => {
  const cases: [string, { address: string; port: number } | undefined][] = [
    ['10.0.0.1:80', { address: '10.0.0.1', port: 80 }],
    ['[2001:db8::1]:443', { address: '2001:db8::1', port: 443 }],
    ['[2001:DB8:0::1]:443', { address: '2001:db8::1', port: 443 }],
    ['10.0.0.1:0', { address: '10.0.0.1', port: 0 }],
    ['10.0.0.1:65536', undefined],
    ['10.0.0.1:080', undefined],
    ['10.0.0.1', undefined],
    ['2001:db8::1:80', undefined],
    ['[10.0.0.1]:80', undefined],
    ['[2001:db8::1]80', undefined],
    ['host:80', undefined],
    ['10.0.0.1:-1', undefined],
  ]
  for (const [text, want] of cases) t.same(splitHostPort(text), want, JSON.stringify(text))
  t.equal(joinHostPort('10.0.0.1', 80), '10.0.0.1:80')
  t.equal(joinHostPort('2001:db8::1', 80), '[2001:db8::1]:80')
  for (const [text, want] of cases) if (want) t.same(splitHostPort(joinHostPort(want.address, want.port)), want, `${text} round-trips`)
})
