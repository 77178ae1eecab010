import {isIP} from 'node:net'
import {dirname, join} from 'node:path'

import type {MfcConfig} from '../../lib/config.js'
import type {RenewalCommand} from './cron.js'
import type {DockerOptions} from './docker.js'
import type {HaproxyOptions, HaproxyTls} from './haproxy.js'
import {type NginxOptions, nginxPublicOrigins, nginxServeSettings} from './nginx.js'
import type {SystemdOptions} from './systemd.js'
import {type NodePorts, type Upstream, localUpstream} from './upstreams.js'

/** Where this mfc runs from: absolute node and bin/run.js paths, found by the command layer. */
export interface Installation {
  nodePath: string
  mfcPath: string
  /** The package root (build context for Docker). */
  root: string
}

/** Debian's bundle of the system's trusted CAs. */
const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

/**
 * The directories a scheduled or supervised mfc must use: the ones this run resolved, so the
 * job finds the same config even when cron or systemd gives it another HOME or none.
 */
export function pathEnv(config: MfcConfig): Record<string, string> {
  const env: Record<string, string> = {MFC_CONFIG_DIR: config.paths.configDir, MFC_STATE_DIR: config.paths.stateDir}
  if (config.paths.sslConfigFile !== join(config.paths.configDir, 'ssl-config.json')) env.MFC_SSL_CONFIG = config.paths.sslConfigFile
  return env
}

export function renewalCommand(config: MfcConfig, install: Installation): RenewalCommand {
  return {nodePath: install.nodePath, mfcPath: install.mfcPath, env: pathEnv(config)}
}

export function systemdOptions(config: MfcConfig, install: Installation, account: {user: string; group: string; name: string}): SystemdOptions {
  const {settings, paths} = config
  const writable = [paths.configDir, paths.stateDir]
  if (!writable.includes(dirname(paths.sslConfigFile)) && !paths.sslConfigFile.startsWith(paths.configDir + '/')) writable.push(dirname(paths.sslConfigFile))
  return {
    nodePath: install.nodePath,
    mfcPath: install.mfcPath,
    env: pathEnv(config),
    user: account.user,
    group: account.group,
    name: account.name,
    writablePaths: writable,
    ports: [settings.https_port_api, settings.https_port_frontend, settings.wss_port_streaming, ...(settings.use_letsencrypt ? [settings.http_port] : [])],
  }
}

/** This config's four ports: what every node listens on unless `--upstream` says otherwise. */
export function nodePorts(config: MfcConfig): NodePorts {
  const {settings} = config
  return {api: settings.https_port_api, dashboard: settings.https_port_frontend, streamer: settings.wss_port_streaming, http: settings.http_port}
}

/** Where the balancer reaches the nodes: `upstreams`, or this machine's own serve on loopback. */
export interface BalancerTarget {
  upstreams?: Upstream[]
  /** The address the nodes see the balancer connect from (their trusted_proxies entry). */
  proxyAddress?: string
}

export function nginxOptions(config: MfcConfig, listen: {http: number; https: number}, target: BalancerTarget = {}): NginxOptions {
  const {settings} = config
  const names = settings.domains.filter((name) => isIP(name) === 0)
  return {
    serverNames: names.length > 0 ? names : ['_'],
    certFile: settings.cert_file,
    keyFile: settings.key_file,
    listenHttp: listen.http,
    listenHttps: listen.https,
    upstreams: target.upstreams ?? localUpstream(nodePorts(config)),
    proxyAddress: target.proxyAddress ?? '127.0.0.1',
    upstreamName: settings.domain,
    upstreamCaFile: upstreamCaFile(config),
    acme: settings.webroot ? {webroot: settings.webroot} : usesAcme(config) ? 'proxy' : null,
    hsts: settings.enable_hsts ? {maxAge: settings.hsts_max_age} : null,
  }
}

/** What `mfc setup haproxy` was asked for (the rest comes from the config). */
export interface HaproxyRequest extends BalancerTarget {
  tls: HaproxyTls
  listen: HaproxyOptions['listen']
  crtFile: string
  statsSocket: string
}

export function haproxyOptions(config: MfcConfig, request: HaproxyRequest): HaproxyOptions {
  return {
    tls: request.tls,
    upstreams: request.upstreams ?? localUpstream(nodePorts(config)),
    listen: request.listen,
    crtFile: request.crtFile,
    upstreamName: config.settings.domain,
    upstreamCaFile: upstreamCaFile(config),
    acme: usesAcme(config),
    statsSocket: request.statsSocket,
  }
}

/** The https origins browsers see on a balancer's public port (the nodes' dashboard_origins). */
export function balancerOrigins(config: MfcConfig, httpsPort: number): string[] {
  return nginxPublicOrigins({serverNames: config.settings.domains.filter((name) => isIP(name) === 0), listenHttps: httpsPort})
}

/** The CA bundle a balancer verifies the nodes' certificate with. */
export function upstreamCaFile(config: MfcConfig): string {
  return config.settings.ca_file ?? (config.settings.use_letsencrypt ? SYSTEM_CA_BUNDLE : config.paths.caCertFile)
}

const usesAcme = (config: MfcConfig) => config.settings.use_letsencrypt || Boolean(config.settings.acme_directory)

export function dockerOptions(config: MfcConfig, install: Installation, outputDir: string): DockerOptions {
  const {settings} = config
  return {
    ports: {api: settings.https_port_api, frontend: settings.https_port_frontend, streamer: settings.wss_port_streaming, http: settings.http_port},
    domain: settings.domain,
    email: settings.email,
    useLetsencrypt: settings.use_letsencrypt,
    buildContext: install.root,
    dockerfilePath: join(outputDir, 'Dockerfile'),
    configVolume: join(outputDir, 'config'),
  }
}

/**
 * ssl-config.json's trusted_proxies and dashboard_origins with what nginx in front needs added
 * (nothing removed); `added` lists the new entries, empty when the config already has them.
 */
export function serveSettingsBehind(config: MfcConfig, nginx: NginxOptions): {trusted_proxies: string[]; dashboard_origins: string[]; added: string[]} {
  const needed = nginxServeSettings(nginx)
  const {trusted_proxies: proxies, dashboard_origins: origins} = config.settings
  const newProxies = needed.trusted_proxies.filter((p) => !proxies.includes(p))
  const newOrigins = needed.dashboard_origins.filter((o) => !origins.includes(o))
  return {trusted_proxies: [...proxies, ...newProxies], dashboard_origins: [...origins, ...newOrigins], added: [...newProxies, ...newOrigins]}
}
