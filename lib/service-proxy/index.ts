// The socket-level service proxy built on the Proxier, and its file-driven runner.
export { ServiceProxy, type ServiceProxyOptions, type ListenerSpec, type ListenerInfo, type ProxySyncResult } from './service-proxy.js'
export { runProxyFromFile, type RunProxyOptions, type RunningProxy, type ReloadResult } from './run-from-file.js'
export { emptyCounters, type ServiceCounters } from './counters.js'
