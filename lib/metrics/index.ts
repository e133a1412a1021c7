// Observability: kube-proxy's metrics, /healthz and /livez, and service health check node ports.
export { ProxyMetrics, NETWORK_PROGRAMMING_BUCKETS, type ProxyMetricsOptions } from './registry.js'
export { ProxierHealth, goTimeString } from './health.js'
export { startMetricsServer, startHealthzServer, type RunningServer, type MetricsServerOptions, type ExtraRoutes } from './servers.js'
export { ServiceHealthServers, serviceHealthBody, type ServiceHealthOptions } from './service-health.js'
export { parseBindAddress, formatAddress as formatBindAddress, type BindAddress } from './http.js'
