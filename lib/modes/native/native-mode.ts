// The native proxy mode: the model programmed into a Dataplane (O(1) lookups, conntrack,
// affinity) and packets decided by it; TypeScript adds what kube-proxy's rules would add on
// top (masquerade, and the REJECT/DROP reason).
import { Dataplane } from '../../dataplane/dataplane.js'
import { errorCode, SvcplaneRangeError } from '../../errors.js'
import { frontendKey } from '../../proxy/frontends.js'
import type { ProxyModelView, ServiceDiff } from '../../proxy/model.js'
import type { ResolvedOptions } from '../../proxy/options.js'
import { dnatResult, type CheckedPacket, type RouteReason } from '../../proxy/packet.js'
import { joinHostPort } from '../../util/host-port.js'
import type { ApplyOutcome, ModeDecision, ProxyModeImpl } from '../../proxy/proxy-mode.js'
import { isHairpin, type KubeProxyTrace, type SourceClass, type Step } from '../../proxy/trace.js'
import { NativeBackend } from './native-backend.js'
import type { NativeSettings } from './native-options.js'

/** What inspect() shows in mode 'native'. */
export interface NativeView {
  mode: 'native'
  dataplane: Dataplane
  backend: NativeBackend
}

/** What a FULL error says without the dataplane's internal ids ("service 1001: ..."). */
function capacityProblem(err: Error): string {
  return err.message.replace(/^(?:service|backend) \d+: /, '')
}

/** A Service the dataplane had no room for: what route() says for its frontends. */
interface Unprogrammed {
  servicePort: string
  error: Error
}

export class NativeMode implements ProxyModeImpl<NativeView> {
  readonly dataplane: Dataplane
  readonly backend: NativeBackend
  /** frontendKey -> the ServicePort behind it, for Services a full map kept out. */
  private readonly unprogrammed = new Map<string, Unprogrammed>()
  /** Service ("ns/name") -> its frontendKeys in `unprogrammed`. */
  private readonly unprogrammedOf = new Map<string, string[]>()
  /** Services this sync could not program for lack of room. */
  private fullThisSync: { service: string; error: Error }[] = []

  constructor(
    private readonly model: ProxyModelView,
    options: ResolvedOptions,
    settings: NativeSettings,
    dataplane?: Dataplane,
  ) {
    this.dataplane = dataplane ?? new Dataplane({ capacity: settings.capacity, timeouts: options.timeouts, seed: options.seed, threads: settings.threads })
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

  /**
   * Programs one Service. When a map is at its capacity the Service is left out entirely (its
   * previous programming stays), remembered so route() says so, and synced() fails the sync.
   */
  apply(diff: ServiceDiff): { flowsRemoved: number } {
    let result: { flowsRemoved: number }
    try {
      result = this.backend.apply(diff)
    } catch (error) {
      if (errorCode(error) === 'FULL') this.markUnprogrammed(diff, error as Error)
      throw error
    }
    this.clearUnprogrammed(diff.service)
    return result
  }

  /**
   * Programs a whole sync with one dataplane call; undefined when the batch is refused (nothing
   * of it applied): the Proxier then applies Service by Service, so each failure is that Service's own.
   */
  applyAll(diffs: readonly ServiceDiff[]): ApplyOutcome[] | undefined {
    const results = this.backend.applyAll(diffs)
    if (results !== undefined && this.unprogrammedOf.size > 0) for (const diff of diffs) this.clearUnprogrammed(diff.service)
    return results
  }

  /** Fails the sync (RangeError, code FULL) when a Service could not be programmed for lack of room. */
  synced(): void {
    const full = this.fullThisSync
    this.fullThisSync = []
    if (full.length === 0) return
    const first = full[0]!
    throw Object.assign(
      new SvcplaneRangeError(
        `native mode: ${full.length} Service(s) could not be programmed, ${first.service} first (${capacityProblem(first.error)}); ` +
          'they stay out of the dataplane and are retried at every sync (raise native.capacity, or the CLI\'s --capacity)',
        'FULL',
      ),
      { services: full.map((f) => f.service), cause: first.error },
    )
  }

  private markUnprogrammed(diff: ServiceDiff, error: Error): void {
    this.clearUnprogrammed(diff.service)
    this.fullThisSync.push({ service: diff.service, error })
    const keys: string[] = []
    for (const state of [...diff.added, ...diff.changed.map((c) => c.after)]) {
      for (const f of state.frontends) {
        const key = frontendKey(f.address, f.port, f.protocol)
        keys.push(key)
        this.unprogrammed.set(key, { servicePort: state.info.name, error })
      }
    }
    this.unprogrammedOf.set(diff.service, keys)
  }

  private clearUnprogrammed(service: string): void {
    const keys = this.unprogrammedOf.get(service)
    if (keys === undefined) return
    for (const key of keys) this.unprogrammed.delete(key)
    this.unprogrammedOf.delete(service)
  }

  route(p: CheckedPacket, source: SourceClass, trace: KubeProxyTrace, now: number): ModeDecision {
    const scope = source.fromNode || source.fromPod ? 'internal' : 'external'
    const d = this.dataplane.decide(
      { src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, scope, tcpFlags: p.tcpFlags },
      now,
    )
    const steps: Step[] = []
    const left = d.verdict === 'pass' ? this.unprogrammed.get(frontendKey(p.dst, p.dport, p.protocol)) : undefined
    if (left !== undefined) {
      // Not "not service traffic": a Service answers here, but the dataplane had no room for it.
      steps.push({ kind: 'verdict', text: `${left.servicePort} is not programmed: ${capacityProblem(left.error)}` })
      return { result: { action: 'drop', servicePort: left.servicePort, reason: 'not-programmed' }, steps }
    }
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
