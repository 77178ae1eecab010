import {MOZILLA_INTERMEDIATE_CIPHERS} from './nginx.js'
import {type Upstream, address} from './upstreams.js'

/**
 * How haproxy handles TLS for the nodes.
 * - `terminate` (the default): haproxy holds the certificate, routes one public HTTPS port by
 *   path (/api/, /ws/, /) like `setup nginx`, and re-encrypts to every node, verifying the node's
 *   certificate. The nodes see each client's address in X-Forwarded-For (trusted_proxies), so
 *   the per-IP rate limit, blocked-ips.txt and the logs keep working per client.
 * - `passthrough` (mode tcp): haproxy forwards the TLS bytes of the three ports untouched, so the
 *   certificate and key stay on the nodes (cluster mode shares them and renews them there, and
 *   nothing on the balancer needs reloading). The price: the nodes see haproxy as the one
 *   client (mfc speaks no PROXY protocol), so every client shares one per-IP rate limit budget
 *   per node and blocked-ips.txt must move to the balancer.
 */
export type HaproxyTls = 'terminate' | 'passthrough'

/** Everything `haproxyConfig` needs; built from the config by from-config.ts. */
export interface HaproxyOptions {
  tls: HaproxyTls
  upstreams: Upstream[]
  /** Ports haproxy listens on: HTTP, the public HTTPS port (terminate), the three service ports (passthrough). */
  listen: {http: number; https: number; api: number; dashboard: number; streamer: number}
  /** terminate: the PEM haproxy serves (certificate + chain; the key inside or in `<crt>.key`). */
  crtFile: string
  /** The name the nodes' certificate carries (SNI and verification of every node). */
  upstreamName: string
  /** CA bundle that signed the nodes' certificate. */
  upstreamCaFile: string
  /** Forward /.well-known/acme-challenge/ to the nodes' HTTP ports (any node answers: shared tokens). */
  acme: boolean
  /** haproxy's admin socket (`show servers state` tells which node is UP or DOWN). */
  statsSocket: string
}

const HEALTH_CHECK = [
  // /health answers 200 when the node is healthy and 503 when it is degraded (its database is
  // unreachable) or starting: such a node is taken out after 2 failed checks, back after 2 good ones.
  'option httpchk',
  'http-check send meth GET uri /health ver HTTP/1.1 hdr Host NAME',
  'http-check expect status 200',
  'default-server inter 2s fall 2 rise 2',
]

function serverLine(name: string, host: string, port: number, options: HaproxyOptions, tls: 'ssl' | 'check-ssl', health: string): string {
  const verify = `verify required ca-file ${options.upstreamCaFile} verifyhost ${options.upstreamName}`
  const ssl = tls === 'ssl'
    ? `ssl ${verify} sni str(${options.upstreamName})${health === 'check' ? ` check-sni ${options.upstreamName}` : ''}`
    : `check-ssl ${verify} check-sni ${options.upstreamName}`
  return `server ${name} ${address(host, port)}${health ? ` ${health}` : ''} ${ssl}`
}

/**
 * One backend per service. Only the API backend checks the nodes; the dashboard's and the
 * stream's servers `track` it: one process serves all three ports, so one check answers for all,
 * and the balancer's checks come from one address that the node rate-limits like any client
 * (three checks per node every 2 s would exceed the default 60 per minute and take it out).
 * Every node is listed twice: checked, and again as an unchecked `backup`. When all nodes are
 * degraded at once (the shared PostgreSQL is down: /health says 503 on every node), haproxy
 * would otherwise answer 503 for everything while the nodes can still serve TLS, the dashboard
 * and their last data; the backups keep them reachable then, and `option redispatch` moves a
 * request off a backup that does not answer.
 */
function backend(name: string, port: (u: Upstream) => number, options: HaproxyOptions, balance: string, mode: 'http' | 'tcp', rewrite: string[] = []): string[] {
  const checks = name === 'mfc_api'
  const tls = mode === 'http' ? 'ssl' : 'check-ssl'
  const servers = options.upstreams.map((u, i) => serverLine(`node${i + 1}`, u.host, port(u), options, checks ? tls : 'ssl', checks ? 'check' : `track mfc_api/node${i + 1}`))
  const backups = options.upstreams.map((u, i) => `${serverLine(`node${i + 1}-fallback`, u.host, port(u), options, 'ssl', '')} backup`)
  const plain = (line: string) => (mode === 'tcp' ? line.replace(/ ssl verify required ca-file \S+ verifyhost \S+ sni str\(\S+\)/, '') : line)
  return [
    `backend ${name}`,
    ...[`mode ${mode}`, `balance ${balance}`, ...rewrite, ...(checks ? HEALTH_CHECK.map((l) => l.replace('NAME', options.upstreamName)) : []),
      'option allbackups', 'option redispatch', 'retries 2', ...[...servers, ...backups].map(plain)].map((l) => `    ${l}`),
    '',
  ]
}

function acmeBackend(options: HaproxyOptions): string[] {
  if (!options.acme) return []
  return [
    'backend mfc_acme',
    '    mode http',
    '    balance roundrobin',
    '    option redispatch',
    '    retries 2',
    // Plain HTTP: a TCP check (the HTTP listener redirects everything but challenges).
    ...options.upstreams.map((u, i) => `    server node${i + 1} ${address(u.host, u.http)} check inter 2s fall 2 rise 2`),
    '',
  ]
}

function httpFrontend(options: HaproxyOptions): string[] {
  const httpsPort = options.tls === 'terminate' ? options.listen.https : options.listen.dashboard
  const redirect = httpsPort === 443 ? 'http-request redirect scheme https code 301' : `http-request redirect prefix https://%[req.hdr(host),field(1,:)]:${httpsPort} code 301`
  return [
    'frontend mfc_http',
    `    bind :${options.listen.http}`,
    '    mode http',
    ...(options.acme ? ['    acl acme_challenge path_beg /.well-known/acme-challenge/', '    use_backend mfc_acme if acme_challenge', `    ${redirect} unless acme_challenge`] : [`    ${redirect}`]),
    '',
  ]
}

function terminateFrontends(options: HaproxyOptions): string[] {
  return [
    'frontend mfc_https',
    `    bind :${options.listen.https} ssl crt ${options.crtFile} alpn h2,http/1.1`,
    '    mode http',
    // The nodes believe these from trusted_proxies only; a client's own copies are replaced.
    '    http-request del-header X-Forwarded-For',
    '    option forwardfor',
    '    http-request set-header X-Forwarded-Proto https',
    '    http-request set-header X-Forwarded-Host %[req.hdr(host)]',
    '    acl api path_beg /api/',
    '    acl stream path_beg /ws/',
    '    use_backend mfc_stream if stream',
    '    use_backend mfc_api if api',
    '    default_backend mfc_dashboard',
    '',
  ]
}

function passthroughFrontends(options: HaproxyOptions): string[] {
  const frontend = (name: string, port: number) => [`frontend ${name}_tls`, `    bind :${port}`, '    mode tcp', `    default_backend ${name}`, '']
  return [...frontend('mfc_api', options.listen.api), ...frontend('mfc_dashboard', options.listen.dashboard), ...frontend('mfc_stream', options.listen.streamer)]
}

/**
 * A complete haproxy.cfg for N `mfc serve` nodes: port 80 (ACME HTTP-01 to any node, the rest
 * redirected to HTTPS), the API, the dashboard and the WSS streamer, each node health-checked
 * on `/health` over verified TLS. Balance: `roundrobin` for the API and dashboard (short
 * requests; sessions and the API token are shared by all nodes, so no stickiness is needed) and
 * `leastconn` for the stream, whose WebSockets live for hours (round robin would pile them on
 * whichever node was up longest). See HaproxyTls for the two TLS modes.
 */
export function haproxyConfig(options: HaproxyOptions): string {
  const terminate = options.tls === 'terminate'
  const mode = terminate ? 'http' : 'tcp'
  const strip = (prefix: string) => [`http-request replace-path ^${prefix}(/.*)$ \\1`]
  const lines = [
    `# Generated by \`mfc setup haproxy\` (TLS ${options.tls}, ${options.upstreams.length} node(s)). Regenerate after changing nodes, ports or certificate paths.`,
    ...(terminate ? ['# Every node needs this balancer\'s address in "trusted_proxies" and its https origin in "dashboard_origins".'] : []),
    // No global maxconn: haproxy derives it from the file-descriptor limit it is given.
    'global',
    `    ssl-default-bind-ciphers ${MOZILLA_INTERMEDIATE_CIPHERS}`,
    '    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
    '    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
    '    ssl-default-server-options ssl-min-ver TLSv1.2',
    `    stats socket ${options.statsSocket} mode 600 level admin`,
    '    log stderr format short local0 notice',
    '',
    'defaults',
    `    mode ${mode}`,
    '    log global',
    // A node going DOWN or UP is logged (with the check's reason).
    '    option log-health-checks',
    '    timeout connect 3s',
    '    timeout client 1m',
    '    timeout server 1m',
    // A quiet stream is not a dead one: WebSockets (and tcp passthrough) may idle for an hour.
    '    timeout tunnel 1h',
    ...(terminate ? ['    timeout http-request 10s'] : []),
    '',
    ...httpFrontend(options),
    ...(terminate ? terminateFrontends(options) : passthroughFrontends(options)),
    ...backend('mfc_api', (u) => u.api, options, 'roundrobin', mode, terminate ? strip('/api') : []),
    ...backend('mfc_dashboard', (u) => u.dashboard, options, 'roundrobin', mode),
    ...backend('mfc_stream', (u) => u.streamer, options, 'leastconn', mode, terminate ? strip('/ws') : []),
    ...acmeBackend(options),
  ]
  return lines.join('\n')
}
