// What `npm pack` ships (issue 14): the sources binding.gyp compiles (so `npm install` can
// build the addon), the TypeScript output and the docs; not the fuzz corpora, the C++ tests
// or build output.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const ROOT = path.join(__dirname, '..', '..')

t.test('npm pack ships what the build needs and nothing of the test tree', async (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const files = new Set((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path))
  const bad = [...files].filter((f) => /^native\/(fuzz|test|bench|build)\/|corpus|^test\/|^build\//.test(f))
  t.strictSame(bad, [], 'no fuzz corpus, tests or build output')
  // Every source the addon is built from (binding.gyp, with its globbed core) is in the package.
  const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as { targets: Array<{ sources: string[] }> }
  const listed = gyp.targets.flatMap((x) => x.sources).filter((s) => !s.startsWith('<!'))
  const core = fs.readdirSync(path.join(ROOT, 'native', 'core')).map((f) => `native/core/${f}`)
  const headers = ['native/bridge', 'native/addon'].flatMap((d) => fs.readdirSync(path.join(ROOT, d)).filter((f) => f.endsWith('.h')).map((f) => `${d}/${f}`))
  const missing = [...listed, ...core, ...headers, 'include/svcplane.h', 'binding.gyp', 'dist/index.js', 'dist/index.d.ts', 'bin/svcplane.js'].filter((f) => !files.has(f))
  t.strictSame(missing, [], 'the build inputs and the entry points are shipped')
})
