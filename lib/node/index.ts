// svcplane's node side: applying a Proxier's mode to the Linux node it runs on.
export { NodeApplier, APPLIABLE_MODES, type AppliableMode, type AppliedInfo, type NodeApplierOptions } from './node-applier.js'
export { cleanupNode, type CleanupReport } from './cleanup.js'
export { IPTABLES_BACKENDS, type IptablesBackend, type IptablesFeatures } from './iptables-node.js'
export { NativeNode, cleanupNativeNode, type NativeNodeOptions } from './native-node.js'
export { TunDevice, type TunStats } from './tun.js'
export { TunPump, type TunPumpOptions, type TunPumpStats } from './tun-pump.js'
