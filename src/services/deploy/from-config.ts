import {isIP} from 'node:net'
import {dirname, join} from 'node:path'

import type {MfcConfig} from '../../lib/config.js'
import type {RenewalCommand} from './cron.js'
import type {DockerOptions} from './docker.js'
import {type NginxOptions, nginxServeSettings} from './nginx.js'
import type {SystemdOptions} from './systemd.js'

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

export function nginxOptions(config: MfcConfig, listen: {http: number; https: number}): NginxOptions {
  const {settings, paths} = config
  const names = settings.domains.filter((name) => isIP(name) === 0)
  return {
    serverNames: names.length > 0 ? names : ['_'],
    certFile: settings.cert_file,
    keyFile: settings.key_file,
    listenHttp: listen.http,
    listenHttps: listen.https,
    upstreamHost: '127.0.0.1',
    apiPort: settings.https_port_api,
    frontendPort: settings.https_port_frontend,
    streamerPort: settings.wss_port_streaming,
    upstreamName: settings.domain,
    upstreamCaFile: settings.ca_file ?? (settings.use_letsencrypt ? SYSTEM_CA_BUNDLE : paths.caCertFile),
    acme: settings.webroot ? {webroot: settings.webroot} : settings.use_letsencrypt || settings.acme_directory ? {proxyPort: settings.http_port} : null,
    hsts: settings.enable_hsts ? {maxAge: settings.hsts_max_age} : null,
  }
}

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
