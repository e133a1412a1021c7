// Shared pieces of the hostile-input properties: what counts as a typed error, small address
// pools (so that random objects meet: a Service's cluster IP is a packet's destination, an
// endpoint is a backend), arbitraries for "almost valid" Kubernetes objects, and a tally of
// every input tried.
import fc from 'fast-check'
import { CaptureError, IptablesParseError, SvcplaneError } from '../../../lib/index.js'

/** Messages of JavaScript's own errors: a bug escaping as a TypeError/RangeError. */
const INTERNAL = /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not a constructor|Cannot convert|Cannot destructure|Cannot mix BigInt|undefined is not|null is not|Maximum call stack|Invalid array length|Invalid typed array length|Offset is outside the bounds|out of memory|Do not know how to serialize/i

/**
 * Throws unless e is one of the library's typed errors: TypeError / RangeError naming a field,
 * IptablesParseError (with its line), CaptureError, or the SvcplaneError the API documents for a
 * backend still in use (IN_USE) / a frontend owned by another service (CONFLICT). JavaScript's own TypeErrors
 * ("Cannot read properties of undefined", ...) are bugs and fail the property.
 */
export function expectTyped(e: unknown, where: string): void {
  if (!(e instanceof Error)) throw new Error(`${where}: threw a non-Error: ${String(e)}`)
  if (INTERNAL.test(e.message)) throw new Error(`${where}: an internal error escaped: ${e.name}: ${e.message}\n${e.stack}`)
  if (e instanceof TypeError || e instanceof RangeError || e instanceof IptablesParseError || e instanceof CaptureError) return
  if (e instanceof SvcplaneError && (e.code === 'IN_USE' || e.code === 'CONFLICT')) return
  throw new Error(`${where}: untyped error ${e.name}: ${e.message}\n${e.stack}`)
}

/** Runs f; a typed error is an accepted outcome (returns false), anything else fails. */
export function attempt(where: string, f: () => unknown): boolean {
  try {
    f()
    return true
  } catch (e) {
    expectTyped(e, where)
    return false
  }
}

export const tally = {
  services: 0,
  endpointSlices: 0,
  lists: 0,
  tuples: 0,
  frames: 0,
  ruleTexts: 0,
  dataplaneCalls: 0,
  proxierCalls: 0,
  captures: 0,
}
export const tallyTotal = () => Object.values(tally).reduce((a, b) => a + b, 0)

/** Multiplies every run count (RELIABILITY_SCALE=10 for a longer local run). */
export const SCALE = Math.max(0.05, Number(process.env.RELIABILITY_SCALE ?? 1) || 1)
export const runs = (n: number) => Math.max(1, Math.round(n * SCALE))

export const CLUSTER_IPS = ['172.30.0.1', '172.30.0.2', '172.30.0.3', 'fd00:30::1']
export const ENDPOINT_IPS = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.2.1', 'fd00:10::1', 'fd00:10::2']
export const NODE_IP = '192.168.0.2'
export const CLIENT_IPS = ['10.0.0.9', '203.0.113.2', NODE_IP, '127.0.0.1', 'fd00:10::9', '2001:db8::7']
export const PORTS = [80, 443, 53, 8080, 30080, 9376]

/** Anything a JSON document (or a careless caller) can put in a field (BigInt aside). */
export const junk = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -5, max: 70000 }),
  fc.double(),
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.constant(''),
  fc.constant('None'),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.anything({ maxDepth: 1 }), { maxKeys: 2, noNullPrototype: true }),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
  fc.constant(Number.NaN),
  fc.constant(2 ** 53),
  // BigInts and prototype-less objects are not here: regressions.test.ts covers them for the
  // Dataplane and the evaluator; in the k8s loaders and the Proxier they still surface as
  // untyped errors in places (a known gap).
)

/** Usually a, sometimes junk. */
export function maybe<T>(a: fc.Arbitrary<T>, junkWeight = 1): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 12, arbitrary: a }, { weight: junkWeight, arbitrary: junk })
}

const ip = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...CLUSTER_IPS, ...ENDPOINT_IPS, NODE_IP) },
  { weight: 1, arbitrary: fc.ipV4() },
  { weight: 1, arbitrary: fc.ipV6() },
  { weight: 1, arbitrary: fc.constantFrom('10.0.0.256', '1.2.3', '::ffff:10.0.1.1', 'fe80::1%eth0', ' 10.0.1.1', '010.0.1.1', '1.2.3.4/32') },
)
const cidr = fc.oneof(
  fc.constantFrom('10.0.0.0/8', '203.0.113.0/25', '0.0.0.0/0', 'fd00::/8', ' 192.168.0.0/16 ', '10.0.0.0/33', '10.0.0.1', 'bogus/8'),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 40 })).map(([a, b]) => `${a}/${b}`),
)
const protocol = fc.constantFrom('TCP', 'UDP', 'SCTP', 'tcp', 'ICMP', '')

export const serviceArb = fc.record(
  {
    apiVersion: fc.constant('v1'),
    kind: maybe(fc.constant('Service')),
    metadata: maybe(
      fc.record(
        {
          namespace: maybe(fc.constantFrom('ns1', 'ns2')),
          name: maybe(fc.constantFrom('a', 'b', 'c', 'd')),
          annotations: maybe(fc.dictionary(fc.constantFrom('x', 'service.kubernetes.io/topology-mode'), fc.string({ maxLength: 6 }), { maxKeys: 2 })),
        },
        { requiredKeys: ['namespace', 'name'] },
      ),
    ),
    spec: maybe(
      fc.record(
        {
          type: maybe(fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', 'clusterip')),
          clusterIP: maybe(fc.oneof(fc.constantFrom(...CLUSTER_IPS, 'None', ''), ip)),
          clusterIPs: maybe(fc.array(fc.oneof(fc.constantFrom(...CLUSTER_IPS, 'None'), ip), { maxLength: 3 })),
          ipFamilies: maybe(fc.array(fc.constantFrom('IPv4', 'IPv6', 'IPv5'), { maxLength: 3 })),
          ports: maybe(
            fc.array(
              maybe(
                fc.record(
                  {
                    name: maybe(fc.constantFrom('', 'http', 'dns', 'p80')),
                    port: maybe(fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: -1, max: 70000 }))),
                    protocol: maybe(protocol),
                    nodePort: maybe(fc.oneof(fc.constantFrom(0, 30080, 30443), fc.integer({ min: -1, max: 70000 }))),
                    targetPort: maybe(fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.string({ maxLength: 5 }))),
                  },
                  { requiredKeys: ['port'] },
                ),
              ),
              { maxLength: 3 },
            ),
          ),
          externalIPs: maybe(fc.array(ip, { maxLength: 2 })),
          loadBalancerSourceRanges: maybe(fc.array(cidr, { maxLength: 2 })),
          sessionAffinity: maybe(fc.constantFrom('None', 'ClientIP', 'clientip')),
          sessionAffinityConfig: maybe(fc.record({ clientIP: maybe(fc.record({ timeoutSeconds: maybe(fc.integer({ min: -1, max: 100000 })) })) })),
          externalTrafficPolicy: maybe(fc.constantFrom('Cluster', 'Local', 'local')),
          internalTrafficPolicy: maybe(fc.constantFrom('Cluster', 'Local')),
          healthCheckNodePort: maybe(fc.integer({ min: -1, max: 70000 })),
        },
        { requiredKeys: [] },
      ),
    ),
    status: maybe(fc.record({ loadBalancer: maybe(fc.record({ ingress: maybe(fc.array(maybe(fc.record({ ip: maybe(ip), ipMode: maybe(fc.constantFrom('VIP', 'Proxy', 'x')) })), { maxLength: 2 })) })) })),
  },
  { requiredKeys: ['metadata', 'spec'] },
)

export const sliceArb = fc.record(
  {
    apiVersion: fc.constant('discovery.k8s.io/v1'),
    kind: maybe(fc.constant('EndpointSlice')),
    metadata: maybe(
      fc.record({
        namespace: maybe(fc.constantFrom('ns1', 'ns2')),
        name: maybe(fc.constantFrom('a-1', 'a-2', 'b-1', 'c-1', 'd-1')),
        labels: maybe(fc.record({ 'kubernetes.io/service-name': maybe(fc.constantFrom('a', 'b', 'c', 'd')) })),
      }),
    ),
    addressType: maybe(fc.constantFrom('IPv4', 'IPv6', 'FQDN', 'ipv4')),
    ports: maybe(
      fc.array(
        maybe(
          fc.record(
            {
              name: maybe(fc.constantFrom('', 'http', 'dns', 'p80')),
              port: maybe(fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: -1, max: 70000 }))),
              protocol: maybe(protocol),
            },
            { requiredKeys: [] },
          ),
        ),
        { maxLength: 3 },
      ),
    ),
    endpoints: maybe(
      fc.array(
        maybe(
          fc.record(
            {
              addresses: maybe(fc.array(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...ENDPOINT_IPS) }, { weight: 1, arbitrary: ip }), { maxLength: 2 })),
              conditions: maybe(fc.record({ ready: maybe(fc.boolean()), serving: maybe(fc.boolean()), terminating: maybe(fc.boolean()) }, { requiredKeys: [] })),
              nodeName: maybe(fc.constantFrom('test-node', 'node-b')),
              zone: maybe(fc.constantFrom('a', 'b')),
              hints: maybe(fc.record({ forZones: maybe(fc.array(maybe(fc.record({ name: maybe(fc.constantFrom('a', 'b')) })), { maxLength: 2 })) })),
            },
            { requiredKeys: ['addresses'] },
          ),
        ),
        { maxLength: 4 },
      ),
    ),
  },
  { requiredKeys: ['metadata', 'addressType'] },
)

export const routePacketArb = fc.record(
  {
    src: maybe(fc.constantFrom(...CLIENT_IPS, ...ENDPOINT_IPS), 1),
    sport: maybe(fc.integer({ min: 0, max: 65535 }), 1),
    dst: maybe(fc.constantFrom(...CLUSTER_IPS, NODE_IP, '127.0.0.1', ...ENDPOINT_IPS), 1),
    dport: maybe(fc.constantFrom(...PORTS), 1),
    protocol: maybe(fc.constantFrom('TCP', 'UDP', 'SCTP'), 1),
    hook: maybe(fc.constantFrom('prerouting', 'output'), 1),
    tcpFlags: maybe(fc.constantFrom(0x02, 0x10, 0x12, 0x11, 0x04), 1),
  },
  { requiredKeys: ['src', 'sport', 'dst', 'dport', 'protocol'] },
)
