export interface SecurityHeaderOptions {
  enableHsts: boolean
  hstsMaxAge: number
  enableCsp: boolean
  /** Origins a dashboard page may fetch from or open WebSockets to (API, streamer). */
  connectSources: readonly string[]
  /** JSON APIs add `Cache-Control: no-store`: responses may carry monitoring data or secrets. */
  noStore: boolean
}

/**
 * The headers every HTTPS response carries. The CSP allows scripts and styles from the
 * server itself only (no inline code, no eval, no CDN), unlike the original's
 * `'unsafe-inline' 'unsafe-eval' https://cdn.jsdelivr.net`. HSTS is only ever sent over
 * HTTPS: the plain-HTTP port never calls this (RFC 6797 §7.2).
 */
export function buildSecurityHeaders(options: SecurityHeaderOptions): Record<string, string> {
  const headers: Record<string, string> = {
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'permissions-policy': 'geolocation=(), microphone=(), camera=(), payment=(), usb=(), magnetometer=(), gyroscope=()',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-site',
  }
  if (options.enableHsts) headers['strict-transport-security'] = `max-age=${options.hstsMaxAge}; includeSubDomains`
  if (options.enableCsp) {
    headers['content-security-policy'] = [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      `connect-src 'self' ${options.connectSources.join(' ')}`.trim(),
      "object-src 'none'",
      "base-uri 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; ')
  }

  if (options.noStore) headers['cache-control'] = 'no-store'
  return headers
}
