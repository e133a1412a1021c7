// Proxy modes live in their own layers and register themselves when loaded (lib/proxy's
// registerProxyMode). The native mode comes with lib/proxy; the iptables mode with
// lib/iptables once its renderer registers one. The CLI loads what is there and says clearly
// what is not.
import { proxyModeFactory } from '../proxy/proxy-mode.js'
import '../proxy/native-mode.js'

/** Modules that may register the iptables mode, tried in order (missing ones are skipped). */
const IPTABLES_MODE_MODULES = ['../iptables/iptables-mode.js', '../iptables/restore-writer.js', '../iptables/index.js', '../index.js']

let loaded = false

function isMissing(err: unknown, request: string): boolean {
  const e = err as NodeJS.ErrnoException
  if (e?.code !== 'MODULE_NOT_FOUND') return false
  const base = request.replace(/^\.\.\//, '').replace(/\.js$/, '')
  return typeof e.message === 'string' && e.message.includes(base)
}

function loadOptionalModes(): void {
  if (loaded) return
  loaded = true
  for (const request of IPTABLES_MODE_MODULES) {
    try {
      require(request)
    } catch (err) {
      if (!isMissing(err, request)) throw err
    }
  }
}

export function isModeAvailable(mode: 'native' | 'iptables'): boolean {
  loadOptionalModes()
  return proxyModeFactory(mode) !== undefined
}

export const IPTABLES_UNAVAILABLE = 'the iptables proxy mode is not available in this build (lib/iptables registers no proxy mode yet)'
