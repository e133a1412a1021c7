// The real kernel: inside a network namespace this test creates, iptables-restore (nft and
// legacy, where installed) must accept every generated ruleset, and real TCP connections on
// loopback must be DNATed to an endpoint of the set our evaluator gives (and masqueraded when it
// says so). Needs root and `ip netns`; skipped with a message elsewhere. No traffic leaves the
// namespace: every address is in 127.0.0.0/8.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Proxier } from '../../lib/modes/index.js'
import type { ProxierOptions } from '../../lib/modes/index.js'
import { lbStatus, makeService, makeSlice, port, type EP } from '../fixtures/objects'
import { Explorer } from './explore'

function run(cmd: string, args: string[], input?: string, timeout = 20_000) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout })
  return { ok: r.status === 0, status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') }
}

const which = (cmd: string) => run('sh', ['-c', `command -v ${cmd}`]).ok

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux'
  if (process.getuid?.() !== 0) return 'not running as root (CI runs this as root)'
  if (!which('ip')) return 'iproute2 (ip) is not installed'
  if (!which('iptables-restore') && !which('iptables-nft-restore') && !which('iptables-legacy-restore')) return 'iptables is not installed (apt-get install -y iptables)'
  return undefined
}

const reason = skipReason()
const ns = `svcplane-test-${process.pid}-${randomBytes(3).toString('hex')}`
let created = false
if (reason === undefined) {
  const r = run('ip', ['netns', 'add', ns])
  created = r.ok
  if (!r.ok) t.comment(`ip netns add failed: ${r.stderr.trim()}`)
}

function deleteNamespace(): void {
  if (created) {
    run('ip', ['netns', 'del', ns])
    created = false
  }
}
process.on('exit', deleteNamespace)

const inNs = (cmd: string, args: string[], input?: string, timeout?: number) => run('ip', ['netns', 'exec', ns, cmd, ...args], input, timeout)

if (reason !== undefined || !created) {
  t.plan(0, `skipped: ${reason ?? 'cannot create a network namespace (ip netns add)'}`)
} else {
  t.teardown(deleteNamespace)
  const restores = ['iptables-nft-restore', 'iptables-legacy-restore'].filter(which)
  if (restores.length === 0) restores.push('iptables-restore')

  t.test('namespace setup', async (t) => {
    t.ok(inNs('ip', ['link', 'set', 'lo', 'up']).ok, 'lo up')
    // kube-proxy's masquerade rule needs a scope-global source address on lo (see NOTES.md).
    const a = inNs('ip', ['addr', 'add', '127.0.0.2/32', 'dev', 'lo', 'scope', 'global'])
    t.ok(a.ok, `127.0.0.2/32 scope global on lo ${a.stderr}`)
  })

  const node: ProxierOptions = {
    mode: 'iptables', nodeName: 'kernel-node', nodeIPs: ['127.0.0.2'], podCIDRs: ['127.20.0.0/16'],
    // the nfacct counter objects do not exist in a fresh namespace (kube-proxy creates them first)
    iptables: { nfacct: false }, seed: 5,
  }
  const ep = (ip: string, local = true, cond: Partial<EP> = {}): EP => ({ ip, node: local ? 'kernel-node' : 'other', ...cond })

  // Services covering every rule shape kube-proxy writes.
  function clusterObjects(variant: number): unknown[] {
    const v = variant
    return [
      makeService('ns', 'plain', { clusterIP: '127.10.0.1', ports: [port('http', 80)] }),
      makeService('ns', 'sticky', { clusterIP: '127.10.0.2', ports: [port('http', 80)], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } } }),
      makeService('ns', 'np', { type: 'NodePort', clusterIP: '127.10.0.3', ports: [port('http', 80, { nodePort: 30080 })] }),
      makeService('ns', 'empty', { clusterIP: '127.10.0.4', ports: [port('http', 80)] }),
      makeService('ns', 'lb', {
        type: 'LoadBalancer', clusterIP: '127.10.0.5', externalTrafficPolicy: v % 2 ? 'Local' : 'Cluster', healthCheckNodePort: 32000,
        externalIPs: ['127.30.0.5'], loadBalancerSourceRanges: ['127.0.0.0/8', '10.0.0.0/8'], ports: [port('http', 80, { nodePort: 30081 }), port('dns', 53, { protocol: 'UDP', nodePort: 30053 })],
      }, lbStatus('127.40.0.5')),
      makeService('ns', 'itp', { clusterIP: '127.10.0.6', internalTrafficPolicy: 'Local', ports: [port('http', 80, { protocol: 'SCTP' })] }),
      makeSlice('ns', 'plain', 1, [ep('127.20.0.1'), ep('127.20.0.2'), ep('127.20.0.3', false)], [{ name: 'http', port: 8080 }]),
      makeSlice('ns', 'sticky', 1, [ep('127.20.1.1'), ep('127.20.1.2', false)], [{ name: 'http', port: 8080 }]),
      makeSlice('ns', 'np', 1, [ep('127.20.2.1'), ep('127.20.2.2'), ...(v > 1 ? [ep('127.20.2.3')] : [])], [{ name: 'http', port: 8080 }]),
      makeSlice('ns', 'lb', 1, [ep('127.20.3.1', v % 3 === 0), ep('127.20.3.2', false, { ready: false, serving: true, terminating: true })],
        [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }]),
      makeSlice('ns', 'itp', 1, [ep('127.20.4.1', v % 2 === 0)], [{ name: 'http', port: 8080, protocol: 'SCTP' }]),
    ]
  }

  for (const restore of restores) {
    t.test(`${restore}: the kernel accepts every generated ruleset`, async (t) => {
      for (let variant = 0; variant < 4; variant++) {
        for (const extra of [{}, { masqueradeAll: true, iptables: { localhostNodePorts: false } }, { iptables: { masqueradeBit: 3 }, podCIDRs: [] }] as Partial<ProxierOptions>[]) {
          const p = new Proxier({ ...node, ...extra, iptables: { ...node.iptables, ...extra.iptables } })
          p.applyList(clusterObjects(variant))
          p.sync()
          const what = `variant ${variant} ${JSON.stringify(extra)}`
          // The whole node (built-in chains and kube-proxy's jumps), replacing the tables.
          const full = inNs(restore, [], p.iptables!.ruleset())
          t.ok(full.ok, `node ruleset, ${what} ${full.stderr}`)
          // kube-proxy's own restore input, full then partial after a change, with --noflush.
          const kp = inNs(restore, ['--noflush'], p.iptablesRestore())
          t.ok(kp.ok, `full sync text, ${what} ${kp.stderr}`)
          p.applyList(clusterObjects(variant + 1))
          p.deleteService(makeService('ns', 'sticky', {}))
          p.sync()
          const partial = inNs(restore, ['--noflush'], p.iptablesRestore({ partial: true }))
          t.ok(partial.ok, `partial sync text (one service deleted), ${what} ${partial.stderr}`)
          const save = inNs(restore.replace('-restore', '-save'), ['-t', 'nat'])
          t.notMatch(save.stdout, /KUBE-SEP-\S+ .*127\.20\.1\.1/, 'the deleted service is gone from the kernel')
          t.ok(inNs(restore, [], '*nat\nCOMMIT\n*filter\nCOMMIT\n').ok, 'tables flushed')
        }
      }
    })

    t.test(`${restore}: real connections are DNATed to an endpoint the evaluator allows`, async (t) => {
      const p = new Proxier(node)
      p.applyList(clusterObjects(2))
      p.sync()
      const load = inNs(restore, [], p.iptables!.ruleset())
      t.ok(load.ok, `rules loaded ${load.stderr}`)
      if (!load.ok) return
      const explorer = new Explorer(p.iptables!.ruleset(), ['127.0.0.2'])
      const endpoints = p.state.servicePorts().filter((s) => s.info.protocol === 'TCP').flatMap((s) => s.endpoints.map((e) => [e.ip, e.port]))
      const targets: [string, number, number][] = [
        ['127.10.0.1', 80, 40], ['127.10.0.2', 80, 12], ['127.10.0.3', 80, 12], ['127.0.0.2', 30080, 12],
        ['127.0.0.1', 30080, 8], ['127.10.0.4', 80, 2], ['127.10.0.5', 80, 6], ['127.30.0.5', 80, 4], ['127.40.0.5', 80, 4],
      ]
      const script = `
import json, socket, sys, threading
spec = json.loads(sys.stdin.read())
def serve(s, name):
    while True:
        try:
            c, peer = s.accept()
        except OSError:
            return
        c.sendall((name + " " + peer[0] + "\\n").encode())
        c.close()
for ip, port in spec["endpoints"]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(64)
    threading.Thread(target=serve, args=(s, "%s:%d" % (ip, port)), daemon=True).start()
out = []
for dst, dport, n in spec["targets"]:
    for i in range(n):
        c = socket.socket(); c.settimeout(2)
        try:
            c.connect((dst, dport))
            data = b""
            while not data.endswith(b"\\n"):
                chunk = c.recv(100)
                if not chunk: break
                data += chunk
            ep, peer = data.decode().split()
            out.append({"dst": dst, "dport": dport, "endpoint": ep, "peer": peer})
        except Exception as e:
            out.append({"dst": dst, "dport": dport, "error": type(e).__name__ + ": " + str(e)})
        finally:
            c.close()
print(json.dumps(out))
`
      const r = inNs('python3', ['-c', script], JSON.stringify({ endpoints, targets }), 60_000)
      t.ok(r.ok, `client and listeners ran ${r.stderr}`)
      if (!r.ok) return
      const results = JSON.parse(r.stdout) as { dst: string; dport: number; endpoint?: string; peer?: string; error?: string }[]
      t.equal(results.length, targets.reduce((n, x) => n + x[2], 0))
      const seen = new Map<string, Set<string>>()
      for (const res of results) {
        const pkt = { src: '127.0.0.1', sport: 40000, dst: res.dst, dport: res.dport, protocol: 'TCP' as const, hook: 'output' as const, now: 1 }
        const allowed = explorer.reachable(pkt)
        const decision = p.route({ ...pkt, sport: 40000 + seen.size })
        const key = `${res.dst}:${res.dport}`
        if (allowed.size === 0) {
          t.match(res.error ?? '', /ConnectionRefused/, `${key}: ${decision.action}, the kernel refuses too`)
          continue
        }
        t.ok(res.endpoint !== undefined && allowed.has(res.endpoint), `${key} -> ${res.endpoint ?? res.error} is in {${[...allowed].join(', ')}}`)
        if (decision.action === 'dnat') t.equal(res.peer, decision.masquerade ? '127.0.0.2' : '127.0.0.1', `${key}: masquerade ${decision.masquerade}`)
        if (res.endpoint) seen.set(key, (seen.get(key) ?? new Set()).add(res.endpoint))
      }
      t.equal(seen.get('127.10.0.1:80')?.size, 3, 'the kernel\'s statistic rules spread over all three endpoints')
      t.equal(seen.get('127.10.0.2:80')?.size, 1, '-m recent keeps the client on one endpoint')
      inNs(restore, [], '*nat\nCOMMIT\n*filter\nCOMMIT\n')
    })
  }
}
