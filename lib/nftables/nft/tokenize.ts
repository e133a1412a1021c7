// Splits nft text into tokens. Words run until whitespace or one of `{ } ; , "`; `# handle N`
// (what `nft -a list` appends) becomes a handle token and every other `#` comment is dropped.
// Newlines are tokens: they end statements outside braces.

import { NftParseError } from './errors.js'

export interface Token {
  type: 'word' | 'string' | 'punct' | 'nl' | 'handle'
  value: string
  line: number
  /** whitespace came right before this token (`a,b` is one list, `a, b` two items) */
  space: boolean
}

const PUNCT = new Set(['{', '}', ';', ','])

export function tokenize(text: string): Token[] {
  const out: Token[] = []
  let line = 1
  let i = 0
  let space = true
  const n = text.length
  while (i < n) {
    const c = text[i]!
    if (c === '\n') {
      out.push({ type: 'nl', value: '\n', line, space })
      line++
      i++
      space = true
      continue
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++
      space = true
      continue
    }
    if (c === '\\' && text[i + 1] === '\n') {
      // line continuation
      i += 2
      line++
      space = true
      continue
    }
    if (c === '#') {
      let j = text.indexOf('\n', i)
      if (j === -1) j = n
      const m = /^#\s*handle\s+(\d+)\s*$/.exec(text.slice(i, j))
      if (m) out.push({ type: 'handle', value: m[1]!, line, space: true })
      i = j
      space = true
      continue
    }
    if (c === '"') {
      const j = text.indexOf('"', i + 1)
      const nl = text.indexOf('\n', i + 1)
      if (j === -1 || (nl !== -1 && nl < j)) throw new NftParseError(line, 'unterminated string')
      out.push({ type: 'string', value: text.slice(i + 1, j), line, space })
      i = j + 1
      space = false
      continue
    }
    if (PUNCT.has(c)) {
      out.push({ type: 'punct', value: c, line, space })
      i++
      space = false
      continue
    }
    let j = i
    while (j < n) {
      const d = text[j]!
      if (d === ' ' || d === '\t' || d === '\n' || d === '\r' || d === '"' || d === '#' || PUNCT.has(d)) break
      j++
    }
    out.push({ type: 'word', value: text.slice(i, j), line, space })
    i = j
    space = false
  }
  return out
}
