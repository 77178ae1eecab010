/** Same-origin calls to the data routes; the session cookie authenticates, CSRF guards writes. */
export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message)
  }
}

let csrf: {header: string; token: string} | undefined

export function setCsrf(token: string | null, header = 'x-csrf-token'): void {
  csrf = token ? {header, token} : undefined
}

function describe(body: unknown, status: number): string {
  const detail = (body as {detail?: unknown; error?: {message?: string}} | null)
  if (typeof detail?.detail === 'string') return detail.detail
  if (Array.isArray(detail?.detail)) return detail.detail.map((d: {loc?: unknown[]; msg?: string}) => `${(d.loc ?? []).slice(1).join('.')}: ${d.msg}`).join('; ')
  if (detail?.error?.message) return detail.error.message
  return `HTTP ${status}`
}

export async function api<T>(path: string, init: {method?: string; body?: unknown} = {}): Promise<T> {
  const headers: Record<string, string> = {accept: 'application/json'}
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.method && init.method !== 'GET' && csrf) headers[csrf.header] = csrf.token
  const response = await fetch(path, {method: init.method ?? 'GET', headers, credentials: 'same-origin', body: init.body === undefined ? undefined : JSON.stringify(init.body)})
  if (response.status === 401) throw new Unauthorized('Not logged in')
  const text = await response.text()
  let body: unknown
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = text
  }

  if (!response.ok) throw new ApiError(describe(body, response.status), response.status)
  return body as T
}
