import {ServerResponse, validateHeaderName, validateHeaderValue} from 'node:http'

/**
 * Response headers serialized once (`name: value\r\n` lines), validated when built rather than
 * on every response. `names` are the lowercase names the block sets.
 */
export interface HeaderBlock {
  readonly text: string
  readonly names: ReadonlySet<string>
  readonly headers: Readonly<Record<string, string>>
}

export function buildHeaderBlock(headers: Record<string, string>): HeaderBlock {
  for (const [name, value] of Object.entries(headers)) {
    validateHeaderName(name)
    validateHeaderValue(name, value)
  }

  const frozen = Object.freeze({...headers})
  return Object.freeze({text: serialize(frozen, new Set()), names: new Set(Object.keys(frozen).map((name) => name.toLowerCase())), headers: frozen})
}

function serialize(headers: Readonly<Record<string, string>>, skip: ReadonlySet<string>): string {
  let text = ''
  for (const [name, value] of Object.entries(headers)) if (!skip.has(name.toLowerCase())) text += `${name}: ${value}\r\n`
  return text
}

/** The block's names that a response sets itself (its own value wins, as with reply.header()). */
function overridden(headers: unknown, names: ReadonlySet<string>): Set<string> | undefined {
  if (headers === null || typeof headers !== 'object') return undefined
  let found: Set<string> | undefined
  const check = (name: unknown) => {
    if (typeof name !== 'string') return
    const lower = name.toLowerCase()
    if (names.has(lower)) (found ??= new Set()).add(lower)
  }

  if (Array.isArray(headers)) {
    // writeHead accepts [[name, value], ...] and [name, value, name, value, ...].
    if (Array.isArray(headers[0])) for (const entry of headers) check((entry as unknown[])[0])
    else for (let i = 0; i < headers.length; i += 2) check(headers[i])
  } else {
    for (const name in headers) check(name)
  }

  return found
}

type StoreHeader = (this: ServerResponse, firstLine: string, headers: unknown) => void
const storeHeader = (ServerResponse.prototype as unknown as {_storeHeader?: StoreHeader})._storeHeader

/**
 * Whether this Node has the hook the block needs. `_storeHeader(statusLine, headers)` is where
 * every ServerResponse (writeHead, implicit headers, fastify, @fastify/static) turns its headers
 * into text; it is internal but unchanged since Node 0.x. Without it callers set headers per
 * response instead (slower, same bytes).
 */
export const CAN_PREPEND_HEADERS = typeof storeHeader === 'function'

/**
 * A ServerResponse class (for `https.createServer({ServerResponse})`) that puts `block()`'s
 * text right after the status line of every response. A header the response sets itself
 * replaces the block's (one header, never two). Profiling `GET /health` showed that setting
 * the ten security headers per request through fastify cost about as much as the route.
 */
export function responseClassWithHeaders(block: () => HeaderBlock): typeof ServerResponse {
  if (!storeHeader) throw new Error('This Node.js has no ServerResponse.prototype._storeHeader; check CAN_PREPEND_HEADERS first')
  class HeaderBlockResponse extends ServerResponse {
    _storeHeader(firstLine: string, headers: unknown): void {
      const current = block()
      const skip = overridden(headers, current.names)
      storeHeader!.call(this, firstLine + (skip ? serialize(current.headers, skip) : current.text), headers)
    }
  }

  return HeaderBlockResponse as typeof ServerResponse
}
