// Address parsing and formatting: strict parsing (what the kernel would route differently must
// not parse), RFC 5952 canonical text, and CIDRs with host bits cleared.
import t from 'tap'
import { addressFamily, canonicalAddress, formatAddress, parseCidr } from '../../lib/index.js'

t.test('IPv4 dotted quads parse and format back unchanged', async (t) => {
  for (const a of ['0.0.0.0', '1.2.3.4', '10.0.0.1', '127.0.0.1', '192.168.100.200', '255.255.255.255']) {
    t.equal(addressFamily(a), 4, `${a} is IPv4`)
    t.equal(canonicalAddress(a), a, `${a} is canonical`)
  }
})

t.test('IPv4 is stored v4-mapped in 16 bytes', async (t) => {
  const bytes = parseCidr('10.1.2.3')!.bytes
  t.strictSame([...bytes], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3])
  t.equal(formatAddress(bytes), '10.1.2.3')
  const at = new Uint8Array(20)
  at.set(bytes, 4)
  t.equal(formatAddress(at, 4), '10.1.2.3', 'formatAddress honours the offset')
})

t.test('invalid IPv4 forms are refused', async (t) => {
  const bad = [
    '', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.256', '999.1.1.1',
    '010.0.0.1', '1.02.3.4', '1.2.3.04', '00.1.2.3', // leading zeros: octal to some parsers
    '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.-4', '+1.2.3.4', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4/32',
    '0x1.2.3.4', '1.2.3.a', '10', '10.1', '1.2.3.4\n', '１.2.3.4',
  ]
  for (const a of bad) {
    t.equal(addressFamily(a), 0, `${JSON.stringify(a)} is not an address`)
    t.equal(canonicalAddress(a), undefined, `${JSON.stringify(a)} has no canonical form`)
  }
})

t.test('IPv6 is formatted per RFC 5952', async (t) => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1::', '1::'],
    ['2001:DB8::1', '2001:db8::1'], // 4.3: lower case
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'], // 4.1: no leading zeros
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3: the first of equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3: the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: a single 0 is not compressed
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fe80::abcd:ef01', 'fe80::abcd:ef01'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['2001:db8::', '2001:db8::'],
    ['0:0:1:0:0:0:0:0', '0:0:1::'],
  ]
  for (const [text, canonical] of cases) {
    t.equal(addressFamily(text), 6, `${text} is IPv6`)
    t.equal(canonicalAddress(text), canonical, `${text} -> ${canonical}`)
    t.equal(canonicalAddress(canonical), canonical, `${canonical} is a fixed point`)
  }
})

t.test('IPv6 with an embedded IPv4 tail', async (t) => {
  // v4-mapped addresses are the IPv4 address: one key per endpoint, whatever the spelling.
  t.equal(canonicalAddress('::ffff:1.2.3.4'), '1.2.3.4')
  t.equal(canonicalAddress('::FFFF:10.0.0.1'), '10.0.0.1')
  t.equal(canonicalAddress('0:0:0:0:0:ffff:192.168.1.1'), '192.168.1.1')
  t.strictSame([...parseCidr('::ffff:1.2.3.4/128')!.bytes], [...parseCidr('1.2.3.4')!.bytes], 'same 16 bytes as the dotted quad')
  // Any other embedding is just IPv6 (RFC 5952 section 5 recommends mixed notation only for
  // recognised v4 forms), so it is printed in hex.
  t.equal(canonicalAddress('64:ff9b::192.0.2.33'), '64:ff9b::c000:221')
  t.equal(canonicalAddress('::1.2.3.4'), '::102:304')
  t.equal(canonicalAddress('1:2:3:4:5:6:1.2.3.4'), '1:2:3:4:5:6:102:304')
  // The tail must itself be a strict dotted quad, and only at the end.
  for (const a of ['::ffff:1.2.3', '::ffff:01.2.3.4', '::ffff:1.2.3.256', '1.2.3.4::', '::1.2.3.4:1', '1:2:3:4:5:6:7:1.2.3.4'])
    t.equal(addressFamily(a), 0, `${a} is refused`)
})

t.test('invalid IPv6 forms are refused', async (t) => {
  const bad = [
    ':', ':::', '::::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:',
    '1:2:3:4::5:6:7:8', // "::" must stand for at least one group
    '12345::', '::g', 'fe80::1%eth0', 'fe80::1%1', '[::1]', '::1/128', ' ::1', '::1 ', '2001:db8::-1',
    '1:2:3:4:5:6:7:8:', 'a'.repeat(46),
  ]
  for (const a of bad) {
    t.equal(addressFamily(a), 0, `${JSON.stringify(a)} is not an address`)
    t.equal(canonicalAddress(a), undefined)
  }
})

t.test('non-strings are not addresses', async (t) => {
  for (const v of [undefined, null, 0x0a000001, {}, ['1.2.3.4'], true]) {
    t.equal(addressFamily(v as unknown as string), 0, `${String(v)}`)
    t.equal(canonicalAddress(v as unknown as string), undefined)
    t.equal(parseCidr(v as unknown as string), undefined)
  }
})

t.test('parseCidr: IPv4 prefixes, host bits cleared, length over the 16-byte form', async (t) => {
  const c = parseCidr('10.1.2.3/8')!
  t.equal(c.family, 4)
  t.equal(c.bits, 8 + 96)
  t.equal(c.text, '10.0.0.0/8')
  t.strictSame([...c.bytes.slice(12)], [10, 0, 0, 0])
  t.equal(parseCidr('10.255.255.255/9')!.text, '10.128.0.0/9', 'a partial byte is masked')
  t.equal(parseCidr('192.168.1.77/30')!.text, '192.168.1.76/30')
  t.equal(parseCidr('1.2.3.4/32')!.text, '1.2.3.4/32')
  t.equal(parseCidr('1.2.3.4')!.text, '1.2.3.4/32', 'a bare address is a host prefix')
  t.equal(parseCidr('1.2.3.4')!.bits, 128)
  const all = parseCidr('8.8.8.8/0')!
  t.equal(all.text, '0.0.0.0/0')
  t.equal(all.bits, 96, 'IPv4 /0 still pins the v4-mapped prefix')
  t.strictSame([...all.bytes.slice(0, 12)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
})

t.test('parseCidr: IPv6 prefixes', async (t) => {
  const c = parseCidr('2001:db8:abcd:12::ffff/64')!
  t.equal(c.family, 6)
  t.equal(c.bits, 64)
  t.equal(c.text, '2001:db8:abcd:12::/64')
  t.equal(parseCidr('2001:db8::ffff/112')!.text, '2001:db8::/112')
  t.equal(parseCidr('2001:db8::1/127')!.text, '2001:db8::/127')
  t.equal(parseCidr('2001:db8::1/128')!.text, '2001:db8::1/128')
  t.equal(parseCidr('2001:db8::1')!.bits, 128)
  t.equal(parseCidr('fe80::1/10')!.text, 'fe80::/10')
  t.equal(parseCidr('ff00::1/7')!.text, 'fe00::/7', 'a partial byte is masked')
  const all = parseCidr('2001:db8::1/0')!
  t.equal(all.text, '::/0')
  t.equal(all.bits, 0)
})

t.test('parseCidr: invalid prefixes are refused', async (t) => {
  const bad = [
    '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/8.0', '10.0.0.0/ 8', '10.0.0.0/8 ',
    '10.0.0.0/1000', '10.0.0.0/a', '10.0.0/8', '010.0.0.0/8', '/8', '', '2001:db8::/129', '2001:db8::/-0',
    'fe80::1%eth0/64', '2001:db8::/0x40',
  ]
  for (const c of bad) t.equal(parseCidr(c), undefined, `${JSON.stringify(c)} is not a CIDR`)
})

// Regressions: bugs found by the test author, fixed; each test reproduces its bug.
t.test('regressions', async (t) => {
  t.test('a v4-mapped IPv6 CIDR formats as text that parses back to the same prefix', async (t) => {
    const c = parseCidr('::ffff:10.0.0.0/104')!
    t.ok(c, 'parses')
    const again = parseCidr(c.text)
    t.ok(again, `${c.text} parses`)
    t.equal(again?.bits, c.bits, 'same prefix length')
  })
  t.test('an IPv4-mapped address is IPv4 everywhere: family, canonical text, CIDR', async (t) => {
    t.equal(addressFamily('::ffff:1.2.3.4'), 4)
    t.equal(addressFamily('0:0:0:0:0:ffff:102:304'), 4)
    t.equal(addressFamily('::1.2.3.4'), 6, 'IPv4-compatible is not mapped')
    const c = parseCidr('::ffff:10.0.0.0/104')!
    t.strictSame([c.text, c.family, c.bits], ['10.0.0.0/8', 4, 104])
    t.strictSame([...c.bytes], [...parseCidr('10.0.0.0/8')!.bytes])
    const host = parseCidr('::ffff:1.2.3.4')!
    t.strictSame([host.text, host.family, host.bits], ['1.2.3.4/32', 4, 128])
    for (const text of ['::ffff:0:0/95', '::ffff:10.0.0.0/80', '::/0', '::ffff:0.0.0.0/88']) {
      const p = parseCidr(text)!
      t.equal(p.family, 6, `${text} reaches outside the mapped range: IPv6`)
      t.equal(parseCidr(p.text)?.bits, p.bits, `${text} -> ${p.text} parses back`)
    }
    t.equal(parseCidr('::ffff:0.0.0.0/96')!.text, '0.0.0.0/0')
    t.equal(parseCidr('::ffff:10.0.0.0/200'), undefined)
  })
  t.test('prefix lengths with leading zeros are refused', async (t) => {
    for (const c of ['10.0.0.0/08', '10.0.0.0/00', '2001:db8::/064', '10.0.0.0/+8'])
      t.equal(parseCidr(c), undefined, `${c} is not a CIDR`)
    t.equal(parseCidr('10.0.0.0/0')?.text, '0.0.0.0/0')
  })
})
