// The userspace mode on a real node, as kube-proxy's userspace proxier (Kubernetes <= 1.25) ran
// it: the Proxier listens on one proxy port per ServicePort (userspace.listen), and the portal
// rules send the ServicePort's cluster IP, external IPs, load-balancer IPs and NodePort to that
// port (REDIRECT from PREROUTING, DNAT from OUTPUT). iptablesInit's jumps from the built-in
// chains are ensured with -C / -I / -A; the portal chains are rewritten whole at every sync
// with `iptables-restore --noflush` (each chain is declared, so the restore flushes it first,
// atomically per table). The rules name proxy ports the kernel may only hand out when a
// listener binds, so each apply waits for the listeners to follow the sync first.
import { SvcplaneRangeError } from '../errors.js'
import type { Proxier, UserspaceMode } from '../modes/index.js'
import type { IptablesNode } from './iptables-node.js'

/** The chains the userspace proxier writes (what its shutdown removes, and nothing else). */
const PORTAL_CHAINS = /^KUBE-(PORTALS-CONTAINER|PORTALS-HOST|NODEPORT-CONTAINER|NODEPORT-HOST|NODEPORT-NON-LOCAL)$/

/** The userspace mode of a Proxier that may be applied: it must open its proxy sockets. */
export function listeningUserspace(proxier: Proxier): UserspaceMode {
  const view = proxier.inspect()
  if (view.mode !== 'userspace') throw new SvcplaneRangeError(`NodeApplier: the Proxier runs mode ${JSON.stringify(view.mode)}, not userspace`)
  if (!view.userspace.settings.listen) {
    throw new SvcplaneRangeError('NodeApplier: mode userspace needs the Proxier option userspace: { listen: true } (the portal rules would send traffic to proxy ports nothing listens on)')
  }
  return view.userspace
}

/** The family the userspace proxier serves: its --bind-address's. */
export function userspaceFamily(mode: UserspaceMode): 'IPv4' | 'IPv6' {
  return mode.settings.bindAddress.includes(':') ? 'IPv6' : 'IPv4'
}

export class UserspaceNode {
  constructor(
    readonly mode: UserspaceMode,
    readonly iptables: IptablesNode,
  ) {}

  /** kube-proxy's iptablesInit: the portal chains and the jumps to them from PREROUTING, OUTPUT and INPUT. */
  async ensureJumps(): Promise<void> {
    const jumps = this.mode.jumpRules()
    for (const table of ['nat', 'filter'] as const) for (const rule of jumps[table]) await this.iptables.ensureJump(table, rule)
  }

  /**
   * Waits until the listeners follow the last sync (a kernel-picked proxy port is known only
   * then), renders the portal chains and writes them; returns the bytes written.
   */
  async apply(full: boolean): Promise<number> {
    await this.mode.settled()
    const text = this.mode.portalRules()
    if (full) await this.ensureJumps()
    await this.iptables.restoreText(text)
    return text.length
  }

  /**
   * Shutdown: the portal rules go first (no new connection is sent to a closing port), then the
   * listeners close; open connections get `drainMs` to end.
   */
  async shutdown(drainMs: number): Promise<void> {
    try {
      await this.iptables.cleanup(PORTAL_CHAINS)
    } finally {
      await this.mode.close({ drainMs })
    }
  }
}
