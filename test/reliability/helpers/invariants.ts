// Map invariants of a Dataplane, checked only through its public dump APIs: every count agrees
// with what the dumps list, and every link between services, frontends, reverse NAT,
// backends, conntrack, affinity and the NAT port map points at something that exists and
// agrees with it. Returns the broken invariants (empty when all hold), so a property test can
// report them with the step that broke them.
import type { Dataplane } from '../../../lib/index.js'

export interface InvariantOptions {
  /** Also walk conntrack (costs a dump of every flow). Default true. */
  flows?: boolean
}

const key = (address: string, port: number, protocol: string, scope?: string) => `${address}|${port}|${protocol}|${scope ?? ''}`

export function checkInvariants(dp: Dataplane, options: InvariantOptions = {}): string[] {
  const bad: string[] = []
  const services = dp.services()
  const backends = dp.backends()
  const frontends = dp.frontends()
  const revnat = dp.revnat()
  const affinity = dp.affinity()
  const maps = new Map(dp.maps().map((m) => [m.name, m]))
  const sizeOf = (name: string) => maps.get(name)?.size ?? -1

  for (const m of maps.values()) if (m.size > m.capacity || m.size < 0) bad.push(`${m.name}: size ${m.size} outside 0..${m.capacity}`)
  if (sizeOf('services') !== services.length) bad.push(`services: size ${sizeOf('services')} but ${services.length} listed`)
  if (sizeOf('backends') !== backends.length) bad.push(`backends: size ${sizeOf('backends')} but ${backends.length} listed`)
  if (sizeOf('frontends') !== frontends.length) bad.push(`frontends: size ${sizeOf('frontends')} but ${frontends.length} listed`)
  if (sizeOf('revnat') !== revnat.length) bad.push(`revnat: size ${sizeOf('revnat')} but ${revnat.length} listed`)
  if (sizeOf('affinity') !== affinity.length) bad.push(`affinity: size ${sizeOf('affinity')} but ${affinity.length} listed`)
  if (revnat.length !== frontends.length) bad.push(`revnat has ${revnat.length} entries for ${frontends.length} frontends`)

  const serviceById = new Map(services.map((s) => [s.id, s]))
  const backendById = new Map(backends.map((b) => [b.id, b]))
  const revnatById = new Map(revnat.map((r) => [r.id, r]))
  const frontendByKey = new Map(frontends.map((f) => [key(f.address, f.port, f.protocol, f.scope), f]))
  if (serviceById.size !== services.length) bad.push('services: an id listed twice')
  if (backendById.size !== backends.length) bad.push('backends: an id listed twice')
  if (frontendByKey.size !== frontends.length) bad.push('frontends: a key listed twice')

  let frontendCount = 0
  for (const s of services) {
    for (const f of s.frontends) {
      frontendCount++
      const fe = frontendByKey.get(key(f.address, f.port, f.protocol, f.scope))
      if (!fe) bad.push(`service ${s.id}: frontend ${f.address}:${f.port}/${f.protocol} missing from the frontends map`)
      else if (fe.serviceId !== s.id) bad.push(`service ${s.id}: its frontend ${f.address}:${f.port} points at service ${fe.serviceId}`)
    }
    for (const id of s.backends) {
      const b = backendById.get(id)
      if (!b) bad.push(`service ${s.id}: lists backend ${id}, which does not exist`)
      else if (!b.services.includes(s.id)) bad.push(`service ${s.id}: lists backend ${id}, which does not list it back`)
    }
    for (const id of s.activeBackends) {
      if (!s.backends.includes(id)) bad.push(`service ${s.id}: active backend ${id} is not among its backends`)
      if (backendById.get(id)?.state !== 'active') bad.push(`service ${s.id}: active backend ${id} is ${backendById.get(id)?.state}`)
    }
    for (const id of s.backends)
      if (backendById.get(id)?.state === 'active' && !s.activeBackends.includes(id)) bad.push(`service ${s.id}: active backend ${id} not in its active set`)
  }
  if (frontendCount !== frontends.length) bad.push(`services list ${frontendCount} frontends, the frontends map holds ${frontends.length}`)
  for (const f of frontends) {
    const s = serviceById.get(f.serviceId)
    if (!s) bad.push(`frontend ${f.address}:${f.port}: service ${f.serviceId} does not exist`)
    const r = revnatById.get(f.revNatId)
    if (!r) bad.push(`frontend ${f.address}:${f.port}: revnat ${f.revNatId} missing`)
    else if (r.address !== f.address || r.port !== f.port) bad.push(`revnat ${f.revNatId} is ${r.address}:${r.port}, its frontend ${f.address}:${f.port}`)
  }
  for (const b of backends) {
    if (new Set(b.services).size !== b.services.length) bad.push(`backend ${b.id}: a service listed twice`)
    for (const sid of b.services) {
      const s = serviceById.get(sid)
      if (!s) bad.push(`backend ${b.id}: lists service ${sid}, which does not exist`)
      else if (!s.backends.includes(b.id)) bad.push(`backend ${b.id}: lists service ${sid}, which does not list it`)
    }
  }
  for (const a of affinity) {
    if (!serviceById.has(a.serviceId)) bad.push(`affinity ${a.client}: service ${a.serviceId} does not exist`)
    if (!backendById.has(a.backendId)) bad.push(`affinity ${a.client}: backend ${a.backendId} does not exist`)
  }

  if (options.flows ?? true) {
    const conns = new Map<number, number>()
    let n = 0
    for (const f of dp.flows()) {
      n++
      conns.set(f.backendId, (conns.get(f.backendId) ?? 0) + 1)
      if (!serviceById.has(f.serviceId)) bad.push(`flow ${f.src}:${f.sport}->${f.dst}:${f.dport}: service ${f.serviceId} does not exist`)
      const b = backendById.get(f.backendId)
      if (!b) bad.push(`flow ${f.src}:${f.sport}->${f.dst}:${f.dport}: backend ${f.backendId} does not exist`)
      else if (b.address !== f.backendAddress || b.port !== f.backendPort)
        bad.push(`flow ${f.src}:${f.sport}: goes to ${f.backendAddress}:${f.backendPort}, backend ${b.id} is ${b.address}:${b.port}`)
      const r = revnatById.get(f.revNatId)
      if (r && (r.address !== f.dst || r.port !== f.dport)) bad.push(`flow ${f.src}:${f.sport}->${f.dst}:${f.dport}: revnat ${f.revNatId} is ${r.address}:${r.port}`)
      if (bad.length > 20) break
    }
    if (n !== sizeOf('conntrack')) bad.push(`conntrack: size ${sizeOf('conntrack')} but ${n} flows listed`)
    for (const b of backends)
      if (b.activeConnections !== (conns.get(b.id) ?? 0)) bad.push(`backend ${b.id}: activeConnections ${b.activeConnections}, ${conns.get(b.id) ?? 0} flows`)
    const nat = dp.packetMaps().find((m) => m.name === 'nat')
    if (nat) {
      const ports = dp.natPorts()
      if (ports.length !== nat.size) bad.push(`nat: size ${nat.size} but ${ports.length} listed`)
      if (nat.size > n) bad.push(`nat: ${nat.size} ports held by ${n} flows`)
    }
  }
  return bad
}
