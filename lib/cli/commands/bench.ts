// svcplane bench: runs the benchmark harness (bench/run.ts), compiled with tsconfig.bench.json.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { CliError } from '../errors.js'
import type { CliIO } from '../io.js'
import type { Command } from '../registry.js'

/** The package root (lib/cli/commands or dist/cli/commands, three levels down). */
const ROOT = path.resolve(__dirname, '..', '..', '..')

function runStep(io: CliIO, cmd: string, args: string[], what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...io.env } })
    child.stdout.on('data', (d: Buffer) => io.stdout.write(d.toString()))
    child.stderr.on('data', (d: Buffer) => io.stderr.write(d.toString()))
    const onAbort = () => child.kill('SIGINT')
    io.signal.addEventListener('abort', onAbort, { once: true })
    child.on('error', (err) => reject(new CliError(`cannot run ${what}`, { cause: err })))
    child.on('close', (code, sig) => {
      io.signal.removeEventListener('abort', onAbort)
      resolve(code ?? (sig ? 1 : 0))
    })
  })
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'run the benchmark harness (compiles bench/ with tsconfig.bench.json, then runs it)',
  options: [
    { name: 'full', type: 'boolean', description: 'also 100,000 services and larger runs (slower)' },
    { name: 'kernel', type: 'boolean', description: 'also the real kernel (root; iptables-restore and new connections in a network namespace)' },
    { name: 'mix', type: 'string', valueName: 'MIX', description: 'plain (ClusterIP, 2 endpoints; default) or realistic' },
    { name: 'cluster', type: 'string', valueName: 'FILE', description: 'measure your own `kubectl get services,endpointslices -A -o json` dump' },
    { name: 'json', type: 'string', valueName: 'FILE', description: 'also write the results as JSON to FILE' },
    { name: 'output', short: 'o', type: 'string', valueName: 'FILE', description: 'same as --json' },
    { name: 'out', type: 'string', valueName: 'DIR', description: 'write report.md and the SVG charts to DIR (default bench/out)' },
    { name: 'no-build', type: 'boolean', description: 'skip compiling (dist-bench/ is up to date)' },
  ],
  async run({ options: v, io }) {
    if (!fs.existsSync(path.join(ROOT, 'bench', 'run.ts')) || !fs.existsSync(path.join(ROOT, 'tsconfig.bench.json'))) {
      throw new CliError(`the benchmark harness is not part of this installation (no bench/run.ts under ${ROOT}); run it from a source checkout`)
    }
    if (v['no-build'] !== true) {
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
      if (!fs.existsSync(tsc)) throw new CliError('compiling the benchmark needs TypeScript (npm install, with dev dependencies)')
      const code = await runStep(io, process.execPath, [tsc, '-p', 'tsconfig.bench.json'], 'the TypeScript compiler')
      if (code !== 0) throw new CliError(`compiling the benchmark failed (tsc exit status ${code})`)
    }
    // --full builds 100,000-service clusters in both modes: more heap than Node's default.
    const args = ['--max-old-space-size=16384', path.join(ROOT, 'dist-bench', 'bench', 'run.js')]
    if (v.full) args.push('--full')
    if (v.kernel) args.push('--kernel')
    if (v.mix !== undefined) args.push('--mix', v.mix as string)
    if (v.cluster !== undefined) args.push('--cluster', path.resolve(io.cwd, v.cluster as string))
    const json = (v.json ?? v.output) as string | undefined
    if (json !== undefined) args.push('--json', path.resolve(io.cwd, json))
    if (v.out !== undefined) args.push('--out', path.resolve(io.cwd, v.out as string))
    const code = await runStep(io, process.execPath, args, 'the benchmark')
    if (code !== 0) throw new CliError(`the benchmark failed (exit status ${code})`)
  },
}
