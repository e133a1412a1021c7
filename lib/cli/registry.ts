// The command registry. A command is one file under lib/cli/commands/ exporting a Command;
// commands/index.ts registers it. main() adds --help to every command and handles errors and
// exit codes, so a command only declares its options and does its work.
import { type OptionSpec, type ParsedValues, type PositionalSpec } from './args.js'
import type { CliIO } from './io.js'

export interface CommandContext {
  /** Option values, typed and defaulted by the parser. */
  options: ParsedValues
  positionals: string[]
  /** The options given on the command line, by name (the rest hold their defaults); a --config file fills only the others. */
  given?: ReadonlySet<string>
  io: CliIO
  /** The command's name as registered. */
  command: string
}

export interface Command {
  name: string
  /** One line, shown in `svcplane --help`. */
  summary: string
  /** Paragraphs shown by `svcplane NAME --help` after the usage line. */
  description?: string
  options: OptionSpec[]
  positionals?: PositionalSpec[]
  /** Examples shown in help, one command line each. */
  examples?: string[]
  /** Returns the exit status (default 0); throws UsageError / CliError / anything else on failure. */
  run(ctx: CommandContext): Promise<number | void> | number | void
}

const commands = new Map<string, Command>()

export function registerCommand(command: Command): void {
  if (!/^[a-z][a-z0-9-]*$/.test(command.name)) throw new TypeError(`command name must be lower-case words, got ${JSON.stringify(command.name)}`)
  if (commands.has(command.name)) throw new Error(`command ${JSON.stringify(command.name)} is already registered`)
  for (const o of command.options) {
    if (o.name === 'help' || o.short === 'h') throw new Error(`command ${command.name}: --help / -h is added by the CLI`)
  }
  commands.set(command.name, command)
}

export function getCommand(name: string): Command | undefined {
  return commands.get(name)
}

export function listCommands(): Command[] {
  return [...commands.values()].sort((a, b) => a.name.localeCompare(b.name))
}

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', description: 'show this help and exit' }

function wrap(text: string, width: number, indent: string): string {
  const out: string[] = []
  for (const para of text.split('\n')) {
    let line = ''
    for (const word of para.split(/\s+/).filter(Boolean)) {
      if (line !== '' && line.length + 1 + word.length > width) {
        out.push(indent + line)
        line = word
      } else {
        line = line === '' ? word : `${line} ${word}`
      }
    }
    out.push(indent + line)
  }
  return out.join('\n')
}

function optionLabel(o: OptionSpec): string {
  const value = o.type === 'boolean' ? '' : ` ${o.valueName ?? o.type.toUpperCase()}`
  return `${o.short ? `-${o.short}, ` : '    '}--${o.name}${value}`
}

function defaultText(o: OptionSpec): string {
  if (o.default === undefined || o.default === false) return ''
  if (Array.isArray(o.default)) return o.default.length ? ` (default ${o.default.join(',')})` : ''
  if (o.type === 'duration') {
    const s = o.default as number
    return ` (default ${s < 1 ? `${Math.round(s * 1000)}ms` : `${s}s`})`
  }
  return ` (default ${String(o.default)})`
}

export function commandHelp(c: Command, program = 'svcplane'): string {
  const pos = (c.positionals ?? []).map((p) => {
    const n = p.variadic ? `${p.name}...` : p.name
    return p.required ? n : `[${n}]`
  })
  const lines = [`Usage: ${program} ${c.name} [options]${pos.length ? ' ' + pos.join(' ') : ''}`, '', wrap(c.summary, 90, '')]
  if (c.description) lines.push('', wrap(c.description, 90, ''))
  if (c.positionals?.length) {
    lines.push('', 'Arguments:')
    for (const p of c.positionals) lines.push(`  ${p.name.padEnd(30)} ${p.description}`)
  }
  lines.push('', 'Options:')
  for (const o of [...c.options, HELP_OPTION]) {
    if (o.hidden) continue
    const label = optionLabel(o)
    const desc = `${o.description}${o.choices ? ` (${o.choices.join('|')})` : ''}${defaultText(o)}`
    lines.push(label.length > 32 ? `  ${label}\n${wrap(desc, 70, ' '.repeat(35))}` : `  ${label.padEnd(32)} ${wrap(desc, 70, ' '.repeat(35)).trimStart()}`)
  }
  if (c.examples?.length) {
    lines.push('', 'Examples:')
    for (const e of c.examples) lines.push(`  ${e}`)
  }
  return lines.join('\n') + '\n'
}

export function programHelp(version: string, program = 'svcplane'): string {
  const lines = [
    `${program} ${version}: a userspace, eBPF-style Kubernetes service dataplane with kube-proxy's semantics`,
    '',
    `Usage: ${program} <command> [options]`,
    `       ${program} <command> --help`,
    `       ${program} --version`,
    '',
    'Commands:',
  ]
  for (const c of listCommands()) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`)
  lines.push('', 'Exit status: 0 success, 1 failure, 2 usage error.')
  return lines.join('\n') + '\n'
}
