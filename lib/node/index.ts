// svcplane's node side: applying a Proxier's mode to the Linux node it runs on.
export { NodeApplier, APPLIABLE_MODES, type AppliableMode, type AppliedInfo, type NodeApplierOptions, type NodeStopOptions, type NodeStopReport } from './node-applier.js'
export { cleanupNode, type CleanupOptions, type CleanupReport } from './cleanup.js'
export { IPTABLES_BACKENDS, type IptablesBackend, type IptablesFeatures } from './iptables-node.js'
export { NativeNode, cleanupNativeNode, DEFAULT_STATE_FILE, type NativeLeftovers, type NativeNodeOptions, type TakeoverInfo } from './native-node.js'
export { TunDevice, type TunStats } from './tun.js'
export { TunPump, type TunPumpOptions, type TunPumpStats } from './tun-pump.js'
