// Small readers for optional fields of plain JSON objects, throwing errors that name the field.
import { invalidField, outOfRange } from './invalid.js'
import { canonicalAddress, parseCidr } from '../util/address.js'
import type { IPFamily, K8sProtocol } from './types.js'

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function optionalString(obj: string, field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw invalidField(obj, field, 'a string', v)
  return v
}

export function requiredString(obj: string, field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalidField(obj, field, 'a non-empty string', v)
  return v
}

export function optionalBoolean(obj: string, field: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'boolean') throw invalidField(obj, field, 'a boolean', v)
  return v
}

/** An integer in [min, max]; `undefined`/`null` give `fallback`. */
export function integerIn(
  obj: string,
  field: string,
  v: unknown,
  min: number,
  max: number,
  fallback?: number,
): number {
  if ((v === undefined || v === null) && fallback !== undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidField(obj, field, `an integer ${min}..${max}`, v)
  if (v < min || v > max) throw outOfRange(obj, field, `an integer ${min}..${max}`, v)
  return v
}

export function optionalArray(obj: string, field: string, v: unknown): unknown[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw invalidField(obj, field, 'an array', v)
  return v
}

export function oneOf<T extends string>(obj: string, field: string, v: unknown, allowed: readonly T[], fallback: T): T {
  if (v === undefined || v === null || v === '') return fallback
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalidField(obj, field, `one of ${allowed.join(', ')}`, v)
  }
  return v as T
}

export const PROTOCOLS: readonly K8sProtocol[] = ['TCP', 'UDP', 'SCTP']

export function protocol(obj: string, field: string, v: unknown): K8sProtocol {
  return oneOf(obj, field, v, PROTOCOLS, 'TCP')
}

/** Canonical text and family of an IP address field. */
export function ipAddress(obj: string, field: string, v: unknown): { ip: string; family: IPFamily } {
  if (typeof v !== 'string') throw invalidField(obj, field, 'an IP address', v)
  const ip = canonicalAddress(v)
  if (ip === undefined) throw invalidField(obj, field, 'an IP address', v)
  return { ip, family: ip.includes(':') ? 'IPv6' : 'IPv4' }
}

/** Canonical "addr/len" of a CIDR field; surrounding whitespace is tolerated as kube-proxy does. */
export function cidr(obj: string, field: string, v: unknown): { cidr: string; family: IPFamily } {
  if (typeof v !== 'string') throw invalidField(obj, field, 'a CIDR', v)
  const parsed = v.trim().includes('/') ? parseCidr(v.trim()) : undefined
  if (parsed === undefined) throw invalidField(obj, field, 'a CIDR', v)
  return { cidr: parsed.text, family: parsed.family === 4 ? 'IPv4' : 'IPv6' }
}
