// The objects kube-proxy never sees: its informers list Services and EndpointSlices with the
// label selector "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless",
// so a Service owned by another proxy, or marked headless, is not programmed (and neither are
// its slices, which carry the Service's labels). Offline input is filtered the same way.
import { isRecord } from './fields.js'

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name'
export const HEADLESS_LABEL = 'service.kubernetes.io/headless'
/** The label selector of kube-proxy's Service and EndpointSlice informers. */
export const KUBE_PROXY_LABEL_SELECTOR = `!${SERVICE_PROXY_NAME_LABEL},!${HEADLESS_LABEL}`

/** Why kube-proxy leaves this object out, in words; undefined when it handles it. */
export function notProxiedReason(obj: unknown): string | undefined {
  if (!isRecord(obj) || !isRecord(obj.metadata) || !isRecord(obj.metadata.labels)) return undefined
  const labels = obj.metadata.labels
  if (SERVICE_PROXY_NAME_LABEL in labels) {
    return `labelled ${SERVICE_PROXY_NAME_LABEL}=${String(labels[SERVICE_PROXY_NAME_LABEL])}: another proxy owns it, kube-proxy skips it`
  }
  if (HEADLESS_LABEL in labels) return `labelled ${HEADLESS_LABEL}: kube-proxy skips headless Services`
  return undefined
}
