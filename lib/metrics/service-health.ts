// kube-proxy's service health servers (pkg/proxy/healthcheck/service_health.go): one HTTP server
// per healthCheckNodePort of the LoadBalancer Services with externalTrafficPolicy Local,
// answering any path with 200 when this node has ready local endpoints (and the proxy is
// healthy), 503 otherwise, and kube-proxy's JSON body. Load balancers probe it to decide
// which nodes get traffic.
import * as http from 'node:http'
import type { HealthCheck } from '../proxy/health.js'
import { close, formatAddress, listen, send } from './http.js'
import { checkOptions, optionKeys } from '../util/known-keys.js'

export function serviceHealthBody(service: string, localEndpoints: number, proxyHealthy: boolean): string {
  const slash = service.indexOf('/')
  const ns = service.slice(0, slash)
  const name = service.slice(slash + 1)
  return `{\n\t"service": {\n\t\t"namespace": ${JSON.stringify(ns)},\n\t\t"name": ${JSON.stringify(name)}\n\t},\n\t"localEndpoints": ${localEndpoints},\n\t"serviceProxyHealthy": ${proxyHealthy}\n}`
}

interface Instance {
  service: string
  port: number
  localEndpoints: number
  servers: http.Server[]
}

export interface ServiceHealthOptions {
  /** Addresses to listen on (kube-proxy: the node port addresses; default 127.0.0.1 only). */
  addresses?: string[]
  /** kube-proxy answers 503 everywhere while it is itself unhealthy. */
  proxyHealthy?: () => boolean
  /** A server could not be opened (port in use...): reported, the others keep working. */
  onError?: (service: string, error: Error) => void
}

const SERVICE_HEALTH_KEYS = optionKeys<ServiceHealthOptions>({ addresses: true, proxyHealthy: true, onError: true })

export class ServiceHealthServers {
  private readonly instances = new Map<string, Instance>()
  private readonly addresses: string[]
  private readonly proxyHealthy: () => boolean
  private pending: Promise<void> = Promise.resolve()

  constructor(private readonly options: ServiceHealthOptions = {}) {
    checkOptions('ServiceHealthServers options', options, SERVICE_HEALTH_KEYS)
    // Loopback unless asked: a health check that says "healthy" on every address draws
    // load-balancer traffic to this node, and svcplane does not forward it.
    this.addresses = options.addresses ?? ['127.0.0.1']
    this.proxyHealthy = options.proxyHealthy ?? (() => true)
  }

  /** Opens, keeps or closes servers to match the health checks; counts update in place. */
  sync(checks: HealthCheck[]): Promise<void> {
    this.pending = this.pending.then(() => this.apply(checks))
    return this.pending
  }

  private async apply(checks: HealthCheck[]): Promise<void> {
    const wanted = new Map(checks.map((c) => [c.service, c]))
    for (const [service, inst] of this.instances) {
      const c = wanted.get(service)
      if (c === undefined || c.healthCheckNodePort !== inst.port) {
        this.instances.delete(service)
        await Promise.all(inst.servers.map(close))
      }
    }
    for (const c of checks) {
      const inst = this.instances.get(c.service)
      if (inst) {
        inst.localEndpoints = c.localEndpoints
        continue
      }
      const created: Instance = { service: c.service, port: c.healthCheckNodePort, localEndpoints: c.localEndpoints, servers: [] }
      this.instances.set(c.service, created)
      for (const host of this.addresses) {
        const server = http.createServer((_req, res) => this.answer(created, res))
        try {
          await listen(server, { host, port: c.healthCheckNodePort }, `the health check of ${c.service}`)
          created.servers.push(server)
        } catch (err) {
          this.options.onError?.(c.service, err as Error)
        }
      }
    }
  }

  private answer(inst: Instance, res: http.ServerResponse): void {
    const healthy = this.proxyHealthy()
    const count = inst.localEndpoints
    send(res, count !== 0 && healthy ? 200 : 503, serviceHealthBody(inst.service, count, healthy), {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': String(count),
    })
  }

  /** Services served now, with their port and the addresses actually bound. */
  list(): { service: string; port: number; localEndpoints: number; listening: string[] }[] {
    return [...this.instances.values()].map((i) => ({
      service: i.service,
      port: i.port,
      localEndpoints: i.localEndpoints,
      listening: i.servers.map((s) => {
        const a = s.address()
        return a && typeof a === 'object' ? formatAddress({ host: a.address, port: a.port }) : ''
      }),
    }))
  }

  async close(): Promise<void> {
    await this.pending
    const all = [...this.instances.values()]
    this.instances.clear()
    await Promise.all(all.flatMap((i) => i.servers.map(close)))
  }
}
