// The addon is loaded on first use (issue 14): the library imports, parses and renders
// iptables and runs the iptables mode with no loadable .node file; a Dataplane then says how
// to build the addon (code NATIVE_UNAVAILABLE). setNativeBinding injects another binding.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { Dataplane, errorCode, setNativeBinding } from '../../lib/index.js'

t.test('no addon: everything but the native mode works', async (t) => {
  const child = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, 'helpers', 'no-addon-child.ts')], { encoding: 'utf8', timeout: 120_000 })
  t.equal(child.status, 0, child.stderr)
  const out = JSON.parse(child.stdout.trim().split('\n').pop()!)
  t.equal(out.imported, true, 'the library imports')
  t.strictSame(out.parsedTables, ['nat'], 'iptables-save text parses')
  t.equal(out.syncErrors, 0)
  t.match(out.route, { action: 'dnat', servicePort: 'shop/web:http' }, 'the iptables mode routes')
  t.equal(out.restoreHasServices, true, 'iptables-restore text renders')
  for (const what of ['dataplane', 'nativeProxier']) {
    t.match(out[what], { code: 'NATIVE_UNAVAILABLE', name: 'SvcplaneError' }, `${what}: NATIVE_UNAVAILABLE`)
    t.match(out[what].message, /native addon could not be loaded \(native addons are hidden in this process\); build it with `npm rebuild svcplane`.*or use mode 'iptables'/)
  }
})

t.test('setNativeBinding: a path or a module; bad values refused', async (t) => {
  t.teardown(() => setNativeBinding(undefined))
  setNativeBinding('/nonexistent/svcplane.node')
  const err = (() => {
    try {
      new Dataplane()
    } catch (e) {
      return e as Error
    }
  })()
  t.equal(errorCode(err), 'NATIVE_UNAVAILABLE')
  t.match(err!.message, /the addon "\/nonexistent\/svcplane\.node" could not be loaded/)
  setNativeBinding(path.join(__dirname, '..', '..', 'build', 'Release', 'svcplane.node'))
  t.equal(new Dataplane({ seed: 1n }).map('services').size, 0, 'an explicit path loads')
  const real = require(path.join(__dirname, '..', '..', 'build', 'Release', 'svcplane.node'))
  let created = 0
  setNativeBinding({ ...real, create: (config: Record<string, unknown>) => (created++, real.create(config)) })
  new Dataplane({ seed: 1n })
  t.equal(created, 1, 'an injected module is used')
  setNativeBinding(undefined)
  new Dataplane({ seed: 1n })
  t.equal(created, 1, 'undefined restores the default')
  for (const bad of [42, null, {}, { create: 1 }]) {
    t.throws(() => setNativeBinding(bad as never), { name: 'TypeError', code: 'INVALID', message: /setNativeBinding: binding must be a path to the addon or its module/ })
  }
})
