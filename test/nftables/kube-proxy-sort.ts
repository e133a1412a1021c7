// kube-proxy's sortNFTablesTransaction (pkg/proxy/nftables/helpers_test.go), the way its
// tests compare nftables output: blank lines and comments dropped; lines ordered by object
// type (table, chain, rule, set, map, element), then object name; rules keep the order they
// were added in within their chain; anything else of one type and name by the whole line.
const ORDER: Record<string, number> = { table: 10, chain: 9, rule: 8, set: 7, map: 6, element: 5 }

export function sortNFTablesTransaction(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const indexed = lines.map((line, i) => ({ line, i, words: line.split(' ') }))
  indexed.sort((a, b) => {
    if (a.words.length >= 5 && b.words.length >= 5) {
      const [ta, tb] = [a.words[1]!, b.words[1]!]
      if (ta !== tb) return (ORDER[tb] ?? 0) - (ORDER[ta] ?? 0)
      const [na, nb] = [a.words[4]!, b.words[4]!]
      if (na !== nb) return na < nb ? -1 : 1
      if (ta !== 'rule' && a.line !== b.line) return a.line < b.line ? -1 : 1
    }
    return a.i - b.i
  })
  return indexed.map((x) => x.line).join('\n')
}
