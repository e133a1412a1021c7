// Counts the tap suite from each test file's raw TAP (tap --output-dir DIR), parsed by tap's own
// parser rather than grepped: a file's top-level subtests are its tests; a file that fails without
// a failing subtest (a crash, a missing plan) counts as one failure. Prints each failing file and
// one last line `tap: P passed, F failed, S skipped` for .ci/run to read.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Parser } from 'tap-parser'

const dir = process.argv[2]
const files = []
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const p = join(d, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.tap')) files.push(p)
  }
}
try {
  walk(dir)
} catch (e) {
  console.log(`tap: no raw TAP output in ${dir}: ${e.message}`)
}

let passed = 0
let failed = 0
let skipped = 0
for (const file of files.sort()) {
  const text = readFileSync(file, 'utf8')
  const results = await new Promise((resolve) => {
    const parser = new Parser(resolve)
    parser.end(text)
  })
  // No top-level plan line means the file died before it finished (tap writes the plan last).
  const finished = /^1\.\.\d+/m.test(text)
  const fileFailed = results.fail > 0 ? results.fail : results.ok && finished ? 0 : 1
  skipped += results.skip
  passed += results.pass - results.skip - results.todo
  failed += fileFailed
  if (fileFailed) {
    console.log(`FAILED ${file.slice(dir.length + 1).replace(/\.tap$/, '')}: ${fileFailed} failed`)
    for (const f of results.failures.slice(0, 10)) console.log(`  not ok ${f.id ?? ''} - ${f.name}`)
    // The failing assertions at any depth, with their diagnostics, so a CI log says what broke.
    const lines = text.split('\n')
    let shown = 0
    for (let i = 0; i < lines.length && shown < 8; i++) {
      if (!/^\s*not ok /.test(lines[i])) continue
      shown++
      console.log(lines.slice(i, i + 24).join('\n'))
    }
  }
}
if (files.length === 0) failed = Math.max(failed, 1)
console.log(`tap: ${files.length} files; ${passed} passed, ${failed} failed, ${skipped} skipped`)
