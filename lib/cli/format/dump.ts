// Dumps of a Proxier's state in the formats operators know: `ipvsadm -Ln` (virtual servers and
// real servers), `conntrack -L` (tracked flows) and the dataplane maps as JSON.
import type { Dataplane, FlowEntry } from '../../dataplane/dataplane.js'
import type { Proxier } from '../../modes/index.js'

import { joinHostPort as hostPort } from '../../util/host-port.js'

/** IPVS has Maglev as "mh"; the iptables-style random choice has no IPVS name and keeps ours. */
function ipvsScheduler(s: string): string {
  return s === 'maglev' ? 'mh' : s
}

function requireDataplane(proxier: Proxier): Dataplane {
  const dp = proxier.dataplane
  if (dp === undefined) throw new Error(`this dump needs the native dataplane (mode native), the proxier runs mode ${proxier.options.mode}`)
  return dp
}

interface ConnCounts {
  active: number
  inactive: number
}

function connectionCounts(dp: Dataplane): Map<number, ConnCounts> {
  const byBackend = new Map<number, ConnCounts>()
  for (const f of dp.flows()) {
    let c = byBackend.get(f.backendId)
    if (c === undefined) byBackend.set(f.backendId, (c = { active: 0, inactive: 0 }))
    // IPVS counts established TCP connections as active, everything else as inactive.
    if (f.state === 'established') c.active++
    else c.inactive++
  }
  return byBackend
}

export interface VirtualServer {
  protocol: string
  address: string
  port: number
  scheduler: string
  persistentTimeout: number
  servicePort: string | null
  realServers: { address: string; port: number; forward: 'Masq'; weight: number; activeConn: number; inActConn: number }[]
}

/** The virtual servers IPVS would hold: one per frontend; for an address programmed in both scopes, the external one. */
export function virtualServers(proxier: Proxier): VirtualServer[] {
  const dp = requireDataplane(proxier)
  const backends = new Map(dp.backends().map((b) => [b.id, b]))
  const conns = connectionCounts(dp)
  const chosen = new Map<string, { svc: ReturnType<Dataplane['services']>[number]; f: ReturnType<Dataplane['services']>[number]['frontends'][number] }>()
  for (const svc of dp.services()) {
    for (const f of svc.frontends) {
      const key = `${f.protocol}|${f.address}|${f.port}`
      const prev = chosen.get(key)
      if (prev === undefined || (prev.f.scope !== 'external' && f.scope === 'external')) chosen.set(key, { svc, f })
    }
  }
  const out: VirtualServer[] = []
  for (const { svc, f } of chosen.values()) {
    const hit = proxier.state.lookupFrontend(f.address, f.port, f.protocol)
    out.push({
      protocol: f.protocol,
      address: f.address,
      port: f.port,
      scheduler: ipvsScheduler(svc.scheduler),
      persistentTimeout: svc.affinityTimeout,
      servicePort: hit?.state.info.name ?? null,
      realServers: svc.backends
        .map((id) => backends.get(id))
        .filter((b) => b !== undefined)
        .map((b) => ({
          address: b!.address,
          port: b!.port,
          forward: 'Masq' as const,
          // Like kube-proxy's IPVS graceful termination: a terminating real server keeps its flows at weight 0.
          weight: b!.state === 'active' ? b!.weight : 0,
          activeConn: conns.get(b!.id)?.active ?? 0,
          inActConn: conns.get(b!.id)?.inactive ?? 0,
        }))
        .sort((a, b) => hostPort(a.address, a.port).localeCompare(hostPort(b.address, b.port), 'en', { numeric: true })),
    })
  }
  const order = (v: VirtualServer) => `${v.protocol} ${v.address.includes(':') ? 1 : 0} ${v.address}`
  return out.sort((a, b) => order(a).localeCompare(order(b), 'en', { numeric: true }) || a.port - b.port)
}

/** `ipvsadm -Ln` text. */
export function formatIpvsadm(proxier: Proxier): string {
  const dp = requireDataplane(proxier)
  const lines = [
    `IP Virtual Server version 1.2.1 (size=${dp.map('conntrack').capacity})`,
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
  ]
  for (const v of virtualServers(proxier)) {
    lines.push(`${v.protocol.padEnd(4)} ${hostPort(v.address, v.port)} ${v.scheduler}${v.persistentTimeout > 0 ? ` persistent ${v.persistentTimeout}` : ''}`)
    for (const r of v.realServers) {
      lines.push(`  -> ${hostPort(r.address, r.port).padEnd(28)} ${r.forward.padEnd(7)} ${String(r.weight).padEnd(6)} ${String(r.activeConn).padEnd(10)} ${r.inActConn}`)
    }
  }
  return lines.join('\n') + '\n'
}

const PROTO_NUMBER: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 }
const TCP_STATE: Record<string, string> = {
  'syn-sent': 'SYN_SENT',
  'syn-recv': 'SYN_RECV',
  established: 'ESTABLISHED',
  'fin-wait': 'FIN_WAIT',
  'close-wait': 'CLOSE_WAIT',
  'last-ack': 'LAST_ACK',
  'time-wait': 'TIME_WAIT',
  close: 'CLOSE',
  none: 'NONE',
}

export function conntrackLine(f: FlowEntry, now: number): string {
  const proto = f.protocol.toUpperCase()
  const timeout = Math.max(0, Math.floor(f.expires - now))
  const parts = [`${proto.toLowerCase().padEnd(8)} ${PROTO_NUMBER[proto] ?? 0} ${timeout}`]
  if (proto === 'TCP') parts.push(TCP_STATE[f.state] ?? f.state.toUpperCase())
  parts.push(`src=${f.src} dst=${f.dst} sport=${f.sport} dport=${f.dport} packets=${f.packets} bytes=${f.bytes}`)
  const replied = f.replyPackets > 0
  if (!replied) parts.push('[UNREPLIED]')
  parts.push(`src=${f.backendAddress} dst=${f.src} sport=${f.backendPort} dport=${f.sport} packets=${f.replyPackets} bytes=${f.replyBytes}`)
  if (replied && (proto !== 'TCP' || f.state === 'established' || f.state.endsWith('wait') || f.state === 'last-ack')) parts.push('[ASSURED]')
  parts.push('mark=0 use=1')
  return parts.join(' ')
}

/** `conntrack -L` lines, and how many flows there are. */
export function formatConntrack(proxier: Proxier, now = proxier.options.clock()): { text: string; count: number } {
  const dp = requireDataplane(proxier)
  const lines: string[] = []
  for (const f of dp.flows()) lines.push(conntrackLine(f, now))
  return { text: lines.length ? lines.join('\n') + '\n' : '', count: lines.length }
}

/** The state as JSON: the model's ServicePorts and, in native mode, every dataplane map. */
export function dumpJson(proxier: Proxier): Record<string, unknown> {
  const servicePorts = proxier.state.servicePorts().map((s) => ({
    name: s.info.name,
    protocol: s.info.protocol,
    family: s.info.family,
    type: s.info.type,
    clusterIP: s.info.clusterIP,
    port: s.info.port,
    nodePort: s.info.nodePort,
    externalTrafficPolicy: s.info.externalPolicyLocal ? 'Local' : 'Cluster',
    internalTrafficPolicy: s.info.internalPolicyLocal ? 'Local' : 'Cluster',
    affinityTimeoutSeconds: s.info.affinityTimeoutSeconds,
    frontends: s.frontends.map((f) => ({ kind: f.kind, address: f.address, port: f.port })),
    endpoints: s.endpoints.map((e) => ({ endpoint: e.endpoint, ready: e.ready, serving: e.serving, terminating: e.terminating, local: e.isLocal, zone: e.zone })),
    clusterEndpoints: s.categorized.cluster.map((e) => e.endpoint),
    localEndpoints: s.categorized.local.map((e) => e.endpoint),
  }))
  const out: Record<string, unknown> = {
    node: proxier.options.node,
    mode: proxier.options.mode,
    servicePorts,
    healthChecks: proxier.healthChecks(),
  }
  const dp = proxier.dataplane
  if (dp !== undefined) {
    const now = proxier.options.clock()
    out.maps = dp.maps()
    out.services = dp.services()
    out.backends = dp.backends()
    out.frontends = dp.frontends()
    out.revnat = dp.revnat()
    out.affinity = dp.affinity()
    out.conntrack = [...dp.flows()].map((f) => ({ ...f, timeout: Math.max(0, Math.floor(f.expires - now)) }))
    out.counters = dp.counters()
  }
  return out
}
