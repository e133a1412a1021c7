// The native mode on a real node: the kernel does no Service NAT; packets of Service flows are
// routed into a TUN device this process owns, rewritten by Dataplane.processPackets in
// batches (TunPump), and written back for the kernel to route on. What it installs, all owned
// and all removed by remove() and by `svcplane run --cleanup` (cleanupNativeNode):
//   - the TUN device (not persistent while it runs; made persistent by handOff());
//   - routing table NATIVE_TABLE: `default dev <tun>`;
//   - policy rules NATIVE_RULE_PREF: `fwmark NATIVE_MARK/NATIVE_MARK lookup NATIVE_TABLE`, one
//     `iif lo to <service CIDR> lookup NATIVE_TABLE` per --service-cidr (the node's own
//     clients), and the `local` rule moved from preference 0 to LOCAL_RULE_PREF behind them, so
//     that NodePort packets and replies addressed to a node address reach the TUN before local
//     delivery;
//   - nft table `ip svcplane-native` (marks only, no NAT): the set of frontends (ClusterIPs,
//     external and load-balancer IPs, NodePorts on the node IPs, per protocol and port), a
//     prerouting chain marking packets to them, and the kernel's conntrack used as a flow
//     memory: a kernel flow whose first packet came out of the TUN gets a ct mark, and every
//     reply of it is marked for the TUN too (the replies of DNATed and of masqueraded flows alike).
//   - per-device sysctls of the TUN: rp_filter 0 and accept_local 1 (a masqueraded packet comes
//     out of the TUN with a node address as its source); all.rp_filter 1 is lowered to 2.
// A stop for a restart (handOff) leaves all of it in place, the device persistent (packets to
// it are dropped, so TCP retransmits, instead of reaching local delivery and a RST), and writes
// the dataplane's flows to the state file; the next install finds device and state file, takes
// them over, and imports the flows after the first sync (startAfterSync) before it pumps again.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Proxier } from '../modes/index.js'
import { SvcplaneError, SvcplaneRangeError } from '../errors.js'
import { runChecked, runTool } from './tool.js'
import { setSysctls } from './sysctls.js'
import { TunDevice } from './tun.js'
import { TunPump, type TunPumpOptions } from './tun-pump.js'

export const NATIVE_TABLE_NAME = 'svcplane-native'
/** The routing table holding `default dev <tun>` (0x5356, "SV"). */
export const NATIVE_TABLE = 21334
/** The packet mark bit (and ct mark bit) that sends a packet to the TUN. */
export const NATIVE_MARK = 0x00200000
export const NATIVE_RULE_PREF = 10
export const LOCAL_RULE_PREF = 11
export const DEFAULT_TUN_NAME = 'svcp0'
/** Where a stop for a restart leaves the flows (Dataplane.exportFlows) for the next run. */
export const DEFAULT_STATE_FILE = '/run/svcplane/native-flows.bin'

const MARK = `0x${NATIVE_MARK.toString(16).padStart(8, '0')}`

export interface NativeNodeOptions {
  /** TUN device name (default svcp0). */
  device?: string
  /** The flows handed from one run to the next (default DEFAULT_STATE_FILE). */
  stateFile?: string
  pump?: Omit<TunPumpOptions, 'mtu' | 'clock'>
  onError?(error: Error): void
  /** A previous run's device and flows were taken over (after the first sync). */
  onTakeover?(info: TakeoverInfo): void
}

export interface TakeoverInfo {
  imported: number
  dropped: number
  /** From the previous run writing its state file to this one importing it. */
  gapMs: number
}

interface RuleRow {
  priority?: number
  table?: string
  fwmark?: string
  fwmask?: string
  src?: string
  dst?: string
  dstlen?: number
  iif?: string
}

async function rules(): Promise<RuleRow[]> {
  return JSON.parse(await runChecked('ip', ['-j', '-4', 'rule', 'show'])) as RuleRow[]
}

/** A TUN device of that name exists in this namespace (a persistent one a previous run left). */
const tunExists = (name: string) => existsSync(`/sys/class/net/${name}/tun_flags`)

const isOurs = (r: RuleRow) => r.priority === NATIVE_RULE_PREF && (r.table === String(NATIVE_TABLE) || r.table === `0x${NATIVE_TABLE.toString(16)}`)
const isMarkRule = (r: RuleRow) => isOurs(r) && r.fwmark !== undefined
const isCidrRule = (cidr: string) => (r: RuleRow) => isOurs(r) && r.iif === 'lo' && `${r.dst}/${r.dstlen}` === cidr
const isLocal = (pref: number) => (r: RuleRow) => r.priority === pref && r.table === 'local' && r.fwmark === undefined && (r.src ?? 'all') === 'all'

/** The nft table: the frontends set and the marking chain. */
export function nativeTableText(device: string, frontends: string[]): string {
  const elements = frontends.length > 0 ? `    elements = { ${frontends.join(', ')} }\n` : ''
  return [
    `add table ip ${NATIVE_TABLE_NAME}`,
    `delete table ip ${NATIVE_TABLE_NAME}`,
    `table ip ${NATIVE_TABLE_NAME} {`,
    '  set frontends {',
    '    type ipv4_addr . inet_proto . inet_service',
    elements + '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    iifname "${device}" ct mark set ct mark | ${MARK} return`,
    `    ct direction reply ct mark & ${MARK} == ${MARK} meta mark set meta mark | ${MARK} return`,
    `    ip daddr . meta l4proto . th dport @frontends meta mark set meta mark | ${MARK}`,
    '  }',
    '}',
    '',
  ].join('\n')
}

/**
 * The frontends set's elements ("10.96.0.10 . tcp . 80") of the proxier's IPv4 Services.
 * Loopback NodePorts are left out: a packet to 127.0.0.1 keeps the local route its sender gave
 * it, so policy routing cannot take it to the TUN.
 */
export function frontendElements(proxier: Proxier): string[] {
  const out = new Set<string>()
  for (const sp of proxier.state.servicePorts()) {
    for (const f of sp.frontends) {
      if (!f.address.includes(':') && !f.address.startsWith('127.')) out.add(`${f.address} . ${f.protocol.toLowerCase()} . ${f.port}`)
    }
  }
  return [...out].sort()
}

/** NAT ports above the kernel's ephemeral range, so a masqueraded flow never clashes with a local socket's. */
export function natPortRangeAbove(localPortRange: string): [number, number] | undefined {
  const hi = Number(localPortRange.trim().split(/\s+/)[1])
  return Number.isInteger(hi) && hi < 65535 - 1023 ? [hi + 1, 65535] : undefined
}

/** The address the kernel would give a packet towards the first pod CIDR (kube-proxy's MASQUERADE picks it the same way). */
async function masqueradeSource(podCIDR: string | undefined): Promise<string | undefined> {
  if (podCIDR === undefined || podCIDR.includes(':')) return undefined
  const [net] = podCIDR.split('/')
  const b = net!.split('.').map(Number)
  const probe = `${b[0]}.${b[1]}.${b[2]}.${(b[3]! | 1)}`
  const r = await runTool('ip', ['-j', '-4', 'route', 'get', probe])
  if (r.status !== 0) return undefined
  const [route] = JSON.parse(r.stdout) as Array<{ prefsrc?: string; dst?: string; type?: string }>
  return route?.prefsrc ?? (route?.type === 'local' ? route.dst : undefined)
}

export class NativeNode {
  private pump: TunPump | undefined
  private removed = false
  /** A previous run's flows wait in the state file for the first sync (startAfterSync). */
  private takingOver = false

  private constructor(
    readonly proxier: Proxier,
    readonly device: TunDevice,
    readonly stateFile: string,
    private readonly options: NativeNodeOptions,
  ) {}

  /**
   * Opens the TUN device (attaching to the persistent one a stopped run left), installs what of
   * its routes, rules, nft table and sysctls is missing, points the dataplane's masquerade at
   * the node's address towards the pods, and starts the pump; when a previous run handed its
   * flows over, the pump starts only after the first sync imported them (startAfterSync). On a
   * failure everything installed so far is removed again.
   */
  static async install(proxier: Proxier, options: NativeNodeOptions = {}): Promise<NativeNode> {
    const dataplane = proxier.dataplane
    if (dataplane === undefined) throw new SvcplaneRangeError('NativeNode: the proxier is not in mode native')
    if (proxier.options.node.families.includes('IPv6'))
      throw new SvcplaneRangeError('NativeNode: native mode on a node moves IPv4 only today (give IPv4 node IPs, or --ip-family IPv4)')
    const stateFile = options.stateFile ?? DEFAULT_STATE_FILE
    const name = options.device ?? DEFAULT_TUN_NAME
    const takeover = tunExists(name) && existsSync(stateFile)
    const device = TunDevice.open(name)
    const node = new NativeNode(proxier, device, stateFile, options)
    try {
      if (!takeover) {
        rmSync(stateFile, { force: true }) // a state file without its device: its flows have nowhere to go
        await cleanupNativeNode(false)
      }
      await runChecked('ip', ['link', 'set', 'dev', name, 'mtu', '1500', 'up'])
      setSysctls([[`net.ipv4.conf.${name}.rp_filter`, '0'], [`net.ipv4.conf.${name}.accept_local`, '1']])
      // No IPv6 on the device: the kernel would send its own router solicitations into the pump.
      if (existsSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`)) setSysctls([[`net.ipv6.conf.${name}.disable_ipv6`, '1']])
      if (readFileSync('/proc/sys/net/ipv4/conf/all/rp_filter', 'utf8').trim() === '1') setSysctls([['net.ipv4.conf.all.rp_filter', '2']])
      await runChecked('ip', ['-4', 'route', 'replace', 'default', 'dev', name, 'table', String(NATIVE_TABLE)])
      // Taking over, the previous run's table stays as it is: until the first sync it holds the
      // frontends this run does not know yet (an empty set would send NodePort packets of live
      // connections to local delivery, and a RST). The first sync replaces the set.
      const keepTable = takeover && (await runTool('nft', ['list', 'table', 'ip', NATIVE_TABLE_NAME])).status === 0
      if (!keepTable) await runChecked('nft', ['-f', '-'], nativeTableText(name, frontendElements(proxier)))
      let now = await rules()
      if (!now.some(isMarkRule)) await runChecked('ip', ['-4', 'rule', 'add', 'pref', String(NATIVE_RULE_PREF), 'fwmark', `${MARK}/${MARK}`, 'lookup', String(NATIVE_TABLE)])
      // The node's own clients: their packets see no prerouting mark, so the service CIDRs
      // (--service-cidr) route into the TUN for locally sent packets only (`iif lo`); a packet
      // coming out of the TUN is never routed back into it.
      for (const cidr of proxier.options.serviceCIDRs.filter((c) => !c.includes(':')))
        if (!now.some(isCidrRule(cidr))) await runChecked('ip', ['-4', 'rule', 'add', 'pref', String(NATIVE_RULE_PREF), 'iif', 'lo', 'to', cidr, 'lookup', String(NATIVE_TABLE)])
      // The local rule moves behind ours: added at its new place first, so there is never a moment without it.
      now = await rules()
      if (!now.some(isLocal(LOCAL_RULE_PREF))) await runChecked('ip', ['-4', 'rule', 'add', 'pref', String(LOCAL_RULE_PREF), 'lookup', 'local'])
      if (now.some(isLocal(0))) await runChecked('ip', ['-4', 'rule', 'del', 'pref', '0', 'lookup', 'local'])
      const masq = await masqueradeSource(proxier.options.podCIDRs[0])
      const ports = natPortRangeAbove(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'))
      dataplane.configurePackets({
        ...dataplane.packetConfig(),
        ...(masq !== undefined ? { masqueradeAddresses: [masq] } : {}),
        ...(ports !== undefined ? { natPortRange: ports } : {}),
      })
      node.pump = new TunPump(dataplane, device, { ...options.pump, mtu: 1500, clock: proxier.options.clock, onError: options.onError })
      if (takeover) node.takingOver = true
      else node.pump.start()
    } catch (err) {
      await node.remove().catch(() => undefined)
      throw err
    }
    return node
  }

  /** The nft transaction that makes the frontends set what the proxier holds now. */
  frontendsText(): string {
    const elements = frontendElements(this.proxier)
    const add = elements.length > 0 ? `add element ip ${NATIVE_TABLE_NAME} frontends { ${elements.join(', ')} }\n` : ''
    return `flush set ip ${NATIVE_TABLE_NAME} frontends\n${add}`
  }

  /** Applies frontendsText() in one nft transaction. */
  async syncFrontends(text = this.frontendsText()): Promise<void> {
    if (this.removed) throw new SvcplaneError('DESTROYED', 'NativeNode: removed')
    await runChecked('nft', ['-f', '-'], text)
  }

  /**
   * After a sync has programmed the dataplane: when taking over, imports the previous run's
   * flows (their services and backends are found again now), deletes the state file and
   * starts the pump. Nothing otherwise. A state file that cannot be read or imported is
   * reported (onError) and deleted; the pump starts anyway.
   */
  startAfterSync(): TakeoverInfo | undefined {
    if (!this.takingOver || this.removed) return undefined
    this.takingOver = false
    let info: TakeoverInfo | undefined
    try {
      const gapMs = Date.now() - statSync(this.stateFile).mtimeMs
      const r = this.proxier.dataplane!.importFlows(readFileSync(this.stateFile), this.clock())
      info = { imported: r.imported, dropped: r.dropped, gapMs }
    } catch (err) {
      this.options.onError?.(err as Error)
    }
    rmSync(this.stateFile, { force: true })
    this.pump!.start()
    if (info) this.options.onTakeover?.(info)
    return info
  }

  get stats() {
    return { pump: this.pump?.counts, device: this.device.isOpen ? this.device.stats() : undefined }
  }

  /**
   * A stop for a restart: stops the pump, makes the device persistent, writes the dataplane's
   * flows to the state file (tmp + rename) and closes the device; routes, rules and nft table
   * stay for the next run. Returns the flows written. Idempotent (0 after the first call).
   */
  async handOff(): Promise<{ flows: number; file: string }> {
    if (this.removed) return { flows: 0, file: this.stateFile }
    this.removed = true
    this.pump?.stop()
    this.device.setPersistent(true)
    // Flows a taken-over run never imported (no sync came) go back unchanged.
    const blob = this.takingOver && existsSync(this.stateFile) ? readFileSync(this.stateFile) : this.proxier.dataplane!.exportFlows(this.clock())
    mkdirSync(dirname(this.stateFile), { recursive: true, mode: 0o700 })
    const tmp = `${this.stateFile}.${process.pid}.tmp`
    writeFileSync(tmp, blob, { mode: 0o600 })
    renameSync(tmp, this.stateFile)
    this.device.close()
    return { flows: new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(12, true), file: this.stateFile }
  }

  /** Stops the pump, removes the device (persistent or not), the rules, the nft table and the state file. Idempotent. */
  async remove(): Promise<void> {
    if (this.removed) return
    this.removed = true
    this.pump?.stop()
    if (this.device.isOpen) this.device.setPersistent(false)
    this.device.close()
    rmSync(this.stateFile, { force: true })
    await cleanupNativeNode(true)
  }

  private clock(): number {
    return this.proxier.options.clock()
  }
}

/** What a stopped run may have left besides rules and table: its persistent device and state file. */
export interface NativeLeftovers {
  device?: string
  stateFile?: string
}

/**
 * Removes what a native node installed (rules, local rule move, nft table, routing table, and
 * with `leftovers` the persistent TUN device and the state file a stop for a restart left).
 * Returns what it removed. `restoreLocal` false keeps the local rule where it is (install takes
 * over and moves it anyway).
 */
export async function cleanupNativeNode(restoreLocal = true, leftovers: NativeLeftovers = {}): Promise<string[]> {
  const removed: string[] = []
  if ((await runTool('ip', ['-V'])).status !== 0) return removed
  let list = await rules()
  for (let left = list.filter(isOurs).length; left > 0; left--) {
    await runChecked('ip', ['-4', 'rule', 'del', 'pref', String(NATIVE_RULE_PREF), 'lookup', String(NATIVE_TABLE)])
    removed.push(`ip rule ${NATIVE_RULE_PREF} (lookup ${NATIVE_TABLE})`)
  }
  list = await rules()
  if (restoreLocal && list.some(isLocal(LOCAL_RULE_PREF))) {
    if (!list.some(isLocal(0))) await runChecked('ip', ['-4', 'rule', 'add', 'pref', '0', 'lookup', 'local'])
    await runChecked('ip', ['-4', 'rule', 'del', 'pref', String(LOCAL_RULE_PREF), 'lookup', 'local'])
    removed.push(`ip rule local moved back to preference 0`)
  }
  if (leftovers.stateFile !== undefined && existsSync(leftovers.stateFile)) {
    rmSync(leftovers.stateFile, { force: true })
    removed.push(`state file ${leftovers.stateFile}`)
  }
  if (leftovers.device !== undefined && tunExists(leftovers.device)) {
    // Attached and persist cleared, it goes when closed; held by a running svcplane, ip deletes it.
    try {
      const dev = TunDevice.open(leftovers.device)
      dev.setPersistent(false)
      dev.close()
    } catch {
      await runChecked('ip', ['link', 'del', 'dev', leftovers.device])
    }
    removed.push(`TUN device ${leftovers.device}`)
  }
  const routes = await runTool('ip', ['-4', 'route', 'show', 'table', String(NATIVE_TABLE)])
  if (routes.status === 0 && routes.stdout.trim() !== '') {
    await runTool('ip', ['-4', 'route', 'flush', 'table', String(NATIVE_TABLE)])
    removed.push(`routing table ${NATIVE_TABLE}`)
  }
  const nft = await runTool('nft', ['list', 'table', 'ip', NATIVE_TABLE_NAME])
  if (nft.status === 0) {
    await runChecked('nft', ['delete', 'table', 'ip', NATIVE_TABLE_NAME])
    removed.push(`nft table ip ${NATIVE_TABLE_NAME}`)
  }
  return removed
}
