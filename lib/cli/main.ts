// svcplane's entry point: finds the command, parses its options, runs it and turns whatever
// it throws into one line on stderr and an exit status (0 ok, 1 failure, 2 usage).
import { parseArgs, suggest } from './args.js'
import './commands/index.js'
import { describeError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeOf, UsageError } from './errors.js'
import { processIO, type CliIO } from './io.js'
import { commandHelp, getCommand, HELP_OPTION, listCommands, programHelp } from './registry.js'
import { packageVersion } from './version.js'

export const PROGRAM = 'svcplane'

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const version = packageVersion()
  const [first, ...rest] = argv
  if (first === undefined) {
    io.stderr.write(programHelp(version, PROGRAM))
    return EXIT_USAGE
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined
    const c = topic !== undefined ? getCommand(topic) : undefined
    if (topic !== undefined && c === undefined) return usageFailure(io, new UsageError(`unknown command ${JSON.stringify(topic)}`))
    io.stdout.write(c ? commandHelp(c, PROGRAM) : programHelp(version, PROGRAM))
    return EXIT_OK
  }
  if (first === '--version' || first === '-V') {
    io.stdout.write(`${PROGRAM} ${version}\n`)
    return EXIT_OK
  }
  const command = getCommand(first)
  if (command === undefined) {
    if (first.startsWith('-')) return usageFailure(io, new UsageError(`unknown option ${first} (options go after the command)`))
    const hint = suggest(first, listCommands().map((c) => c.name))
    return usageFailure(io, new UsageError(`unknown command ${JSON.stringify(first)}${hint ? ` (did you mean ${hint}?)` : ''}`))
  }
  try {
    const parsed = parseArgs(rest, [...command.options, HELP_OPTION], command.name)
    if (parsed.values.help === true) {
      io.stdout.write(commandHelp(command, PROGRAM))
      return EXIT_OK
    }
    const specs = command.positionals ?? []
    const variadic = specs.some((p) => p.variadic)
    if (!variadic && parsed.positionals.length > specs.length) {
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[specs.length])}`, command.name)
    }
    const missing = specs.filter((p, i) => p.required && parsed.positionals[i] === undefined)
    if (missing.length) throw new UsageError(`missing ${missing.map((p) => p.name).join(', ')}`, command.name)
    delete parsed.values.help
    const status = await command.run({ options: parsed.values, positionals: parsed.positionals, given: parsed.given, io, command: command.name })
    return typeof status === 'number' ? status : EXIT_OK
  } catch (err) {
    if (err instanceof UsageError) return usageFailure(io, err)
    io.stderr.write(`${PROGRAM} ${command.name}: ${describeError(err)}\n`)
    if (io.env.SVCPLANE_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`)
    return exitCodeOf(err) || EXIT_FAILURE
  }
}

function usageFailure(io: CliIO, err: UsageError): number {
  const where = err.command ? `${PROGRAM} ${err.command}` : PROGRAM
  io.stderr.write(`${where}: ${err.message}\nRun '${where} --help' for usage.\n`)
  return EXIT_USAGE
}

/** What bin/svcplane.js calls: the real process, signals stop long-running commands. */
export function runCli(argv: readonly string[] = process.argv.slice(2)): void {
  const controller = new AbortController()
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    signals++
    if (signals > 1) process.exit(sig === 'SIGINT' ? 130 : 143)
    controller.abort(new Error(`received ${sig}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // `svcplane dump | head` closes stdout early: that is not an error worth a message.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  })
  main(argv, processIO(controller.signal)).then(
    (code) => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.exitCode = code
    },
    (err: unknown) => {
      process.stderr.write(`${PROGRAM}: ${describeError(err)}\n`)
      process.exitCode = EXIT_FAILURE
    },
  )
}
