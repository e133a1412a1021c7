// Reads a cluster dump for offline commands: `kubectl get services,endpointslices -A -o json`
// (or -o yaml, several YAML documents, a List, an array or single objects), from a file or
// "-" for stdin, and checks every Service and EndpointSlice in it.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseObjects, splitObjects } from '../k8s/load.js'
import { loadYamlDocuments } from '../watch/client.js'
import { CliError } from './errors.js'

export interface ClusterDump {
  file: string
  /** The objects as read (checked: every one parses). */
  services: unknown[]
  endpointSlices: unknown[]
  /** Items of other kinds. */
  skipped: number
}

function readInput(file: string, cwd: string): string {
  try {
    return file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(path.resolve(cwd, file), 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message
    throw new CliError(`cannot read cluster file ${file}: ${why}`)
  }
}

/** The documents of a JSON or YAML text, flattened to one list of items. */
export async function parseClusterText(text: string, file: string): Promise<unknown[]> {
  const trimmed = text.trim()
  if (trimmed === '') throw new CliError(`cluster file ${file} is empty`)
  let docs: unknown[]
  const looksJson = trimmed.startsWith('{') || trimmed.startsWith('[')
  try {
    docs = looksJson && !/\.ya?ml$/i.test(file) ? [JSON.parse(trimmed)] : await loadYamlDocuments(text)
  } catch (err) {
    const kind = looksJson ? 'JSON' : 'YAML'
    throw new CliError(`cluster file ${file} is not valid ${kind}`, { cause: err })
  }
  const items: unknown[] = []
  for (const doc of docs) {
    if (doc === null || doc === undefined) continue
    if (Array.isArray(doc)) items.push(...doc)
    else if (typeof doc === 'object' && Array.isArray((doc as { items?: unknown }).items)) {
      const list = doc as { kind?: string; items: unknown[] }
      // Typed lists (ServiceList) leave out each item's kind; put it back so the loader knows.
      const itemKind = typeof list.kind === 'string' && list.kind.endsWith('List') && list.kind !== 'List' ? list.kind.slice(0, -4) : undefined
      for (const item of list.items) {
        items.push(itemKind && item && typeof item === 'object' && !('kind' in item) ? { kind: itemKind, ...item } : item)
      }
    } else items.push(doc)
  }
  return items
}

export async function loadClusterFile(file: string, cwd: string): Promise<ClusterDump> {
  const items = await parseClusterText(readInput(file, cwd), file)
  try {
    parseObjects(items)
  } catch (err) {
    throw new CliError(`cluster file ${file} holds an invalid object`, { cause: err })
  }
  const split = splitObjects(items)
  return { file, services: split.services, endpointSlices: split.endpointSlices, skipped: split.skipped }
}
