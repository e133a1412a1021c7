#!/usr/bin/env node
'use strict'
// The svcplane command line (compiled from lib/cli by `npm run build:ts`).
let cli
try {
  cli = require('../dist/cli/main.js')
} catch (err) {
  const message = String((err && err.message) || err).split('\n')[0]
  if (err && err.code === 'MODULE_NOT_FOUND' && message.includes('dist/cli/main.js')) {
    process.stderr.write('svcplane: dist/cli/main.js is missing; build it first with `npm run build:ts`\n')
  } else if (/No native build was found/.test(message)) {
    process.stderr.write(`svcplane: the native addon is not built (${message}); build it with \`npm run build:native\`\n`)
  } else {
    process.stderr.write(`svcplane: cannot start: ${message}\n`)
  }
  if (process.env.SVCPLANE_DEBUG && err && err.stack) process.stderr.write(`${err.stack}\n`)
  process.exit(1)
}
cli.runCli(process.argv.slice(2))
