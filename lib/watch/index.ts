// Watching a live cluster: client-node informers feeding a Proxier with kube-proxy's timing.
export { ClusterWatcher, describeApiError, KUBE_PROXY_LABEL_SELECTOR, type WatchHandlers, type WatcherOptions, type ResourceStats, type ObjectEvent, type ResourceName } from './informers.js'
export { loadKubeConfig, KubeConfigError, type KubeConfigSource, type LoadedKubeConfig } from './kubeconfig.js'
export { ProxierSyncLoop, TRIGGER_TIME_ANNOTATION, type SyncHooks, type SyncInfo, type SyncLoopOptions } from './sync-loop.js'
export { SyncRunner, type SyncRunnerOptions, type SyncTrigger } from './sync-runner.js'
export { Backoff, type BackoffOptions } from './backoff.js'
export { loadClientNode, loadYamlDocuments, type ClientNode, type KubeConfig } from './client.js'
