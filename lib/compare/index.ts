export { compareModes, type CompareOptions, type ModeComparison, type ModeDifference, type ModeAnswer } from './compare.js'
export { probesFor, PROBE_CLASSES, type Probe, type ProbeClass } from './probes.js'
export { formatComparison } from './format.js'
