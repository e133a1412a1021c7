// The node tests' topology, also used by bench/node.ts: network namespaces this process creates
// (client, node, and pods pod1, pod2, optionally pod3, pod4; names carry the pid), a veth from
// the client to the node, and a bridge on the node with a veth to each pod. Private addresses exist only inside them and
// routes only lead between them, so no packet leaves. Everything is deleted by remove(), also at
// exit. Servers and svcplane run as child processes inside the namespaces (`ip netns exec`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

export const ADDR = {
  client: '10.250.1.2',
  nodeUplink: '10.250.1.1',
  nodeBridge: '10.244.0.1',
  pod1: '10.244.0.11',
  pod2: '10.244.0.12',
  pod3: '10.244.0.13',
  pod4: '10.244.0.14',
  podCIDR: '10.244.0.0/16',
  serviceCIDR: '10.96.0.0/16',
}
export const TCP_PORT = 8080
export const UDP_PORT = 5353
export const REPO = join(__dirname, '..', '..')

export interface Sh {
  ok: boolean
  stdout: string
  stderr: string
}

export function sh(cmd: string, args: string[], input?: string, timeout = 30_000): Sh {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout })
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') }
}

const which = (cmd: string) => sh('sh', ['-c', `command -v ${cmd}`]).ok

/** A child process whose stdout lines can be awaited. */
export class Child {
  readonly lines: string[] = []
  private waiters: Array<() => void> = []
  stderr = ''
  exited: number | null | undefined = undefined

  constructor(readonly proc: ChildProcess) {
    const reader = () => {
      let buf = ''
      return (d: string) => {
        buf += d
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          this.lines.push(buf.slice(0, i))
          buf = buf.slice(i + 1)
        }
        this.waiters.forEach((w) => w())
      }
    }
    proc.stdout!.setEncoding('utf8').on('data', reader())
    // svcplane logs on stderr: its lines are awaited too.
    const errLines = reader()
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d
      errLines(d)
    })
    proc.on('exit', (code) => {
      this.exited = code
      this.waiters.forEach((w) => w())
    })
  }

  /** Resolves with the first line (from index `from`) matching `re`; rejects after `ms` or on exit. */
  waitFor(re: RegExp, ms: number, from = 0): Promise<{ line: string; index: number }> {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.lines.length; i++) {
          if (re.test(this.lines[i]!)) return done(() => resolve({ line: this.lines[i]!, index: i }))
        }
        if (this.exited !== undefined) done(() => reject(new Error(`exited (${this.exited}) before ${re}: ${this.stderr.slice(-2000)}`)))
      }
      const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${re} within ${ms} ms: ${this.stderr.slice(-2000)}`))), ms)
      const done = (f: () => void) => {
        clearTimeout(timer)
        this.waiters = this.waiters.filter((w) => w !== check)
        f()
      }
      this.waiters.push(check)
      check()
    })
  }

  /** Resolves when the process has exited (killing it after `ms`). */
  done(ms: number): Promise<number | null> {
    if (this.exited !== undefined) return Promise.resolve(this.exited)
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms)
      this.proc.on('exit', (code) => (clearTimeout(timer), resolve(code)))
    })
  }

  /** SIGTERM, then SIGKILL after `ms`: a loaded CI machine needs more than a quiet one. */
  stop(ms = 15_000): Promise<number | null> {
    if (this.exited === undefined) this.proc.kill('SIGTERM')
    return this.done(ms)
  }
}

export type PodName = 'pod1' | 'pod2' | 'pod3' | 'pod4'

export class Topology {
  /** Every name; only `pods` of the pod namespaces exist. */
  readonly ns: Record<'client' | 'node' | PodName, string>
  private readonly children: Child[] = []
  private removed = false

  private constructor(
    tag: string,
    readonly pods: readonly PodName[],
  ) {
    const id = `${process.pid}-${randomBytes(2).toString('hex')}`
    const pod = (n: number) => `svcplane-${tag}-p${n}-${id}`
    this.ns = { client: `svcplane-${tag}-c-${id}`, node: `svcplane-${tag}-n-${id}`, pod1: pod(1), pod2: pod(2), pod3: pod(3), pod4: pod(4) }
  }

  /** The namespaces that exist. */
  private get created(): string[] {
    return [this.ns.client, this.ns.node, ...this.pods.map((p) => this.ns[p])]
  }

  /** The topology (pods pod1 and pod2 unless `pods` says more), or why it cannot be built here. */
  static create(tag: string, pods: readonly PodName[] = ['pod1', 'pod2']): Topology | { skip: string } {
    if (process.platform !== 'linux') return { skip: 'not Linux' }
    if (process.getuid?.() !== 0) return { skip: 'needs root for network namespaces (CI runs this as root)' }
    for (const tool of ['ip', 'nft', 'iptables-restore']) if (!which(tool)) return { skip: `${tool} is not installed (apt-get install -y iproute2 nftables iptables)` }
    const t = new Topology(tag, pods)
    process.on('exit', () => t.removeNamespaces())
    const err = t.build()
    if (err !== undefined) {
      t.removeNamespaces()
      return { skip: `cannot build the namespaces: ${err}` }
    }
    return t
  }

  /** A command inside namespace `where`; throws with its stderr on failure. */
  exec(where: keyof Topology['ns'], cmd: string, args: string[], input?: string): string {
    const r = sh('ip', ['netns', 'exec', this.ns[where], cmd, ...args], input)
    if (!r.ok) throw new Error(`${where}: ${cmd} ${args.join(' ')}: ${r.stderr.trim()}`)
    return r.stdout
  }

  /** A long-running process inside namespace `where`, stopped by remove(). */
  spawn(where: keyof Topology['ns'], cmd: string, args: string[]): Child {
    const child = new Child(spawn('ip', ['netns', 'exec', this.ns[where], cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO }))
    this.children.push(child)
    return child
  }

  private build(): string | undefined {
    const { client, node } = this.ns
    const steps: string[][] = [
      ...this.created.map((n) => ['netns', 'add', n]),
      ...this.created.map((n) => ['-n', n, 'link', 'set', 'lo', 'up']),
      ['-n', client, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'uplink', 'netns', node],
      ['-n', client, 'addr', 'add', `${ADDR.client}/24`, 'dev', 'eth0'],
      ['-n', client, 'link', 'set', 'eth0', 'up'],
      ['-n', client, 'route', 'add', ADDR.serviceCIDR, 'via', ADDR.nodeUplink],
      ['-n', node, 'addr', 'add', `${ADDR.nodeUplink}/24`, 'dev', 'uplink'],
      ['-n', node, 'link', 'set', 'uplink', 'up'],
      ['-n', node, 'link', 'add', 'br0', 'type', 'bridge'],
      ['-n', node, 'addr', 'add', `${ADDR.nodeBridge}/24`, 'dev', 'br0'],
      ['-n', node, 'link', 'set', 'br0', 'up'],
    ]
    for (const name of this.pods) {
      const [pod, addr, peer] = [this.ns[name], ADDR[name], `veth${name.slice(3)}`]
      steps.push(
        ['-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', peer, 'netns', node],
        ['-n', pod, 'addr', 'add', `${addr}/24`, 'dev', 'eth0'],
        ['-n', pod, 'link', 'set', 'eth0', 'up'],
        ['-n', pod, 'route', 'add', 'default', 'via', ADDR.nodeBridge],
        ['-n', node, 'link', 'set', peer, 'master', 'br0'],
        ['-n', node, 'link', 'set', peer, 'up'],
      )
    }
    for (const args of steps) {
      const r = sh('ip', args)
      if (!r.ok) return `ip ${args.join(' ')}: ${r.stderr.trim()}`
    }
    return undefined
  }

  readonly backends = new Map<PodName, Child>()

  /** Starts the backend server in these pods and waits until it listens (never a fixed sleep). */
  async startBackends(pods: PodName[] = ['pod1', 'pod2'], ms = 30_000): Promise<void> {
    await Promise.all(pods.map(async (pod) => {
      const server = this.spawn(pod, process.execPath, [join(REPO, 'test', 'node', 'backend-server.js'), pod, String(TCP_PORT), String(UDP_PORT)])
      this.backends.set(pod, server)
      await server.waitFor(/^listening$/, ms)
    }))
  }

  /** Runs the client in the client namespace to completion (bounded: count, per-request timeout). */
  async client(proto: 'tcp' | 'udp', host: string, port: number, count: number, timeoutMs = 2000, pauseMs = 0): Promise<ClientResult[]> {
    const c = this.clientProcess(proto, host, port, count, timeoutMs, pauseMs)
    await c.done(count * (timeoutMs + pauseMs) + 10_000)
    return parseClient(c)
  }

  clientProcess(proto: 'tcp' | 'udp', host: string, port: number, count: number, timeoutMs = 2000, pauseMs = 0, where: keyof Topology['ns'] = 'client'): Child {
    return this.spawn(where, process.execPath, [join(REPO, 'test', 'node', 'client.js'), proto, host, String(port), String(count), String(timeoutMs), String(pauseMs)])
  }

  private removeNamespaces(): void {
    if (this.removed) return
    this.removed = true
    for (const c of this.children) if (c.exited === undefined) c.proc.kill('SIGKILL')
    for (const n of this.created) sh('ip', ['netns', 'del', n])
  }

  /** Stops every child and deletes the namespaces. */
  async remove(): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()))
    this.removeNamespaces()
  }
}

export interface ClientResult {
  i: number
  start: number
  ms?: number
  connectMs?: number
  reply?: string
  error?: string
}

export function parseClient(c: Child): ClientResult[] {
  return c.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ClientResult)
}

export const podOf = (r: ClientResult) => r.reply?.split(' ')[0]
export const peerOf = (r: ClientResult) => r.reply?.split(' ')[1]
export const errorsOf = (rs: ClientResult[]) => rs.filter((r) => r.error !== undefined).map((r) => `#${r.i}: ${r.error}`)

export function installed(cmd: string): boolean {
  return which(cmd)
}

/** svcplane's own rules in the node namespace: iptables KUBE-* chains and the nft kube-proxy tables. */
export function leftovers(topo: Topology): string[] {
  const out: string[] = []
  for (const save of ['iptables-nft-save', 'iptables-legacy-save'].filter(installed)) {
    const text = topo.exec('node', save, [])
    out.push(...text.split('\n').filter((l) => /^:KUBE-|-j KUBE-/.test(l)).map((l) => `${save}: ${l}`))
  }
  out.push(...topo.exec('node', 'nft', ['list', 'tables']).split('\n').filter((l) => l.includes('kube-proxy')))
  return out
}
