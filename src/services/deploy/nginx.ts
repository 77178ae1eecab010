import {UsageError} from '../../lib/errors.js'
import {PROXY_STREAM_PATH} from '../servers/proxy.js'
import {type Upstream, address} from './upstreams.js'

export interface NginxOptions {
  /** server_name: every certificate name except IP addresses. */
  serverNames: string[]
  certFile: string
  keyFile: string
  /** Ports nginx listens on (80 and 443 in production). */
  listenHttp: number
  listenHttps: number
  /** The `mfc serve` nodes (one on loopback unless `--upstream` names several). */
  upstreams: Upstream[]
  /** The address the nodes see nginx connect from: their trusted_proxies entry. */
  proxyAddress: string
  /** The name mfc's certificate carries, checked when nginx connects to mfc. */
  upstreamName: string
  /** CA bundle that signed mfc's certificate (the local CA, or the system bundle for ACME). */
  upstreamCaFile: string
  /** ACME HTTP-01: a webroot directory, the nodes' own HTTP listeners to proxy to, or none (no ACME). */
  acme: {webroot: string} | 'proxy' | null
  hsts: {maxAge: number} | null
}

/** Mozilla intermediate (guidelines 6.0); the guide's list names suites that do not exist (…-SHA512). */
export const MOZILLA_INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

const PROXY_HEADERS = [
  'proxy_set_header Host $host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  // $host has no port: serve needs the browser's host:port to point the dashboard's stream at
  // this proxy's /ws/ and to name it in the page's CSP (src/services/servers/proxy.ts).
  'proxy_set_header X-Forwarded-Host $http_host;',
]

function upstreamTls(options: NginxOptions): string[] {
  // nginx does not verify upstream certificates unless told to; mfc's are verifiable, so do it.
  return [
    'proxy_ssl_server_name on;',
    `proxy_ssl_name ${options.upstreamName};`,
    'proxy_ssl_verify on;',
    `proxy_ssl_trusted_certificate ${quote(options.upstreamCaFile)};`,
    'proxy_ssl_protocols TLSv1.2 TLSv1.3;',
  ]
}

/**
 * nginx OSS has no active health checks (that is nginx Plus's `health_check`): a node is taken
 * out passively, after `max_fails` failed attempts within `fail_timeout`, for `fail_timeout`;
 * the request that failed is retried on the next node (proxy_next_upstream), so a killed node
 * costs a client nothing but the connect attempt. POST is not retried (nginx never retries a
 * non-idempotent request once sent): a reading may have been stored by the node that failed.
 */
const FAILOVER = [
  'proxy_next_upstream error timeout http_502 http_503;',
  'proxy_next_upstream_tries 3;',
  // A node that vanished (no RST) must not hold a request for the default 60 s.
  'proxy_connect_timeout 3s;',
]

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.')

/** One upstream group per service; least_conn for the stream, whose connections live for hours. */
function upstreamBlocks(options: NginxOptions): string[] {
  const group = (name: string, port: (u: Upstream) => number, extra: string[] = []) => [
    ...block(`upstream ${name}`, [
      ...extra,
      ...options.upstreams.map((u) => `server ${address(u.host, port(u))} max_fails=2 fail_timeout=10s;`),
    ], ''),
    '',
  ]
  return [
    ...group('mfc_api', (u) => u.api),
    ...group('mfc_dashboard', (u) => u.dashboard),
    ...group('mfc_stream', (u) => u.streamer, ['least_conn;']),
    ...(options.acme === 'proxy' ? group('mfc_acme', (u) => u.http) : []),
  ]
}

function quote(path: string): string {
  return /^[\w./@+-]+$/.test(path) ? path : `"${path.replaceAll('"', '\\"')}"`
}

function block(header: string, lines: string[], indent = '    '): string[] {
  return [`${indent}${header} {`, ...lines.map((l) => (l === '' ? '' : `${indent}    ${l}`)), `${indent}}`]
}

function acmeLocation(options: NginxOptions): string[] {
  if (options.acme === null) return ['    # No ACME challenge location: the certificate does not come from an ACME CA.', '']
  const body = options.acme === 'proxy'
    ? ['proxy_pass http://mfc_acme;', 'proxy_set_header Host $host;']
    : [`root ${quote(options.acme.webroot)};`, 'default_type text/plain;', 'try_files $uri =404;']
  return [...block('location ^~ /.well-known/acme-challenge/', body), '']
}

/** The origins browsers see behind nginx (what the dashboard's WebSocket sends as Origin). */
export function nginxPublicOrigins(options: Pick<NginxOptions, 'serverNames' | 'listenHttps'>): string[] {
  const port = options.listenHttps === 443 ? '' : `:${options.listenHttps}`
  return options.serverNames.filter((name) => name !== '_').map((name) => `https://${name}${port}`)
}

/**
 * What `mfc serve` must be told about this proxy (ssl-config.json): believe its
 * X-Forwarded-For, or every client would share the proxy's address and rate limit; and accept
 * browsers on the proxy's origin, or the streamer refuses their WebSocket upgrade (403).
 */
export function nginxServeSettings(options: NginxOptions): {trusted_proxies: string[]; dashboard_origins: string[]} {
  return {trusted_proxies: [options.proxyAddress], dashboard_origins: nginxPublicOrigins(options)}
}

function redirectTarget(options: NginxOptions): string {
  return options.listenHttps === 443 ? 'https://$host$request_uri' : `https://$host:${options.listenHttps}$request_uri`
}

/**
 * The guide's reverse-proxy configuration, filled from the mfc config: an HTTP server that
 * answers ACME challenges and redirects the rest to HTTPS, and an HTTPS server in front of
 * the API (/api/), the dashboard (/) and the WSS streamer (/ws/). The guide's headers are
 * kept except X-XSS-Protection: browsers removed the XSS auditor it controlled, and where it
 * still exists it can be abused to leak page contents (OWASP and MDN advise against sending it).
 * The security headers mfc itself sends are hidden from the upstream answers so each header
 * appears once.
 */
export function nginxSite(options: NginxOptions): string {
  if (options.acme === 'proxy' && options.upstreams.some((u) => isLoopback(u.host) && u.http === options.listenHttp)) {
    throw new UsageError(`nginx would listen on port ${options.listenHttp} and proxy ACME challenges to mfc on the same port.`, {
      code: 'MFC_USAGE',
      suggestions: ['Set "http_port" in ssl-config.json to another port (e.g. 8080) so mfc answers challenges behind nginx, or set "webroot".'],
    })
  }

  const names = options.serverNames.join(' ')
  const headers = [
    ...(options.hsts ? [`add_header Strict-Transport-Security "max-age=${options.hsts.maxAge}; includeSubDomains" always;`] : []),
    'add_header X-Content-Type-Options nosniff always;',
    'add_header X-Frame-Options DENY always;',
    'add_header Referrer-Policy strict-origin-when-cross-origin always;',
    'proxy_hide_header Strict-Transport-Security;',
    'proxy_hide_header X-Content-Type-Options;',
    'proxy_hide_header X-Frame-Options;',
    'proxy_hide_header Referrer-Policy;',
  ]
  const upstream = (name: string) => `proxy_pass https://${name}/;`
  const serve = nginxServeSettings(options)
  const lines = [
    '# Generated by `mfc setup nginx`. Regenerate after changing ports or certificate paths.',
    '# mfc serve needs these in ssl-config.json (`mfc setup nginx` adds them; restart serve after):',
    `#   "trusted_proxies": ${JSON.stringify(serve.trusted_proxies)}`,
    ...(serve.dashboard_origins.length > 0 ? [`#   "dashboard_origins": ${JSON.stringify(serve.dashboard_origins)}`] : []),
    ...(options.upstreams.length > 1 ? ['# (on every node behind it).'] : []),
    '',
    ...upstreamBlocks(options),
    'server {',
    `    listen ${options.listenHttp};`,
    `    listen [::]:${options.listenHttp};`,
    `    server_name ${names};`,
    '',
    ...acmeLocation(options),
    ...block('location /', [`return 301 ${redirectTarget(options)};`]),
    '}',
    '',
    'server {',
    `    listen ${options.listenHttps} ssl http2;`,
    `    listen [::]:${options.listenHttps} ssl http2;`,
    `    server_name ${names};`,
    '',
    `    ssl_certificate ${quote(options.certFile)};`,
    `    ssl_certificate_key ${quote(options.keyFile)};`,
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    `    ssl_ciphers ${MOZILLA_INTERMEDIATE_CIPHERS};`,
    '    ssl_prefer_server_ciphers off;',
    '    ssl_session_cache shared:MFC_SSL:10m;',
    '    ssl_session_timeout 1d;',
    '',
    ...headers.map((h) => `    ${h}`),
    '',
    ...upstreamTls(options).map((l) => `    ${l}`),
    '',
    ...FAILOVER.map((l) => `    ${l}`),
    '',
    ...block('location /api/', [upstream('mfc_api'), ...PROXY_HEADERS]),
    '',
    ...block('location /', [upstream('mfc_dashboard'), ...PROXY_HEADERS]),
    '',
    ...block(`location ${PROXY_STREAM_PATH}`, [
      upstream('mfc_stream'),
      'proxy_http_version 1.1;',
      'proxy_set_header Upgrade $http_upgrade;',
      'proxy_set_header Connection "upgrade";',
      ...PROXY_HEADERS,
      // A quiet stream is not a dead one: the default 60 s would cut idle dashboards.
      'proxy_read_timeout 1h;',
      'proxy_send_timeout 1h;',
    ]),
    '}',
    '',
  ]
  return lines.join('\n')
}
