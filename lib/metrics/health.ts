// kube-proxy's proxier health (pkg/proxy/healthcheck/proxier_health.go): healthy while no
// change has waited longer than healthTimeout (2 x --sync-period) for a sync; /healthz also
// needs the node to be eligible (not being deleted). Times are rendered as Go's time.String().

export function goTimeString(ms: number | undefined): string {
  if (ms === undefined) return '0001-01-01 00:00:00 +0000 UTC'
  const d = new Date(ms)
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  const frac = d.getUTCMilliseconds() === 0 ? '' : `.${p(d.getUTCMilliseconds(), 3).replace(/0+$/, '')}`
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${frac} +0000 UTC`
}

export class ProxierHealth {
  private lastUpdated: number | undefined
  private oldestPendingQueued: number | undefined
  nodeEligible = true

  constructor(
    /** Milliseconds a queued change may wait for a sync before the proxy is unhealthy. */
    readonly healthTimeoutMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A change arrived that needs a sync. */
  queuedUpdate(): void {
    this.oldestPendingQueued ??= this.clock()
  }

  /** A sync programmed everything pending. */
  updated(): void {
    this.oldestPendingQueued = undefined
    this.lastUpdated = this.clock()
  }

  status(): { healthy: boolean; lastUpdated: number | undefined; currentTime: number } {
    const currentTime = this.clock()
    const healthy = this.oldestPendingQueued === undefined || currentTime - this.oldestPendingQueued < this.healthTimeoutMs
    return { healthy, lastUpdated: this.lastUpdated, currentTime }
  }

  get healthy(): boolean {
    return this.status().healthy
  }

  /** /healthz: status code and kube-proxy's body. */
  healthz(): { code: number; body: string } {
    const s = this.status()
    const healthy = s.healthy && this.nodeEligible
    // Like kube-proxy, a healthy answer reports lastUpdated as now (older clients expect that).
    const last = healthy ? s.currentTime : s.lastUpdated
    return { code: healthy ? 200 : 503, body: `{"lastUpdated": ${JSON.stringify(goTimeString(last))},"currentTime": ${JSON.stringify(goTimeString(s.currentTime))}, "nodeEligible": ${this.nodeEligible}}` }
  }

  /** /livez: like /healthz without the node's eligibility. */
  livez(): { code: number; body: string } {
    const s = this.status()
    const last = s.healthy ? s.currentTime : s.lastUpdated
    return { code: s.healthy ? 200 : 503, body: `{"lastUpdated": ${JSON.stringify(goTimeString(last))},"currentTime": ${JSON.stringify(goTimeString(s.currentTime))}}` }
  }
}
