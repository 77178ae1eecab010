import type {IncomingMessage} from 'node:http'

/** Where the reverse proxy `mfc setup nginx` writes forwards WebSockets to the streamer. */
export const PROXY_STREAM_PATH = '/ws/'

/**
 * How a dashboard page learns where its live stream is, and why this way.
 *
 * Served directly, the page opens `wss://<its host>:<streamer port>/`. Served through the
 * reverse proxy that `mfc setup nginx` writes (only 443 open, `/ws/` forwarded to the
 * streamer), that port is unreachable: the page must use `wss://<public host>/ws/`. The server
 * decides which, per request, from headers it can trust: the connection comes from a
 * `trusted_proxies` address, which sent `X-Forwarded-Proto: https` and the host the browser
 * asked for (`X-Forwarded-Host`, else `Host`). The resulting origin is believed only if it is
 * one the browser is allowed to come from (the certificate's names or `dashboard_origins`,
 * where `mfc setup nginx` adds the proxy's), so a forged header can neither point the page
 * elsewhere nor widen its CSP; and the streamer's Origin check accepts exactly that origin.
 *
 * The server, not the page, decides because the page cannot tell a proxy from a direct
 * connection, and the CSP (sent with the page, before any script runs) must name the stream
 * origin the page will use: `connect-src 'self' wss://<public host>` behind the proxy, the
 * direct API and streamer origins otherwise. `/dashboard/info` returns the same decision as
 * `stream.url`, so header and page cannot disagree.
 *
 * @returns the public origin (`https://host[:port]`) of a proxied request, else undefined.
 */
export function proxiedOrigin(
  req: Pick<IncomingMessage, 'headers' | 'socket'>,
  isTrustedProxy: (ip: string | undefined) => boolean,
  isAllowedOrigin: (origin: string) => boolean,
): string | undefined {
  if (!isTrustedProxy(req.socket.remoteAddress)) return undefined
  if (first(req.headers['x-forwarded-proto'])?.toLowerCase() !== 'https') return undefined
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host
  if (!host || !/^[\w.-]+(:\d{1,5})?$|^\[[\da-f:.]+\](:\d{1,5})?$/i.test(host)) return undefined
  let origin: string
  try {
    origin = new URL(`https://${host}`).origin // lower-cases, drops :443
  } catch {
    return undefined
  }

  return isAllowedOrigin(origin) ? origin : undefined
}

/** The stream URL a page on `origin` (from proxiedOrigin) uses: the proxy's `/ws/`. */
export function proxiedStreamUrl(origin: string): string {
  return `wss://${origin.slice('https://'.length)}${PROXY_STREAM_PATH}`
}

/** The first value of a header a proxy may have appended to (`a, b`). */
function first(value: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(value) ? value[0] : value
  const head = raw?.split(',')[0].trim()
  return head || undefined
}
