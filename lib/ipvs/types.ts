// The IPVS objects kube-proxy's ipvs proxier programs (pkg/proxy/ipvs/util): virtual servers
// with their real servers, as plain data. kube-proxy always uses masquerading (NAT) forwarding.
import type { K8sProtocol } from '../k8s/types.js'
import { joinHostPort } from '../util/host-port.js'

/** IP_VS_SVC_F_PERSISTENT: sessionAffinity ClientIP. */
export const FLAG_PERSISTENT = 0x1
/** IP_VS_SVC_F_SCHED2, set by kube-proxy for "mh": hash the source port too (mh-port). */
export const FLAG_SOURCE_HASH = 0x10

/** The schedulers kube-proxy accepts for --ipvs-scheduler (the kernel's ip_vs_* modules). */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'sh', 'dh', 'sed', 'nq', 'mh'] as const
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number]

export interface RealServer {
  address: string
  port: number
  /** 1 for an endpoint kube-proxy wants; 0 while a removed TCP endpoint drains (graceful termination). */
  weight: number
}

export interface VirtualServer {
  address: string
  port: number
  protocol: K8sProtocol
  scheduler: IpvsScheduler
  /** FLAG_PERSISTENT | FLAG_SOURCE_HASH, as kube-proxy sets them. */
  flags: number
  /** Persistence timeout in seconds (0 without sessionAffinity). */
  timeout: number
  realServers: RealServer[]
}

/** What one virtual server is for, kept beside it (kube-proxy's svcPortName, the frontend kind). */
export interface VirtualServerOrigin {
  servicePort: string
  /** The model's ServicePort key ("ns/name:port/PROTO/family"). */
  servicePortKey: string
  kind: 'clusterIP' | 'externalIP' | 'loadBalancer' | 'nodePort'
}

/** "10.0.0.1:80/TCP", "[2001:db8::1]:80/TCP": kube-proxy's VirtualServer.String(). */
export function virtualServerKey(address: string, port: number, protocol: string): string {
  return `${joinHostPort(address, port)}/${protocol}`
}

