// The package's entry points, as a user resolves them by name ('svcplane', 'svcplane/model', ...):
// each subpath loads from dist/ and holds its layer; the main entry point holds the public API,
// not the layers' internals.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import * as path from 'node:path'

const ROOT = path.join(__dirname, '..', '..')

/** The exported names of a package entry point, loaded in a fresh process through the package's own name. */
function namesOf(specifier: string): string[] {
  const out = execFileSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(Object.keys(require(${JSON.stringify(specifier)}))))`], { cwd: ROOT, encoding: 'utf8' })
  return JSON.parse(out) as string[]
}

t.test('every subpath entry point resolves and holds its layer', async (t) => {
  const table: [string, string[]][] = [
    ['svcplane', ['Proxier', 'Dataplane', 'IptablesEvaluator', 'parseIptablesSave', 'diagnose', 'ClusterWatcher', 'joinHostPort']],
    ['svcplane/model', ['ProxierCore', 'traceKubeProxy', 'categorizeEndpoints', 'planTraffic', 'EndpointSliceCache']],
    ['svcplane/iptables', ['parseIptablesSave', 'IptablesEvaluator', 'renderIptablesRestore', 'serviceClusterChainName', 'Conntrack']],
    ['svcplane/k8s', ['parseService', 'parseEndpointSlice', 'parseObjects']],
  ]
  for (const [specifier, wanted] of table) {
    const names = namesOf(specifier)
    for (const n of wanted) t.ok(names.includes(n), `${specifier} exports ${n}`)
  }
})

t.test('the main entry point does not export the layers\' internals', async (t) => {
  const names = namesOf('svcplane')
  for (const internal of ['traceKubeProxy', 'categorizeEndpoints', 'renderIptablesRestore', 'registerProxyMode', 'portProtoHash', 'IptablesConntrack', 'NativeMode', 'IptablesMode']) {
    t.notOk(names.includes(internal), `no ${internal}`)
  }
})
