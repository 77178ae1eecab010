import {type TLSSocket, rootCertificates} from 'node:tls'

/** What one probe saw. `ok` means the expected answer: HTTP 2xx, or a completed WSS handshake. */
export interface ProbeResult {
  ok: boolean
  status: number | null
  latencyMs: number
  error: string | null
  /** Parsed JSON body, when there was one. */
  body: unknown
}

export interface ProbeOptions {
  /** Extra CA certificates (PEM) trusted on top of the system roots (the local CA). */
  ca?: string | null
  /** TLS name to verify when the URL's host is an address (127.0.0.1 for a certificate for localhost). */
  servername?: string
  headers?: Record<string, string>
  timeoutMs?: number
  /**
   * Liveness instead of trust: accept exactly the leaf certificate with this SHA-256
   * fingerprint (X509Certificate.fingerprint256), whoever issued it, and nothing else. For
   * probing the certificate serve itself loaded (Pebble, LE staging, a private CA) when this
   * machine does not trust its chain; trust is checked and reported separately.
   */
  pin?: string
}

function describe(error: unknown): string {
  const cause = (error as {cause?: {code?: string; message?: string}}).cause
  if (cause?.code) return `${cause.code}: ${cause.message}`
  return (error as Error | undefined)?.message || 'no answer'
}

/**
 * The only importer of undici: outbound HTTPS and WSS for probes (`status`, `serve --daemon`)
 * and webhook notifications. Certificates are verified against the system roots plus `ca`
 * (NODE_EXTRA_CA_CERTS too when no `ca` is given), or, with `pin`, compared byte for byte
 * with the one certificate expected (the chain is then not judged: a pin is stricter).
 */
async function dispatcherFor(options: ProbeOptions) {
  const {Agent, buildConnector} = await import('undici')
  const tls = {ca: options.ca ? [...rootCertificates, options.ca] : undefined, servername: options.servername, timeout: options.timeoutMs ?? 5000}
  const timeouts = {headersTimeout: options.timeoutMs ?? 5000, bodyTimeout: options.timeoutMs ?? 5000}
  const {pin} = options
  if (!pin) return new Agent({connect: tls, ...timeouts})
  const connect = buildConnector({...tls, rejectUnauthorized: false})
  return new Agent({
    ...timeouts,
    connect(opts, callback) {
      connect(opts, (error, socket) => {
        if (error) return callback(error, null)
        const presented = (socket as TLSSocket).getPeerX509Certificate?.()?.fingerprint256
        if (presented === pin) return callback(null, socket)
        socket.destroy()
        callback(new Error(`the server presented a certificate other than the expected one (SHA-256 ${presented ?? 'none'})`), null)
      })
    },
  })
}

/** GET `url`; never throws (a refused connection or a bad certificate is a failed probe). */
export async function probeHttps(url: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const {request} = await import('undici')
  const dispatcher = await dispatcherFor(options)
  const started = performance.now()
  try {
    const response = await request(url, {dispatcher, headers: options.headers, signal: AbortSignal.timeout(options.timeoutMs ?? 5000)})
    const text = await response.body.text()
    let body: unknown = null
    try {
      body = JSON.parse(text)
    } catch {}

    const ok = response.statusCode >= 200 && response.statusCode < 300
    return {ok, status: response.statusCode, latencyMs: Math.round(performance.now() - started), error: ok ? null : `HTTP ${response.statusCode}`, body}
  } catch (error) {
    return {ok: false, status: null, latencyMs: Math.round(performance.now() - started), error: describe(error), body: null}
  } finally {
    await dispatcher.close()
  }
}

/** Opens a WSS connection and closes it once the handshake completes. */
export async function probeWss(url: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const {WebSocket} = await import('undici')
  const dispatcher = await dispatcherFor(options)
  const started = performance.now()
  try {
    return await new Promise<ProbeResult>((resolve) => {
      const ws = new WebSocket(url, {dispatcher, headers: options.headers} as never)
      const finish = (result: Omit<ProbeResult, 'latencyMs' | 'body'>) => {
        clearTimeout(timer)
        resolve({...result, latencyMs: Math.round(performance.now() - started), body: null})
      }

      const timer = setTimeout(() => {
        ws.close()
        finish({ok: false, status: null, error: 'timed out'})
      }, options.timeoutMs ?? 5000)
      ws.addEventListener('open', () => {
        ws.close(1000)
        finish({ok: true, status: 101, error: null})
      })
      // undici reports a refused or rejected handshake without details; say what was tried.
      ws.addEventListener('error', (event) => finish({ok: false, status: null, error: `WSS handshake failed (${describe((event as {error?: unknown}).error)})`}))
    })
  } finally {
    await dispatcher.close().catch(() => {})
  }
}

export interface PostResult {
  status: number
}

/**
 * POSTs a JSON body and drains the answer; rejects with an Error saying what went wrong (no
 * connection, a certificate problem, no answer within `timeoutMs`). Any HTTP status resolves:
 * the caller decides what counts as success. Redirects are not followed.
 */
export async function postJson(url: string, body: unknown, options: ProbeOptions = {}): Promise<PostResult> {
  const {request} = await import('undici')
  const timeoutMs = options.timeoutMs ?? 10_000
  const dispatcher = await dispatcherFor({...options, timeoutMs})
  try {
    const response = await request(url, {
      method: 'POST', dispatcher, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
      headers: {'content-type': 'application/json', ...options.headers},
    })
    await response.body.dump()
    return {status: response.statusCode}
  } catch (error) {
    const name = (error as Error).name
    throw new Error(name === 'TimeoutError' || name === 'AbortError' ? `no answer in ${timeoutMs / 1000} s` : describe(error), {cause: error})
  } finally {
    await dispatcher.close().catch(() => {})
  }
}

/** One HTTP exchange as `httpRequest` returns it: status, lower-case headers, body text. */
export interface HttpExchange {
  status: number
  headers: Record<string, string | undefined>
  body: string
}

/**
 * One request (any method) with the body read as text; rejects with an Error saying what went
 * wrong (no connection, a certificate problem, no answer within `timeoutMs`). Any HTTP status
 * resolves. Trust as for probes: system roots plus NODE_EXTRA_CA_CERTS, or `ca` on top.
 */
export async function httpRequest(url: string, init: {method: string; body?: string; headers?: Record<string, string>} & ProbeOptions): Promise<HttpExchange> {
  const {request} = await import('undici')
  const timeoutMs = init.timeoutMs ?? 15_000
  const dispatcher = await dispatcherFor({...init, timeoutMs})
  try {
    const response = await request(url, {method: init.method as 'GET', dispatcher, body: init.body, headers: init.headers, signal: AbortSignal.timeout(timeoutMs)})
    const headers: Record<string, string | undefined> = {}
    for (const [name, value] of Object.entries(response.headers)) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
    return {status: response.statusCode, headers, body: await response.body.text()}
  } catch (error) {
    const name = (error as Error).name
    throw new Error(name === 'TimeoutError' || name === 'AbortError' ? `no answer in ${timeoutMs / 1000} s` : describe(error), {cause: error})
  } finally {
    await dispatcher.close().catch(() => {})
  }
}
