// @kubernetes/client-node is an ES module; svcplane is CommonJS. It is loaded with a dynamic
// import() (kept as-is by TypeScript's node16 module setting), once, on first use, so commands
// that never talk to a cluster do not pay for it.
export type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } })
export type KubeConfig = InstanceType<ClientNode['KubeConfig']>

let loading: Promise<ClientNode> | undefined

export function loadClientNode(): Promise<ClientNode> {
  loading ??= import('@kubernetes/client-node')
  return loading
}

/** Every document of a YAML text (client-node's js-yaml). */
export async function loadYamlDocuments(text: string): Promise<unknown[]> {
  const k8s = await loadClientNode()
  return k8s.loadAllYaml(text) as unknown[]
}
