// Every command of the README's "From the command line" block, run as written (in-process,
// from the repository root) against the fixtures the repository ships.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { main } from '../../lib/cli/main.js'
import { bufferIO } from '../../lib/cli/io.js'

const ROOT = path.join(__dirname, '..', '..')
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const section = readme.slice(readme.indexOf('### From the command line'))
const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!
const commands = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l.startsWith('svcplane '))

/** What shows a long-running command is up (it is then stopped as Ctrl-C would). */
const STARTED: Record<string, RegExp> = { proxy: /proxying \d+ frontends/ }

t.test('the README has the commands', async (t) => {
  t.ok(commands.length >= 6, `${commands.length} commands`)
  for (const c of ['explain', 'dump', 'doctor', 'run', 'pcap', 'proxy']) t.ok(commands.some((l) => l.startsWith(`svcplane ${c} `)), c)
  for (const l of commands) t.notMatch(l, /['"$`|<>]/, 'plain words, split on spaces')
})

for (const line of commands) {
  t.test(line, async (t) => {
    const argv = line.split(/\s+/).slice(1)
    const stop = new AbortController()
    const io = Object.assign(bufferIO(stop.signal), { cwd: ROOT })
    const started = STARTED[argv[0]!]
    const running = main(argv, io)
    if (started !== undefined) {
      for (let i = 0; i < 200 && !started.test(io.err); i++) await new Promise((r) => setTimeout(r, 25))
      t.match(io.err, started, 'started')
      stop.abort()
    }
    const code = await running
    t.equal(code, 0, io.err)
    t.notMatch(io.err, /svcplane \w+: (?!note:)/, 'no error on stderr')
    if (started === undefined) t.ok(io.out.length > 0, 'printed something')
  })
}
