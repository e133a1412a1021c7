// The shared argument parser: forms, types, defaults and usage errors.
import t from 'tap'
import { parseArgs, parseDuration, suggest, type OptionSpec } from '../../lib/cli/args.js'
import { describeError, UsageError, CliError } from '../../lib/cli/errors.js'

const specs: OptionSpec[] = [
  { name: 'node-ip', type: 'list', description: '' },
  { name: 'mode', type: 'string', choices: ['native', 'iptables'], default: 'native', description: '' },
  { name: 'sync-period', type: 'duration', default: 30, description: '' },
  { name: 'json', type: 'boolean', description: '' },
  { name: 'seed', type: 'integer', description: '' },
  { name: 'format', short: 'f', type: 'string', description: '' },
]

t.test('forms and types', async (t) => {
  const a = parseArgs(['--node-ip', '1.1.1.1,2.2.2.2', '--node-ip=3.3.3.3', '--sync-period=1m30s', '--json', '-f', 'ipvsadm', 'pos', '--seed', '7', '--', '--not-an-option'], specs, 'x')
  t.same(a.values, { 'node-ip': ['1.1.1.1', '2.2.2.2', '3.3.3.3'], mode: 'native', 'sync-period': 90, json: true, format: 'ipvsadm', seed: 7 })
  t.same(a.positionals, ['pos', '--not-an-option'])
  t.same(parseArgs(['--no-json', '-fjson'], specs, 'x').values, { mode: 'native', 'sync-period': 30, json: false, format: 'json' })
})

t.test('durations', async (t) => {
  t.equal(parseDuration('1s'), 1)
  t.equal(parseDuration('500ms'), 0.5)
  t.equal(parseDuration('2h'), 7200)
  t.equal(parseDuration('15'), 15)
  t.throws(() => parseDuration('1x'), RangeError)
  t.throws(() => parseDuration(''), RangeError)
})

t.test('usage errors name the option', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--mode', 'ipvs'], /--mode: must be one of native, iptables, got "ipvs"/],
    [['--sync-periodd', '1s'], /unknown option --sync-periodd \(did you mean --sync-period\?\)/],
    [['--sync-period', 'soon'], /--sync-period: invalid duration "soon"/],
    [['--seed', '1.5'], /--seed: must be an integer/],
    [['--format'], /--format needs a value/],
    [['-z'], /unknown option -z/],
    [['--no-json=1'], /takes no value/],
  ]
  for (const [argv, re] of cases) {
    t.throws(() => parseArgs(argv, specs, 'x'), re, argv.join(' '))
    try {
      parseArgs(argv, specs, 'x')
    } catch (err) {
      t.type(err, UsageError)
    }
  }
  t.equal(suggest('dmup', ['dump', 'run', 'explain']), 'dump')
  t.equal(suggest('zzzzzz', ['dump', 'run']), undefined)
})

t.test('errors are described with their causes, once each', async (t) => {
  const inner = new TypeError('EndpointSlice ns/a: endpoints[0].addresses[0] must be an IP address, got "x"')
  t.equal(describeError(new CliError('cluster file c.json holds an invalid object', { cause: inner })), 'cluster file c.json holds an invalid object: EndpointSlice ns/a: endpoints[0].addresses[0] must be an IP address, got "x"')
  t.equal(describeError(Object.assign(new Error('Not Found'), { statusCode: 404 })), 'Not Found (HTTP 404)')
})
