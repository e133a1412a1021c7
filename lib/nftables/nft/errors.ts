// Parse and load errors carry the 1-based line number, in the message and as a field, as
// `nft -f` reports them, so a caller can point at the line of a long ruleset.

export class NftParseError extends SyntaxError {
  readonly line: number
  readonly code = 'INVALID'
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`)
    this.name = 'NftParseError'
    this.line = line
  }
}
