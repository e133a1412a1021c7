// svcplane's node side: applying a Proxier's mode to the Linux node it runs on.
export { NodeApplier, APPLIABLE_MODES, type AppliableMode, type AppliedInfo, type NodeApplierOptions } from './node-applier.js'
export { cleanupNode, type CleanupReport } from './cleanup.js'
export { IPTABLES_BACKENDS, type IptablesBackend, type IptablesFeatures } from './iptables-node.js'
