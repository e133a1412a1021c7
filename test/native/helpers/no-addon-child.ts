// Run in a child process with every .node file made unloadable: what of the library still works.
// Prints one JSON line for test/native/lazy-addon.test.ts.
import Module from 'node:module'
import * as fs from 'node:fs'
import * as path from 'node:path'

const extensions = (Module as unknown as { _extensions: Record<string, unknown> })._extensions
extensions['.node'] = () => {
  throw new Error('native addons are hidden in this process')
}

const out: Record<string, unknown> = {}
const lib = require('../../../lib/index.js') as typeof import('../../../lib/index.js')
out.imported = true
const save = '*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 172.30.0.1/32 -p tcp --dport 80 -j ACCEPT\nCOMMIT\n'
out.parsedTables = [...lib.parseIptablesSave(save).tables.keys()]
const cluster = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'cluster.json'), 'utf8'))
const p = new lib.Proxier({ mode: 'iptables', nodeName: 'node-a', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.244.0.0/16'], seed: 1 })
p.applyList(cluster)
out.syncErrors = p.sync().errors.length
out.route = p.route({ src: '10.244.0.9', sport: 40000, dst: '172.30.10.5', dport: 80, protocol: 'TCP', hook: 'prerouting' })
out.restoreHasServices = p.iptablesRestore().includes('-A KUBE-SERVICES')
const failure = (f: () => unknown) => {
  try {
    f()
    return 'no error'
  } catch (e) {
    return { code: lib.errorCode(e), name: (e as Error).name, message: (e as Error).message }
  }
}
out.dataplane = failure(() => new lib.Dataplane())
out.nativeProxier = failure(() => new lib.Proxier({ mode: 'native', nodeName: 'node-a', nodeIPs: ['192.168.0.2'] }))
process.stdout.write(JSON.stringify(out) + '\n')
