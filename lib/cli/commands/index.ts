// Every built-in command. To add one: write lib/cli/commands/NAME.ts exporting a Command and
// register it here.
import { registerCommand } from '../registry.js'
import { benchCommand } from './bench.js'
import { compareCommand } from './compare.js'
import { doctorCommand } from './doctor.js'
import { dumpCommand } from './dump.js'
import { explainCommand } from './explain.js'
import { pcapCommand } from './pcap.js'
import { proxyCommand } from './proxy.js'
import { runCommand } from './run.js'

for (const c of [runCommand, dumpCommand, explainCommand, pcapCommand, proxyCommand, benchCommand, doctorCommand, compareCommand]) registerCommand(c)
