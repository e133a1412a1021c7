// Parse errors carry the 1-based line number, in the message and as a field,
// so a caller can point at the offending line of a multi-thousand-line dump.

export class IptablesParseError extends SyntaxError {
  readonly line: number
  /** A parse error is bad input: code 'INVALID', as every bad argument of the library. */
  readonly code = 'INVALID'
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`)
    this.name = 'IptablesParseError'
    this.line = line
  }
}
