// kube-proxy's sortIPTablesRules (pkg/proxy/iptables/proxier_test.go, v1.31), the way its tests
// compare iptables-restore text: tables by name; chains KUBE-NODEPORTS, KUBE-SERVICES, other
// KUBE-* alphabetically, then the rest; each chain's rules kept in order, except KUBE-NODEPORTS
// and KUBE-SERVICES, stably sorted by the service name in the comment (nat KUBE-SERVICES keeps
// its "must be the last rule" rule last). Rules and chain lines are compared as text.

interface Chain {
  line: string
  name: string
  rules: string[]
}

function chainRank(name: string): [number, string] {
  if (name === 'KUBE-NODEPORTS') return [0, '']
  if (name === 'KUBE-SERVICES') return [1, '']
  return [name.startsWith('KUBE-') ? 2 : 3, name]
}

function commentService(rule: string): string | undefined {
  const m = / -m comment --comment ("[^"]*"|\S+)/.exec(rule)
  if (!m) return undefined
  const c = m[1]!.replace(/^"|"$/g, '')
  const i = c.search(/[ :]/)
  return i === -1 ? c : c.slice(0, i)
}

function byService(a: string, b: string): number {
  const x = commentService(a)
  const y = commentService(b)
  if (x === undefined || y === undefined) return 0
  return x < y ? -1 : x > y ? 1 : 0
}

export function sortIPTablesRules(text: string): string {
  const tables: { name: string; chains: Map<string, Chain>; other: string[] }[] = []
  let cur: (typeof tables)[number] | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('*')) {
      cur = { name: line.slice(1), chains: new Map(), other: [] }
      tables.push(cur)
    } else if (line === 'COMMIT') {
      cur = undefined
    } else if (cur === undefined) {
      throw new Error(`line outside a table: ${line}`)
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!
      cur.chains.set(name, { line, name, rules: [] })
    } else if (line.startsWith('-A ')) {
      const name = line.split(' ')[1]!
      const c = cur.chains.get(name)
      if (!c) throw new Error(`rule for undeclared chain ${name}: ${line}`)
      c.rules.push(line)
    } else {
      cur.other.push(line)
    }
  }
  tables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const out: string[] = []
  for (const t of tables) {
    const chains = [...t.chains.values()].sort((a, b) => {
      const [ra, na] = chainRank(a.name)
      const [rb, nb] = chainRank(b.name)
      return ra - rb || (na < nb ? -1 : na > nb ? 1 : 0)
    })
    for (const c of chains) {
      if (c.name === 'KUBE-NODEPORTS') c.rules.sort(byService)
      if (c.name === 'KUBE-SERVICES') {
        const last = (r: string) => (t.name === 'nat' && r.includes('must be the last rule') ? 1 : 0)
        c.rules.sort((a, b) => last(a) - last(b) || byService(a, b))
      }
    }
    out.push(`*${t.name}`, ...chains.map((c) => c.line), ...chains.flatMap((c) => c.rules), ...t.other, 'COMMIT')
  }
  return out.join('\n') + '\n'
}
