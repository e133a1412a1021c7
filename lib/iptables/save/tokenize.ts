// Splits one iptables-restore line into arguments the way iptables-restore
// does: whitespace separates, double quotes group (backslash escapes inside
// them), and we remember which arguments were quoted so that serialization
// can reproduce the line exactly.

import { IptablesParseError } from './errors.js'

export interface Token {
  text: string
  quoted: boolean
}

export function tokenizeLine(line: string, lineNo: number): Token[] {
  const out: Token[] = []
  let i = 0
  const n = line.length
  while (i < n) {
    const c = line[i]!
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue }
    if (c === '"') {
      let text = ''
      i++
      let closed = false
      while (i < n) {
        const d = line[i]!
        if (d === '\\' && i + 1 < n) { text += line[i + 1]; i += 2; continue }
        if (d === '"') { closed = true; i++; break }
        text += d
        i++
      }
      if (!closed) throw new IptablesParseError(lineNo, 'unterminated quoted string')
      if (i < n && line[i] !== ' ' && line[i] !== '\t' && line[i] !== '\r') {
        throw new IptablesParseError(lineNo, `unexpected character ${JSON.stringify(line[i])} after closing quote`)
      }
      out.push({ text, quoted: true })
      continue
    }
    let j = i
    while (j < n && line[j] !== ' ' && line[j] !== '\t' && line[j] !== '\r') {
      if (line[j] === '"') throw new IptablesParseError(lineNo, 'quote inside an unquoted argument')
      j++
    }
    out.push({ text: line.slice(i, j), quoted: false })
    i = j
  }
  return out
}

/**
 * Writes a value as an argument: quoted when `force` (it was quoted in the
 * source) or when it could not survive tokenizing unquoted. Inside quotes,
 * iptables-save escapes `"`, `\` and `'` with a backslash.
 */
export function quoteArg(value: string, force: boolean): string {
  if (!force && value !== '' && !/[\s"'\\]/.test(value)) return value
  return `"${value.replace(/["\\']/g, (ch) => `\\${ch}`)}"`
}
