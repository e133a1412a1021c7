// Runs one of the node's tools (iptables-restore, nft, ...) with its input on stdin, bounded in
// time, and turns a refusal into an error that carries the tool's own words.
import { spawn } from 'node:child_process'
import { SvcplaneError } from '../errors.js'

export interface ToolResult {
  status: number | null
  stdout: string
  stderr: string
}

/** Longest a tool may run (a full restore of 20,000 services takes ~7 s here). */
const TOOL_TIMEOUT_MS = 120_000

/** Runs `cmd args` with `input` on stdin; never throws for a non-zero exit (see runChecked). */
export function runTool(cmd: string, args: readonly string[], input = ''): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    // Our own timer: spawn's `timeout` is never cleared when the tool cannot be started.
    const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS)
    const finish = (r: ToolResult) => {
      clearTimeout(timer)
      resolve(r)
    }
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', (err) => finish({ status: null, stdout, stderr: stderr + err.message }))
    child.on('close', (status, signal) => finish({ status, stdout, stderr: signal ? `${stderr}killed by ${signal}` : stderr }))
    // A tool that exits before reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}

/** Runs the tool and throws SvcplaneError APPLY_FAILED with its stderr when it fails. */
export async function runChecked(cmd: string, args: readonly string[], input = ''): Promise<string> {
  const r = await runTool(cmd, args, input)
  if (r.status !== 0) {
    const words = r.stderr.trim() || r.stdout.trim() || `exit status ${r.status}`
    throw new SvcplaneError('APPLY_FAILED', `${[cmd, ...args].join(' ')} failed: ${words}`)
  }
  return r.stdout
}
