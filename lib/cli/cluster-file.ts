// Reads the cluster dumps of offline commands: `kubectl get services,endpointslices -A -o json`
// (or -o yaml, `kubectl get svc,endpoints`, several YAML documents, a List, an array or single
// objects), from files or "-" for stdin, several files merged into one cluster (a Services file
// and a separately fetched slices file). Every input is size-limited and read in chunks, so a
// wrong path (/dev/zero, a FIFO) ends with an error naming the limit and --max-input-bytes, and
// SIGINT stops the read. Every error is one line naming the file.
import * as path from 'node:path'
import { isRecord } from '../k8s/fields.js'
import { requireKubernetesObjects, splitObjects, type LoadNotice, type SplitObjects } from '../k8s/load.js'
import { parseEndpointSlice } from '../k8s/endpointslice.js'
import { parseService } from '../k8s/service.js'
import { InputTooLargeError, readLimited } from '../util/read-limited.js'
import { loadYamlDocuments } from '../watch/client.js'
import type { OptionSpec } from './args.js'
import { CliError } from './errors.js'
import type { CliIO } from './io.js'

/** 256 MiB: a 100,000-Service cluster with its slices is well under it. */
export const DEFAULT_MAX_INPUT_BYTES = 256 * 1024 * 1024

export const MAX_INPUT_OPTION: OptionSpec = {
  name: 'max-input-bytes',
  type: 'bytes',
  valueName: 'SIZE',
  default: DEFAULT_MAX_INPUT_BYTES,
  description: 'refuse an input file larger than this (256Mi, 1Gi, or bytes)',
}

export interface ClusterDump {
  /** The files read, for messages ("a.json" or "a.json, b.yaml"). */
  file: string
  files: string[]
  /** The objects as read (checked: every one parses). */
  services: unknown[]
  /** The dump's EndpointSlices and those mirrored from its v1 Endpoints. */
  endpointSlices: unknown[]
  /** Items of other kinds. */
  skipped: number
  /** Every item of every file (Nodes and Pods too, for the doctor). */
  items: unknown[]
  notProxied: SplitObjects['notProxied']
  notices: LoadNotice[]
}

export interface ReadOptions {
  maxBytes?: number
}

/** One line of a message that may hold input bytes: no code frames, no control characters. */
export function oneLine(text: string, max = 160): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text
  // eslint-disable-next-line no-control-regex
  const clean = line.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '?').trim()
  return clean.length > max ? `${clean.slice(0, max)}...` : clean
}

/** Refuses binary data at once (/dev/zero, a capture file passed as --cluster). */
function refuseBinary(what: string) {
  return (start: Uint8Array) => {
    const nul = start.indexOf(0)
    if (nul !== -1) throw new CliError(`${what} is binary data, not JSON or YAML (a NUL byte at offset ${nul})`)
  }
}

/** The text of an input file ("-" is stdin), size-limited; errors are CliErrors naming it. */
export async function readInputText(file: string, io: CliIO, what: string, options: ReadOptions = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_INPUT_BYTES
  const label = `${what} ${file === '-' ? '- (stdin)' : file}`
  let source: string | AsyncIterable<Uint8Array | string>
  if (file === '-') {
    if (io.stdin === undefined) throw new CliError(`cannot read ${label}: no standard input`)
    source = io.stdin
  } else source = path.resolve(io.cwd, file)
  try {
    const bytes = await readLimited(source, { maxBytes, what: label, checkStart: refuseBinary(label), signal: io.signal })
    return bytes.toString('utf8')
  } catch (err) {
    if (err instanceof CliError) throw err
    if (err instanceof InputTooLargeError) throw new CliError(`${err.message}; --max-input-bytes raises it`)
    if (io.signal.aborted) throw new CliError(`reading ${label} was interrupted`)
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : oneLine(e.message)
    throw new CliError(`cannot read ${label}: ${why}`)
  }
}

function yamlProblem(err: unknown): string {
  const e = err as { reason?: unknown; mark?: { line?: number; column?: number }; message?: string }
  if (typeof e?.reason === 'string' && e.mark !== undefined) return `${oneLine(e.reason)} (line ${(e.mark.line ?? 0) + 1}, column ${(e.mark.column ?? 0) + 1})`
  return oneLine(e?.message ?? String(err))
}

function jsonProblem(err: unknown, text: string): string {
  const message = (err as Error).message ?? String(err)
  const at = /position (\d+)/.exec(message)
  const why = (/^(Unexpected (?:token|end of JSON input|non-whitespace character)|Expected [^,(]*|Bad control character[^,(]*)/.exec(message)?.[1] ?? 'syntax error').replace(/ in JSON.*$/, '')
  if (at === null) {
    // V8 quotes the input instead of giving a position: show only the character, as a code point.
    const ch = /^Unexpected token '(.)'/su.exec(message)?.[1]
    return ch === undefined ? why.replace(/ token$/, ' character') : `unexpected character U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}${/^[\x21-\x7e]$/.test(ch) ? ` (${ch})` : ''}`
  }
  const pos = Number(at[1])
  const before = text.slice(0, pos)
  const line = before.split('\n').length
  return `${why.replace(/ token$/, ' character')} at line ${line}, column ${pos - before.lastIndexOf('\n')}`
}

/** The YAML text without its empty or comment-only documents. */
function withoutEmptyDocuments(text: string): string {
  const docs = text.split(/^---[ \t]*(?:#.*)?$/m).filter((d) => d.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#')))
  return docs.join('\n---\n')
}

/** The documents of a JSON or YAML text, flattened to one list of items; text that holds no Kubernetes objects is refused. */
export async function parseClusterText(text: string, file: string, what = 'cluster file'): Promise<unknown[]> {
  const trimmed = text.trim()
  const label = `${what} ${file}`
  if (trimmed === '') throw new CliError(`${label} is empty`)
  let docs: unknown[]
  const looksJson = trimmed.startsWith('{') || trimmed.startsWith('[')
  if (looksJson && !/\.ya?ml$/i.test(file)) {
    try {
      docs = [JSON.parse(trimmed)]
    } catch (err) {
      throw new CliError(`${label} is not valid JSON: ${jsonProblem(err, trimmed)}`)
    }
  } else {
    try {
      docs = await loadYamlDocuments(text).catch((err: unknown) => {
        // client-node's loader trips over empty documents ("---" then nothing); syntax errors carry a mark.
        if ((err as { mark?: unknown }).mark !== undefined) throw err
        return loadYamlDocuments(withoutEmptyDocuments(text))
      })
    } catch (err) {
      throw new CliError(`${label} is not valid YAML: ${yamlProblem(err)}`)
    }
  }
  const present = docs.filter((d) => d !== null && d !== undefined)
  if (present.length === 0) throw new CliError(`${label} holds no Kubernetes objects: found only comments or empty documents`)
  const items: unknown[] = []
  for (const doc of present) {
    try {
      requireKubernetesObjects(doc, label)
    } catch (err) {
      throw new CliError((err as Error).message)
    }
    if (Array.isArray(doc)) items.push(...doc)
    else if (isRecord(doc) && Array.isArray(doc.items)) {
      // Typed lists (ServiceList) leave out each item's kind; put it back so the loader knows.
      const itemKind = typeof doc.kind === 'string' && doc.kind.endsWith('List') && doc.kind !== 'List' ? doc.kind.slice(0, -4) : undefined
      for (const item of doc.items) items.push(itemKind && isRecord(item) && !('kind' in item) ? { kind: itemKind, ...item } : item)
    } else items.push(doc)
  }
  return items
}

function identity(item: unknown): string | undefined {
  if (!isRecord(item) || typeof item.kind !== 'string' || !isRecord(item.metadata)) return undefined
  const { namespace, name } = item.metadata
  return typeof name === 'string' ? `${item.kind} ${typeof namespace === 'string' ? `${namespace}/` : ''}${name}` : undefined
}

/** The items of several files as one cluster; an object in two files (or twice in one) is refused. */
export async function readClusterItems(files: readonly string[], io: CliIO, options: ReadOptions = {}, what = 'cluster file'): Promise<unknown[]> {
  const twice = files.find((f, i) => files.indexOf(f) !== i)
  if (twice !== undefined) throw new CliError(twice === '-' ? 'stdin ("-") can be read once: give it to one --cluster only' : `${what} ${twice} is given twice`)
  const where = new Map<string, string>()
  const all: unknown[] = []
  for (const file of files) {
    const items = await parseClusterText(await readInputText(file, io, what, options), file, what)
    for (const item of items) {
      const id = identity(item)
      if (id !== undefined) {
        const first = where.get(id)
        if (first !== undefined) throw new CliError(first === file ? `${what} ${file} holds ${id} twice` : `${id} is in both ${first} and ${file}: merge them or give one`)
        where.set(id, file)
      }
      all.push(item)
    }
  }
  return all
}

/** Reads, merges and checks the cluster files: every Service and EndpointSlice (read or mirrored) must parse. */
export async function loadClusterFiles(files: readonly string[], io: CliIO, options: ReadOptions = {}): Promise<ClusterDump> {
  const items = await readClusterItems(files, io, options)
  const names = files.map((f) => (f === '-' ? '- (stdin)' : f)).join(', ')
  let split: SplitObjects
  try {
    split = splitObjects(items)
    split.services.forEach(parseService)
    split.endpointSlices.forEach(parseEndpointSlice)
  } catch (err) {
    throw new CliError(`${files.length > 1 ? 'cluster files' : 'cluster file'} ${names} ${files.length > 1 ? 'hold' : 'holds'} an invalid object`, { cause: err })
  }
  return { file: names, files: [...files], services: split.services, endpointSlices: split.endpointSlices, skipped: split.skipped, items, notProxied: split.notProxied, notices: split.notices }
}

/** The notices of a load, summarised for stderr: one line per kind of thing done. */
export function noticeLines(notices: readonly LoadNotice[]): string[] {
  const lines: string[] = []
  const mirrored = notices.filter((n) => n.code === 'mirrored-endpoints')
  if (mirrored.length > 0) {
    const names = mirrored.slice(0, 5).map((n) => n.key).join(', ') + (mirrored.length > 5 ? `, and ${mirrored.length - 5} more` : '')
    lines.push(`read ${mirrored.length} v1 Endpoints as EndpointSlices, as the EndpointSlice mirroring controller writes them (the input has no EndpointSlices for these Services): ${names}`)
    for (const n of mirrored) if (/left out/.test(n.message)) lines.push(n.message)
  }
  for (const n of notices) if (n.code !== 'mirrored-endpoints') lines.push(n.code === 'not-proxied' ? `skipping ${n.message}` : n.message)
  return lines
}

export function printNotices(io: CliIO, command: string, notices: readonly LoadNotice[]): void {
  for (const line of noticeLines(notices)) io.stderr.write(`svcplane ${command}: note: ${line}\n`)
}
