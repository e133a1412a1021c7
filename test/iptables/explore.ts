// Every endpoint a new connection can reach through a ruleset: one walk per branch of the
// `-m statistic --mode random` rules (the k-th walk lets the first k statistic rules it meets
// fail and the next one match), on fresh -m recent lists so affinity does not narrow the set.
import { IptablesEvaluator } from '../../lib/iptables/netfilter/evaluator.js'
import type { Packet } from '../../lib/proxy/packet.js'

export class Explorer {
  private draws = 0
  private noMatchDraws = 0
  private readonly ev: IptablesEvaluator

  constructor(ruleset: string, localAddresses: string[]) {
    this.ev = new IptablesEvaluator(ruleset, {
      localAddresses,
      trace: 'none',
      random: () => (this.draws++ < this.noMatchDraws ? 0.9999999 : 0),
    })
  }

  reachable(p: Packet): Set<string> {
    const out = new Set<string>()
    for (let k = 0; k < 10_000; k++) {
      this.ev.recent.clear()
      this.draws = 0
      this.noMatchDraws = k
      const r = this.ev.evaluate({ src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, protocol: p.protocol, hook: p.hook ?? 'prerouting', now: p.now })
      if (r.action !== 'dnat') return out
      out.add(r.endpoint!)
      if (this.draws <= k) return out
    }
    throw new Error('statistic branches did not end')
  }
}
