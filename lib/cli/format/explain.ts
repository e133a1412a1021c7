// explain output: one mode's steps, or two modes side by side.
import type { Explanation } from '../../proxy/explain.js'
import type { Packet } from '../../proxy/packet.js'

export function describePacket(p: Packet): string {
  const hp = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`)
  return `${p.protocol} ${hp(p.src, p.sport)} -> ${hp(p.dst, p.dport)} (hook ${p.hook ?? 'prerouting'})`
}

function wrapLine(line: string, width: number): string[] {
  const out: string[] = []
  let rest = line
  while (rest.length > width) {
    let cut = rest.lastIndexOf(' ', width)
    if (cut <= width / 3) cut = width
    out.push(rest.slice(0, cut))
    rest = '   ' + rest.slice(cut).trimStart()
  }
  out.push(rest)
  return out
}

export function sideBySide(left: { title: string; text: string }, right: { title: string; text: string }, totalWidth = 160): string {
  const col = Math.max(30, Math.floor((totalWidth - 3) / 2))
  const render = (c: { title: string; text: string }) => [c.title, '-'.repeat(Math.min(col, Math.max(c.title.length, 10))), ...c.text.split('\n').flatMap((l) => wrapLine(l, col))]
  const a = render(left)
  const b = render(right)
  const width = Math.min(col, Math.max(...a.map((l) => l.length)))
  const lines: string[] = []
  for (let i = 0; i < Math.max(a.length, b.length); i++) lines.push(`${(a[i] ?? '').padEnd(width)} | ${b[i] ?? ''}`.trimEnd())
  return lines.join('\n') + '\n'
}

export function sameDecision(a: Explanation, b: Explanation): boolean {
  const x = a.result
  const y = b.result
  if (x.action !== y.action) return false
  if (x.action === 'accept') return true
  if (x.action === 'dnat' && y.action === 'dnat') return x.servicePort === y.servicePort && x.masquerade === y.masquerade
  return x.servicePort === (y as typeof x).servicePort && (x as { reason?: string }).reason === (y as { reason?: string }).reason
}
