// The native proxy mode: the model programmed into a Dataplane (O(1) lookups, conntrack,
// affinity) and packets decided by it; TypeScript adds what kube-proxy's rules would add on
// top (masquerade, and the REJECT/DROP reason).
import { Dataplane } from '../../dataplane/dataplane.js'
import type { ProxyModelView, ServiceDiff } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type RouteReason } from '../../proxy/packet.js'
import { joinHostPort } from '../../util/host-port.js'
import type { ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import { isHairpin, type KubeProxyTrace, type SourceClass, type Step } from '../../proxy/trace.js'
import { NativeBackend } from './native-backend.js'
import type { NativeSettings } from './native-options.js'

/** What inspect() shows in mode 'native'. */
export interface NativeView {
  mode: 'native'
  dataplane: Dataplane
  backend: NativeBackend
}

export class NativeMode implements ProxyModeImpl<NativeView> {
  readonly dataplane: Dataplane
  readonly backend: NativeBackend

  constructor(
    private readonly model: ProxyModelView,
    options: ResolvedOptions,
    settings: NativeSettings,
    dataplane?: Dataplane,
  ) {
    this.dataplane = dataplane ?? new Dataplane({ capacity: settings.capacity, timeouts: options.timeouts, seed: options.seed })
    // The packet path decides masquerade in C++: it needs the node's addresses and pod CIDRs.
    this.dataplane.configurePackets({
      nodeAddresses: options.node.ips,
      podCIDRs: options.podCIDRs,
      masqueradeAll: options.masqueradeAll,
    })
    this.backend = new NativeBackend(this.dataplane, settings.scheduler)
  }

  inspect(): NativeView {
    return { mode: 'native', dataplane: this.dataplane, backend: this.backend }
  }

  apply(diff: ServiceDiff): { flowsRemoved: number } {
    return this.backend.apply(diff)
  }

  route(p: CheckedPacket, source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision {
    const scope = source.fromNode || source.fromPod ? 'internal' : 'external'
    const d = this.dataplane.decide(
      { src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, scope, tcpFlags: p.tcpFlags },
      now,
    )
    const steps: Step[] = []
    if (d.verdict === 'pass' || d.verdict === 'reply') {
      if (d.verdict === 'reply') steps.push({ kind: 'conntrack', text: `reply of a tracked flow, source rewritten to ${d.address}:${d.port}` })
      return { result: { action: 'accept' }, steps }
    }
    const ref = this.backend.ref(d.serviceId)
    const servicePort = ref?.servicePort ?? trace.state?.info.name ?? ''
    if (d.verdict === 'forward') {
      const endpoint = joinHostPort(d.address, d.port)
      if (d.established) steps.push({ kind: 'conntrack', text: `established flow: keeps ${endpoint}` })
      else if (d.affinityHit) steps.push({ kind: 'affinity', text: `sessionAffinity ClientIP: ${p.src} stays on ${endpoint}` })
      else steps.push({ kind: 'endpoint', text: `new flow: scheduler chose ${endpoint} from the ${ref?.role ?? 'cluster'} set` })
      // Masquerade is decided by the rules the flow's first packet would traverse.
      const sameService = trace.action === 'dnat' && trace.state?.info.name === servicePort
      const hairpin = isHairpin(p.src, endpoint)
      if (hairpin) steps.push({ kind: 'masquerade', text: 'hairpin: the endpoint is the client itself' })
      const masquerade = (sameService && trace.masquerade) || hairpin
      return { result: dnatResult(servicePort, d.address, d.port, masquerade), steps }
    }
    // The model lets this packet leave the node (see traceKubeProxy); the dataplane only knows
    // the service has no endpoints.
    if (d.reason === 'no-backends' && trace.action === 'accept' && trace.state !== undefined) {
      return { result: { action: 'accept' }, steps }
    }
    let reason: RouteReason
    if (d.reason === 'no-backends') reason = ref?.role === 'local' ? 'no-local-endpoints' : 'no-endpoints'
    else if (d.reason === 'source-range' || d.reason === 'conntrack-full' || d.reason === 'affinity-full') reason = d.reason
    else reason = trace.reason ?? 'no-endpoints'
    if (reason === 'conntrack-full' || reason === 'affinity-full') steps.push({ kind: 'verdict', text: `${reason}: the new flow is refused` })
    return { result: { action: d.verdict, servicePort, reason }, steps }
  }
}
