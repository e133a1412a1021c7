// Log lines of long-running commands, on stderr: "2024-08-13T10:00:00.123Z LEVEL message".
import type { CliIO } from './io.js'

export type Level = 'info' | 'warn' | 'error'

export interface Logger {
  info(msg: string): void
  warn(msg: string): void
  error(msg: string): void
}

export function logger(io: Pick<CliIO, 'stderr'>, json = false): Logger {
  const line = (level: Level, msg: string) => {
    const time = new Date().toISOString()
    io.stderr.write(json ? JSON.stringify({ time, level, msg }) + '\n' : `${time} ${level.toUpperCase().padEnd(5)} ${msg}\n`)
  }
  return { info: (m) => line('info', m), warn: (m) => line('warn', m), error: (m) => line('error', m) }
}
