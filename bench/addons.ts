// The benchmark-only addons (native/linear, native/bench) are not part of the package: each is
// built with node-gyp the first time a benchmark needs it.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

/** Loads native/<folder>/build/Release/<name>.node, building it first if it is missing. */
export function loadBenchAddon<T>(folder: string, name: string): T {
  let dir = __dirname
  while (!fs.existsSync(path.join(dir, 'native', folder, 'binding.gyp'))) {
    if (path.dirname(dir) === dir) throw new Error(`${name}: native/${folder}/binding.gyp not found above ${__dirname}`)
    dir = path.dirname(dir)
  }
  const src = path.join(dir, 'native', folder)
  const file = path.join(src, 'build', 'Release', `${name}.node`)
  if (!fs.existsSync(file)) execFileSync('npx', ['node-gyp', 'rebuild'], { cwd: src, stdio: ['ignore', 'ignore', 'inherit'] })
  return require(file) as T
}
