// kube-proxy's configuration file (KubeProxyConfiguration) read into svcplane's options.
export {
  loadKubeProxyConfiguration,
  kubeProxyConfigurationOptions,
  nodePortAddressList,
  type KubeProxyConfigurationOptions,
  type KubeProxyConfigurationReadOptions,
  type KubeProxyRunSettings,
} from './kube-proxy-configuration.js'
export { KUBE_PROXY_CONFIG_API_VERSION, KUBE_PROXY_CONFIG_KIND, checkKubeProxyConfiguration, goDurationSeconds } from './schema.js'
