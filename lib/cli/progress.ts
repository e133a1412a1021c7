// A progress bar on stderr for long work. Drawn only on a terminal, so piped output and
// --json stay clean; elsewhere it costs nothing.
import type { CliIO } from './io.js'

export interface Progress {
  /** Sets how much is done (0..total). */
  update(done: number, label?: string): void
  /** Adds to what is done. */
  tick(n?: number): void
  /** Clears the bar. */
  done(): void
}

const WIDTH = 30
const silent: Progress = { update() {}, tick() {}, done() {} }

export function progressBar(io: Pick<CliIO, 'stderr' | 'isTTY'>, label: string, total: number): Progress {
  if (!io.isTTY || total <= 0) return silent
  let current = 0
  let text = label
  let lastDraw = 0
  const draw = (force: boolean) => {
    const now = Date.now()
    if (!force && now - lastDraw < 50) return
    lastDraw = now
    const frac = Math.min(1, current / total)
    const filled = Math.round(frac * WIDTH)
    io.stderr.write(`\r${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)} ${String(Math.round(frac * 100)).padStart(3)}% ${text}\x1b[K`)
  }
  draw(true)
  return {
    update(done, l) {
      current = done
      if (l !== undefined) text = l
      draw(current >= total)
    },
    tick(n = 1) {
      current += n
      draw(current >= total)
    },
    done() {
      io.stderr.write('\r\x1b[K')
    },
  }
}
