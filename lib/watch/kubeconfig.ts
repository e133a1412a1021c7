// Where the API server is and how to authenticate: --kubeconfig PATH, else the in-cluster
// service account (when running in a pod), else $KUBECONFIG / ~/.kube/config. Every failure
// says which source was tried and what is wrong with it.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { loadClientNode, type KubeConfig } from './client.js'
import { SvcplaneError } from '../errors.js'

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export class KubeConfigError extends Error {
  override name = 'KubeConfigError'
}

export interface KubeConfigSource {
  /** Explicit kubeconfig file. */
  kubeconfig?: string
  /** Context to use instead of current-context. */
  context?: string
  env?: Record<string, string | undefined>
  /** For tests: where the service account files are. */
  serviceAccountDir?: string
}

export interface LoadedKubeConfig {
  kc: KubeConfig
  /** Human-readable origin: "kubeconfig /path", "in-cluster service account". */
  source: string
  server: string
}

function finish(kc: KubeConfig, source: string, context: string | undefined): LoadedKubeConfig {
  if (context !== undefined) {
    if (!kc.getContextObject(context)) throw new KubeConfigError(`${source}: no context named ${JSON.stringify(context)} (contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`)
    kc.setCurrentContext(context)
  }
  const cluster = kc.getCurrentCluster()
  if (!cluster) {
    const cur = kc.getCurrentContext()
    throw new KubeConfigError(`${source}: ${cur ? `current context ${JSON.stringify(cur)} names no cluster` : 'no current context'}`)
  }
  try {
    new URL(cluster.server)
  } catch {
    throw new KubeConfigError(`${source}: cluster ${JSON.stringify(cluster.name)} has an invalid server URL ${JSON.stringify(cluster.server)}`)
  }
  return { kc, source, server: cluster.server }
}

export async function loadKubeConfig(src: KubeConfigSource = {}): Promise<LoadedKubeConfig> {
  const env = src.env ?? process.env
  const k8s = await loadClientNode()
  const kc = new k8s.KubeConfig()
  if (src.kubeconfig !== undefined) {
    const file = path.resolve(src.kubeconfig)
    let st: fs.Stats
    try {
      st = fs.statSync(file)
    } catch {
      throw new KubeConfigError(`kubeconfig ${src.kubeconfig}: no such file`)
    }
    if (!st.isFile()) throw new KubeConfigError(`kubeconfig ${src.kubeconfig}: not a file`)
    try {
      kc.loadFromFile(file)
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${src.kubeconfig} is invalid: ${(err as Error).message.split('\n')[0]}`)
    }
    return finish(kc, `kubeconfig ${src.kubeconfig}`, src.context)
  }
  const saDir = src.serviceAccountDir ?? SERVICE_ACCOUNT_DIR
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && fs.existsSync(path.join(saDir, 'token'))) {
    try {
      kc.loadFromCluster(saDir === SERVICE_ACCOUNT_DIR ? '' : saDir.slice(0, -SERVICE_ACCOUNT_DIR.length))
    } catch (err) {
      throw new KubeConfigError(`in-cluster configuration: ${(err as Error).message}`)
    }
    return finish(kc, 'in-cluster service account', undefined)
  }
  const candidates = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean)
  const home = path.join(env.HOME ?? os.homedir(), '.kube', 'config')
  const files = candidates.length ? candidates : fs.existsSync(home) ? [home] : []
  if (files.length === 0) {
    throw new KubeConfigError('no cluster configuration found: pass --kubeconfig PATH (or set KUBECONFIG), run inside a pod, or use --cluster FILE to work offline')
  }
  try {
    for (const f of files) if (!fs.existsSync(f)) throw new SvcplaneError('NOT_FOUND', `${f}: no such file`)
    kc.loadFromDefault()
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${files.join(path.delimiter)} is invalid: ${(err as Error).message.split('\n')[0]}`)
  }
  return finish(kc, `kubeconfig ${files.join(path.delimiter)}`, src.context)
}
