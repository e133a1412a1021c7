// Bad input for every public method: a TypeError or RangeError whose message names the field
// and the bad value, and afterwards the dataplane works and every map is exactly as before.
import t from 'tap'
import { Dataplane } from '../../lib/index.js'
import type { BackendSpec, DataplaneOptions, Flow, FrontendSpec, ServiceSpec } from '../../lib/index.js'
import { VIP, addBackends, frontend, makeDataplane, snapshot, toVip } from './helpers/fixtures.js'

interface Case {
  /** What is wrong. */
  what: string
  call: (dp: Dataplane) => unknown
  error: 'TypeError' | 'RangeError'
  /** The field, as the message must name it. */
  field: RegExp
  /** The bad value as the message shows it (omitted when it is an object). */
  value?: string
}

const BAD_ID: Array<[unknown, string]> = [[0, '0'], [-1, '-1'], [2 ** 32, '4294967296'], [1.5, '1.5'], ['7', '7'], [undefined, 'undefined'], [NaN, 'NaN']]

/** A dataplane with something in every map: backends, a service with affinity, a flow. */
function populated(): Dataplane {
  const dp = makeDataplane()
  addBackends(dp, 2)
  dp.upsertService({ id: 1, frontends: [frontend(VIP)], backends: [1, 2], scheduler: 'rr', affinityTimeout: 30, sourceRanges: ['10.0.0.0/8'] })
  dp.decide(toVip(1000, { tcpFlags: 0x02, bytes: 60 }), 1)
  return dp
}

const backend = (over: Partial<Record<keyof BackendSpec, unknown>>) => ({ id: 3, address: '10.1.0.3', port: 8080, ...over }) as BackendSpec
const service = (over: Partial<Record<keyof ServiceSpec, unknown>>) => ({ id: 1, frontends: [frontend(VIP)], backends: [1, 2], ...over }) as ServiceSpec
const fe = (over: Partial<Record<keyof FrontendSpec, unknown>>) => service({ frontends: [frontend(VIP), { ...frontend('172.30.0.50'), ...over }] })
const flow = (over: Partial<Record<keyof Flow, unknown>>) => ({ ...toVip(2000), ...over }) as Flow

const cases: Case[] = [
  // upsertBackend
  { what: 'backend null', call: (dp) => dp.upsertBackend(null as never), error: 'TypeError', field: /backend must be an object/, value: 'null' },
  { what: 'backend a string', call: (dp) => dp.upsertBackend('bogus' as never), error: 'TypeError', field: /backend must be an object/, value: 'bogus' },
  ...BAD_ID.map(([id, text]): Case => ({ what: `backend id ${text}`, call: (dp) => dp.upsertBackend(backend({ id })), error: 'RangeError', field: /backend\.id/, value: text })),
  ...['10.0.0.256', '1.2.3', ':::', 'fe80::1%eth0', '010.1.0.3', ''].map((address): Case => ({ what: `backend address ${JSON.stringify(address)}`, call: (dp) => dp.upsertBackend(backend({ address })), error: 'TypeError', field: /backend 3: address/, value: JSON.stringify(address) })),
  { what: 'backend address a number', call: (dp) => dp.upsertBackend(backend({ address: 167837955 })), error: 'TypeError', field: /backend 3: address/, value: '167837955' },
  ...([[0, '0'], [70000, '70000'], [1.5, '1.5'], [-1, '-1'], ['8080', '8080'], [undefined, 'undefined']] as Array<[unknown, string]>).map(([port, text]): Case => ({ what: `backend port ${text}`, call: (dp) => dp.upsertBackend(backend({ port })), error: 'RangeError', field: /backend 3: port/, value: text })),
  { what: 'backend state', call: (dp) => dp.upsertBackend(backend({ state: 'draining' })), error: 'TypeError', field: /backend 3: state/, value: '"draining"' },
  ...([[0, '0'], [65536, '65536'], [1.5, '1.5'], [-3, '-3']] as Array<[number, string]>).map(([weight, text]): Case => ({ what: `backend weight ${text}`, call: (dp) => dp.upsertBackend(backend({ weight })), error: 'RangeError', field: /backend 3: weight/, value: text })),
  { what: 'an existing backend with a bad weight', call: (dp) => dp.upsertBackend(backend({ id: 1, weight: 0 })), error: 'RangeError', field: /backend 1: weight/, value: '0' },
  { what: 'backend nodeLocal', call: (dp) => dp.upsertBackend(backend({ nodeLocal: 'yes' })), error: 'TypeError', field: /backend 3: nodeLocal/, value: 'yes' },
  { what: 'backend zone', call: (dp) => dp.upsertBackend(backend({ zone: 5 })), error: 'TypeError', field: /backend 3: zone/, value: '5' },

  // upsertService
  { what: 'service null', call: (dp) => dp.upsertService(null as never), error: 'TypeError', field: /service must be an object/, value: 'null' },
  ...BAD_ID.map(([id, text]): Case => ({ what: `service id ${text}`, call: (dp) => dp.upsertService(service({ id })), error: 'RangeError', field: /service\.id/, value: text })),
  { what: 'frontends not an array', call: (dp) => dp.upsertService(service({ frontends: 'bogus' })), error: 'TypeError', field: /service 1: frontends must be an array/, value: 'bogus' },
  { what: 'a frontend null', call: (dp) => dp.upsertService(service({ frontends: [frontend(VIP), null] })), error: 'TypeError', field: /service 1: frontends\[1\] must be an object/ },
  { what: 'frontend address', call: (dp) => dp.upsertService(fe({ address: 'not-an-ip' })), error: 'TypeError', field: /service 1: frontends\[1\]\.address/, value: '"not-an-ip"' },
  { what: 'frontend address with a zone', call: (dp) => dp.upsertService(fe({ address: 'fe80::1%eth0' })), error: 'TypeError', field: /frontends\[1\]\.address/, value: '"fe80::1%eth0"' },
  ...([[0, '0'], [70000, '70000'], [1.5, '1.5']] as Array<[number, string]>).map(([port, text]): Case => ({ what: `frontend port ${text}`, call: (dp) => dp.upsertService(fe({ port })), error: 'RangeError', field: /service 1: frontends\[1\]\.port/, value: text })),
  ...['ICMP', 'tcp', ''].map((protocol): Case => ({ what: `frontend protocol ${JSON.stringify(protocol)}`, call: (dp) => dp.upsertService(fe({ protocol })), error: 'TypeError', field: /frontends\[1\]\.protocol/, value: JSON.stringify(protocol) })),
  { what: 'frontend scope', call: (dp) => dp.upsertService(fe({ scope: 'x' })), error: 'TypeError', field: /frontends\[1\]\.scope/, value: '"x"' },
  { what: 'backends not an array', call: (dp) => dp.upsertService(service({ backends: 'bogus' })), error: 'TypeError', field: /service 1: backends must be an array/, value: 'bogus' },
  ...BAD_ID.map(([id, text]): Case => ({ what: `a backend id ${text}`, call: (dp) => dp.upsertService(service({ backends: [1, id] })), error: 'RangeError', field: /service 1: backends\[1\]/, value: text })),
  { what: 'an unknown backend', call: (dp) => dp.upsertService(service({ backends: [1, 99] })), error: 'RangeError', field: /backend 99 does not exist/, value: '99' },
  ...['foo', 'RR', 'leastconn'].map((scheduler): Case => ({ what: `scheduler ${scheduler}`, call: (dp) => dp.upsertService(service({ scheduler })), error: 'TypeError', field: /service 1: scheduler/, value: JSON.stringify(scheduler) })),
  ...([[-1, '-1'], [NaN, 'NaN'], [86400 * 366, '31622400'], ['10', '10']] as Array<[unknown, string]>).map(([affinityTimeout, text]): Case => ({ what: `affinityTimeout ${text}`, call: (dp) => dp.upsertService(service({ affinityTimeout })), error: 'RangeError', field: /service 1: affinityTimeout/, value: text })),
  { what: 'emptyVerdict', call: (dp) => dp.upsertService(service({ emptyVerdict: 'accept' })), error: 'TypeError', field: /service 1: emptyVerdict/, value: '"accept"' },
  { what: 'sourceRanges not an array', call: (dp) => dp.upsertService(service({ sourceRanges: '10.0.0.0/8' })), error: 'TypeError', field: /service 1: sourceRanges must be an array/, value: '10.0.0.0/8' },
  ...['10.0.0.0/33', '10.0.0/8', 'bogus'].map((r): Case => ({ what: `source range ${r}`, call: (dp) => dp.upsertService(service({ sourceRanges: ['192.168.0.0/16', r] })), error: 'TypeError', field: /service 1: sourceRanges\[1\]/, value: JSON.stringify(r) })),
  { what: 'a repeated frontend', call: (dp) => dp.upsertService(service({ frontends: [frontend(VIP, 9), frontend(VIP, 9)] })), error: 'RangeError', field: /frontends\[1\] repeats frontends\[0\]/ },
  { what: 'a new service with a bad backend id', call: (dp) => dp.upsertService(service({ id: 2, frontends: [frontend('172.30.0.2')], backends: [0] })), error: 'RangeError', field: /service 2: backends\[0\]/, value: '0' },

  // deleteBackend / deleteService
  ...BAD_ID.map(([id, text]): Case => ({ what: `deleteBackend(${text})`, call: (dp) => dp.deleteBackend(id as number), error: 'RangeError', field: /backend id/, value: text })),
  { what: 'deleteBackend of an unknown id', call: (dp) => dp.deleteBackend(77), error: 'RangeError', field: /backend 77 does not exist/, value: '77' },
  ...BAD_ID.map(([id, text]): Case => ({ what: `deleteService(${text})`, call: (dp) => dp.deleteService(id as number), error: 'RangeError', field: /service id/, value: text })),
  { what: 'deleteService of an unknown id', call: (dp) => dp.deleteService(77), error: 'RangeError', field: /service 77 does not exist/, value: '77' },

  // decide
  { what: 'flow null', call: (dp) => dp.decide(null as never, 2), error: 'TypeError', field: /flow must be an object/, value: 'null' },
  { what: 'flow a string', call: (dp) => dp.decide('bogus' as never, 2), error: 'TypeError', field: /flow must be an object/, value: 'bogus' },
  ...['1.2.3.4.5', '', '::g', 'fe80::1%eth0'].map((src): Case => ({ what: `flow src ${JSON.stringify(src)}`, call: (dp) => dp.decide(flow({ src }), 2), error: 'TypeError', field: /flow\.src/, value: JSON.stringify(src) })),
  { what: 'flow dst', call: (dp) => dp.decide(flow({ dst: '256.1.1.1' }), 2), error: 'TypeError', field: /flow\.dst/, value: '"256.1.1.1"' },
  ...([[70000, '70000'], [1.5, '1.5'], [-1, '-1'], ['80', '80']] as Array<[unknown, string]>).map(([sport, text]): Case => ({ what: `flow sport ${text}`, call: (dp) => dp.decide(flow({ sport }), 2), error: 'RangeError', field: /flow\.sport/, value: text })),
  { what: 'flow dport', call: (dp) => dp.decide(flow({ dport: 65536 }), 2), error: 'RangeError', field: /flow\.dport/, value: '65536' },
  ...['ICMP', 'udp'].map((protocol): Case => ({ what: `flow protocol ${protocol}`, call: (dp) => dp.decide(flow({ protocol }), 2), error: 'TypeError', field: /flow\.protocol/, value: JSON.stringify(protocol) })),
  { what: 'flow scope', call: (dp) => dp.decide(flow({ scope: 'x' }), 2), error: 'TypeError', field: /flow\.scope/, value: '"x"' },
  ...([[256, '256'], [-1, '-1'], [1.5, '1.5']] as Array<[number, string]>).map(([tcpFlags, text]): Case => ({ what: `flow tcpFlags ${text}`, call: (dp) => dp.decide(flow({ tcpFlags }), 2), error: 'RangeError', field: /flow\.tcpFlags/, value: text })),
  ...([[-1, '-1'], [2 ** 32, '4294967296'], [0.5, '0.5']] as Array<[number, string]>).map(([bytes, text]): Case => ({ what: `flow bytes ${text}`, call: (dp) => dp.decide(flow({ bytes }), 2), error: 'RangeError', field: /flow\.bytes/, value: text })),
  ...([[NaN, 'NaN'], [-1, '-1'], [Infinity, 'Infinity'], ['2', '2'], [undefined, 'undefined']] as Array<[unknown, string]>).map(([now, text]): Case => ({ what: `decide now ${text}`, call: (dp) => dp.decide(toVip(2000), now as number), error: 'RangeError', field: /now/, value: text })),

  // lookupFlow
  { what: 'lookupFlow null', call: (dp) => dp.lookupFlow(null as never), error: 'TypeError', field: /flow must be an object/, value: 'null' },
  { what: 'lookupFlow src', call: (dp) => dp.lookupFlow(flow({ src: '1.2.3' })), error: 'TypeError', field: /flow\.src/, value: '"1.2.3"' },
  { what: 'lookupFlow protocol', call: (dp) => dp.lookupFlow(flow({ protocol: 'ICMP' })), error: 'TypeError', field: /flow\.protocol/, value: '"ICMP"' },

  // conntrack maintenance
  ...BAD_ID.map(([id, text]): Case => ({ what: `deleteFlowsByBackend(${text})`, call: (dp) => dp.deleteFlowsByBackend(id as number), error: 'RangeError', field: /backend id/, value: text })),
  ...BAD_ID.map(([id, text]): Case => ({ what: `deleteFlowsByService(${text})`, call: (dp) => dp.deleteFlowsByService(id as number), error: 'RangeError', field: /service id/, value: text })),
  ...([[NaN, 'NaN'], [-1, '-1'], ['5', '5']] as Array<[unknown, string]>).map(([now, text]): Case => ({ what: `gc now ${text}`, call: (dp) => dp.gc(now as number), error: 'RangeError', field: /now/, value: text })),
  ...([[0, '0'], [1.5, '1.5'], [2 ** 30, '1073741824'], [-1, '-1']] as Array<[number, string]>).map(([budget, text]): Case => ({ what: `gc budget ${text}`, call: (dp) => dp.gc(1000, budget), error: 'RangeError', field: /budget/, value: text })),
  ...([[0, '0'], [NaN, 'NaN'], [1.5, '1.5'], [-4, '-4']] as Array<[number, string]>).map(([page, text]): Case => ({ what: `flows page size ${text}`, call: (dp) => [...dp.flows(page)], error: 'RangeError', field: /pageSize/, value: text })),

  // inspection
  ...BAD_ID.map(([id, text]): Case => ({ what: `maglevTable(${text})`, call: (dp) => dp.maglevTable(id as number), error: 'RangeError', field: /service id/, value: text })),
  { what: 'map name', call: (dp) => dp.map('lru'), error: 'TypeError', field: /no map named/, value: '"lru"' },

  // setTimeouts
  ...([[-1, '-1'], [0, '0'], [NaN, 'NaN'], [Infinity, 'Infinity'], [2e9, '2000000000'], ['30', '30']] as Array<[unknown, string]>).map(([v, text]): Case => ({ what: `setTimeouts udp ${text}`, call: (dp) => dp.setTimeouts({ udp: v as number }), error: 'RangeError', field: /timeouts\.udp/, value: text })),
  { what: 'setTimeouts with one bad value among good ones', call: (dp) => dp.setTimeouts({ udp: 5, tcpEstablished: 100, tcpClose: -1 }), error: 'RangeError', field: /timeouts\.tcpClose/, value: '-1' },
  { what: 'setTimeouts unknown key', call: (dp) => dp.setTimeouts({ tcpFin: 5 } as never), error: 'TypeError', field: /timeouts: unknown option "tcpFin"/ },
  { what: 'setTimeouts null', call: (dp) => dp.setTimeouts(null as never), error: 'TypeError', field: /timeouts must be an object/, value: 'null' },
]

t.test('every public method refuses bad arguments and changes nothing', async (t) => {
  for (const c of cases) {
    const dp = populated()
    const before = snapshot(dp)
    let caught: unknown
    try {
      c.call(dp)
    } catch (e) {
      caught = e
    }
    if (!(caught instanceof Error)) {
      t.fail(`${c.what}: did not throw`)
      continue
    }
    t.equal(caught.name, c.error, `${c.what}: ${c.error} (${caught.message})`)
    t.match(caught.message, c.field, `${c.what}: the message names the field`)
    if (c.value !== undefined)
      t.ok(caught.message.includes(c.value), `${c.what}: the message shows the value ${c.value}`)
    t.strictSame(snapshot(dp), before, `${c.what}: every map unchanged`)
    const d = dp.decide(toVip(3000), 2)
    t.strictSame([d.verdict, d.serviceId], ['forward', 1], `${c.what}: still forwarding`)
    t.equal(dp.lookupFlow(toVip(1000))?.backendId, 1, `${c.what}: the old flow is still there`)
    dp.destroy()
  }
})

t.test('the constructor refuses bad options', async (t) => {
  const ctor: Array<{ what: string; options: unknown; error: 'TypeError' | 'RangeError'; field: RegExp; value?: string }> = [
    { what: 'options null', options: null, error: 'TypeError', field: /options must be an object/, value: 'null' },
    { what: 'options a string', options: 'bogus', error: 'TypeError', field: /options must be an object/, value: 'bogus' },
    ...([[0, '0'], [-1, '-1'], [2 ** 30, '1073741824'], [1.5, '1.5'], ['10', '10'], [NaN, 'NaN']] as Array<[unknown, string]>).flatMap(([v, text]) =>
      ['services', 'frontends', 'backends', 'conntrack', 'affinity'].map((map) => ({
        what: `capacity.${map} ${text}`, options: { capacity: { [map]: v } }, error: 'RangeError' as const, field: new RegExp(`capacity\\.${map}`), value: text,
      })),
    ),
    { what: 'capacity of an unknown map', options: { capacity: { lru: 5 } }, error: 'TypeError', field: /capacity: unknown option "lru"/ },
    { what: 'a misspelt capacity map', options: { capacity: { service: 5 } }, error: 'TypeError', field: /capacity: unknown option "service"; did you mean "services"\?/ },
    { what: 'a misspelt option', options: { capacty: { services: 5 } }, error: 'TypeError', field: /Dataplane options: unknown option "capacty"; did you mean "capacity"\?/ },
    { what: 'an option of another layer', options: { podCIDR: '10.0.0.0/8' }, error: 'TypeError', field: /Dataplane options: unknown option "podCIDR"/ },
    { what: 'conntrackFullPolicy', options: { conntrackFullPolicy: 'lru' }, error: 'TypeError', field: /conntrackFullPolicy/, value: '"lru"' },
    { what: 'affinityFullPolicy', options: { affinityFullPolicy: 'drop' }, error: 'TypeError', field: /affinityFullPolicy/, value: '"drop"' },
    ...([[16380, '16380'], [1, '1'], [4, '4'], [1.5, '1.5'], [1000033, '1000033'], ['16381', '16381'], [NaN, 'NaN']] as Array<[unknown, string]>).map(([v, text]) => ({
      what: `maglevTableSize ${text}`, options: { maglevTableSize: v }, error: 'RangeError' as const, field: /maglevTableSize/, value: text,
    })),
    ...([[-1, '-1'], [0, '0'], [NaN, 'NaN'], ['5', '5']] as Array<[unknown, string]>).map(([v, text]) => ({
      what: `timeouts.tcpSynSent ${text}`, options: { timeouts: { tcpSynSent: v } }, error: 'RangeError' as const, field: /timeouts\.tcpSynSent/, value: text,
    })),
    { what: 'an unknown timeout', options: { timeouts: { icmp: 5 } }, error: 'TypeError', field: /timeouts: unknown option "icmp"/ },
    { what: 'timeouts a string', options: { timeouts: 'bogus' }, error: 'TypeError', field: /timeouts must be an object/, value: 'bogus' },
    ...([[-1, '-1'], [1.5, '1.5'], [2n ** 64n, '18446744073709551616'], [-5n, '-5'], ['7', '7']] as Array<[unknown, string]>).flatMap(([v, text]) =>
      ['seed', 'rngSeed', 'maglevSeed'].map((field) => ({ what: `${field} ${text}`, options: { [field]: v }, error: 'RangeError' as const, field: new RegExp(`^${field} `), value: text })),
    ),
  ]
  for (const c of ctor) {
    let caught: unknown
    try {
      new Dataplane(c.options as DataplaneOptions)
    } catch (e) {
      caught = e
    }
    if (!(caught instanceof Error)) {
      t.fail(`${c.what}: did not throw`)
      continue
    }
    t.equal(caught.name, c.error, `${c.what}: ${c.error} (${caught.message})`)
    t.match(caught.message, c.field, `${c.what}: names the field`)
    if (c.value !== undefined)
      t.ok(caught.message.includes(c.value), `${c.what}: shows the value ${c.value}`)
  }
  // The limits themselves are accepted.
  const ok = new Dataplane({ seed: 2n ** 64n - 1n, rngSeed: 0, maglevSeed: 0n, maglevTableSize: 7, capacity: { services: 1, frontends: 1, backends: 1, conntrack: 1, affinity: 1 }, timeouts: { udp: 1e9, tcpClose: 0.001 } })
  t.strictSame(ok.maps().map((m) => m.capacity), [1, 1, 1, 1, 1, 1])
  t.strictSame([ok.getTimeouts().udp, ok.getTimeouts().tcpClose], [1e9, 0.001])
})
