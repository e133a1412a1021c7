import * as fs from 'node:fs'
import * as path from 'node:path'

/** The package version (lib/cli and dist/cli both sit two levels below package.json). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}
