import {spawn} from 'node:child_process'
import {existsSync, openSync, closeSync, promises as fs} from 'node:fs'

import {type MfcConfig, type ResolveOptions, resolveConfig} from '../lib/config.js'
import {ERROR_CODES, type ErrorCode, MfcError, StoreError} from '../lib/errors.js'
import {MfcEventBus} from '../lib/events.js'
import {ensureDir} from '../lib/fs-atomic.js'
import {createLogger, type Logger} from '../lib/logger.js'
import {lineageName, livePaths} from '../lib/paths.js'
import {keySpecFromSettings} from '../services/certificates/key-spec.js'
import {PidFile, type PidRecord, type ServePorts, alreadyRunning, isRunning} from '../services/daemon/pid-file.js'
import {Supervisor, type WorkerMessage} from '../services/daemon/supervisor.js'
import {leafFingerprint} from '../services/daemon/status.js'
import {probeHttps, probeWss} from '../services/http-client.js'
import {type ApiToken, resolveApiToken} from '../services/servers/auth.js'
import {ServeRuntime, type ServeInfo} from '../services/servers/runtime.js'
import type {ClusterNode} from '../services/cluster/nodes.js'
import {createMaintainer, renewalHealth} from './maintenance.js'
import {logNotifications} from './notify.js'
import {joinCluster} from './cluster-serve.js'
import {ssl} from './services.js'
import {storageRoles} from './storage-roles.js'

/** What `serve` tells the user before the servers start (printed by the command). */
export interface Preparation {
  config: MfcConfig
  token: ApiToken
  /** A certificate was created through the local CA because none existed. */
  bootstrapped: {domains: string[]; caFile: string} | null
}

/**
 * Checks that no serve runs, creates a certificate through the local CA when there is none
 * yet (what `ssl init --domain <domain>` does), and resolves the API token (generating one).
 */
export async function prepare(resolve: ResolveOptions, checkRunning = true): Promise<Preparation> {
  let config = resolveConfig(resolve)
  const running = checkRunning ? await new PidFile(config.paths.pidFile).read() : undefined
  if (running?.alive) throw alreadyRunning(config.paths.pidFile, running.record)
  let bootstrapped: Preparation['bootstrapped'] = null
  // Cluster mode: the live certificate comes from the shared store (another node may have made it).
  if (!existsSync(config.settings.cert_file)) await clusterCertificate(config)
  if (!existsSync(config.settings.cert_file)) {
    const storeLive = livePaths(config.paths, lineageName(config.settings.domain)).certFile
    if (config.settings.cert_file !== storeLive) {
      throw new StoreError(`The certificate ${config.settings.cert_file} (cert_file) does not exist.`, {
        code: 'MFC_CERT_INVALID',
        suggestions: [`Create it with \`mfc ssl init --domain ${config.settings.domain}\`, or fix cert_file in ${config.paths.sslConfigFile}.`],
      })
    }

    const services = await ssl(config)
    try {
      await services.manager.obtain({
        domains: services.domains, issuer: services.localCa, keySpec: keySpecFromSettings(config.settings),
        replace: false, command: 'serve', settings: {ca_file: config.paths.caCertFile},
      })
      bootstrapped = {domains: services.domains, caFile: config.paths.caCertFile}
    } catch (error) {
      // Another node of the cluster bootstrapped it at the same moment: serve that one.
      const raced = error instanceof MfcError && (error.code === 'MFC_LOCKED' || error.code === 'MFC_STORE_EXISTS')
      if (!raced || !(await clusterCertificate(config, 60_000))) throw error
    }

    config = resolveConfig(resolve)
  }

  // Cluster mode: this node's trust file is the cluster's one local CA, whichever node made it.
  if (config.settings.storage) await (await ssl(config)).localCa.syncSharedRoot()
  // Cluster mode: the one token every node shares, from the database (auth.ts has the order).
  return {config, token: await resolveApiToken(config, (await storageRoles(config)).secrets), bootstrapped}
}

/** Cluster mode: materialises the configured lineage's live version, waiting up to `waitMs` for it; false when there is none. */
async function clusterCertificate(config: MfcConfig, waitMs = 0): Promise<boolean> {
  const roles = await storageRoles(config)
  if (!roles.cluster) return false
  const deadline = Date.now() + waitMs
  for (;;) {
    if (await roles.store.live(lineageName(config.settings.domain))) return true
    if (Date.now() >= deadline) return false
    await sleep(250)
  }
}

function portsOf(info: ServeInfo): ServePorts {
  const port = (name: string) => info.services.find((s) => s.name === name)!.port
  return {api: port('api'), dashboard: port('dashboard'), streamer: port('streamer'), http: info.http?.port ?? null}
}

function waitForSignal(onHup: () => void, logger: Logger, extra: (stop: () => void) => void = () => {}): Promise<NodeJS.Signals | 'disconnect'> {
  return new Promise((resolve) => {
    let stopped = false
    const stop = (why: NodeJS.Signals | 'disconnect') => {
      if (stopped) return
      stopped = true
      process.off('SIGHUP', onHup)
      logger.info({why}, 'Shutting down')
      resolve(why)
    }

    process.on('SIGHUP', onHup)
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
    extra(() => stop('disconnect'))
  })
}

export interface ServeSession {
  info: ServeInfo
  logger: Logger
  /** Resolves after a signal stopped the servers (in-flight requests finished or timed out). */
  stopped: Promise<void>
}

/**
 * Runs the servers in this process until SIGINT/SIGTERM (or, for a worker, until the
 * supervisor goes away); SIGHUP reloads the certificate and reopens the history database. A foreground serve owns the pid
 * file; a worker leaves it to its supervisor and reports readiness over IPC.
 */
export async function runServers(prep: Preparation, options: {version: string; worker: boolean; pretty: boolean}): Promise<ServeSession> {
  const {config} = prep
  const logger = await createLogger({file: config.paths.logFile, pretty: options.pretty, level: config.debug ? 'debug' : 'info'})
  const pidFile = new PidFile(config.paths.pidFile)
  const now = new Date().toISOString()
  const configured = {api: config.settings.https_port_api, dashboard: config.settings.https_port_frontend, streamer: config.settings.wss_port_streaming, http: null}
  if (!options.worker) {
    await pidFile.claim({pid: process.pid, supervisorPid: null, startedAt: now, workerStartedAt: now, restarts: 0, ports: configured, ready: false, version: options.version, logFile: config.paths.logFile})
  }

  const events = new MfcEventBus()
  // Notifications: monitoring alerts (thresholds with email_notify) and in-process renewals; results go to the log.
  const notifications = await logNotifications(config, events, logger)
  // The monitoring data (simulator, history, alerts, stream hub) loads only in a serving process.
  const {createMonitoringFor} = await import('../services/data/monitoring.js')
  const {dataPlugins} = await import('../services/data/data-routes.js')
  let runtime: ServeRuntime | undefined
  // Cluster mode: live data between the nodes (readings fan-out) over the shared database.
  const cluster = config.settings.storage ? await (await import('./cluster-data.js')).startClusterData(config, events, logger) : undefined
  const data = await createMonitoringFor(config, {
    logger: logger.child({component: 'data'}),
    events: cluster?.dataEvents ?? events,
    // Cluster mode: the history in the shared PostgreSQL (src/cli/history-storage.ts).
    openHistory: config.settings.storage ? async (retention) => (await import('./history-storage.js')).sharedHistory(config, retention) : undefined,
    certificate() {
      const cert = runtime?.health.report().certificate
      return cert ? new Date(cert.not_after) : undefined
    },
  })
  // The dashboard gets the same data routes, so the SPA calls its own origin (strict CSP, one cookie).
  const roles = await storageRoles(config)
  runtime = new ServeRuntime({
    config, logger, apiToken: prep.token, version: options.version, events, apiPlugins: dataPlugins(data.monitoring), dashboardPlugins: dataPlugins(data.monitoring), hub: data.hub,
    challengeTokens: roles.tokens, sessions: roles.sessions,
  })
  let info: ServeInfo
  let node: ClusterNode | undefined
  try {
    info = await runtime.start()
    if (roles.cluster) node = await joinCluster(config, roles, runtime, info, {version: options.version, events, logger})
    data.monitoring.setStreamPort(info.services.find((s) => s.name === 'streamer')!.port)
    await cluster?.attach(data.monitoring)
    data.monitoring.start()
  } catch (error) {
    // code/suggestions let `serve --daemon` fail with the same cause, hence the same exit code, as
    // the foreground serve (its caller reads them back from the log).
    const known = error instanceof MfcError ? {code: error.code, suggestions: error.suggestions} : {}
    logger.error({err: (error as Error).message, ...known}, 'serve could not start')
    await node?.stop()
    await runtime.close()
    await cluster?.close()
    await data.close()
    if (!options.worker) await pidFile.release()
    throw error
  }

  for (const service of info.services) logger.info({service: service.name, url: service.url}, 'Listening')
  if (options.worker) process.send?.({type: 'ready', ports: portsOf(info)} satisfies WorkerMessage)
  else await pidFile.update({ports: portsOf(info), ready: true})

  // auto_renew: serve keeps its own certificates; `cert:renewed` on the bus reloads them (runtime).
  const maintainer = config.settings.auto_renew
    ? await createMaintainer(config, events, logger, {httpServed: info.http !== null, onChange: (status) => runtime!.health.setRenewal(renewalHealth(status))})
    : undefined
  const renewLog = logger.child({component: 'maintainer'})
  events.on('cert:renewing', ({name, reason}) => renewLog.info({name, reason}, 'Renewing certificate'))
  events.on('cert:renewed', ({name, version, notAfter}) => renewLog.info({name, version, notAfter}, 'Certificate renewed'))
  maintainer?.start()
  // Cluster mode: a certificate another node wrote changes this node's schedule (its renewal date).
  if (node && maintainer) events.on('server:reloaded', () => maintainer.check('certificate reloaded'))

  // SIGHUP (sent by `mfc restore`, by a renewal in another process, and forwarded by the
  // supervisor) reloads the certificate, reopens the history database, which restore may have
  // replaced, and has the maintainer check now.
  const onHup = () => {
    void data.reload()
    void runtime!.reload('SIGHUP')
    maintainer?.check('SIGHUP')
  }

  const stopped = waitForSignal(onHup, logger, (stop) => {
    if (options.worker) process.once('disconnect', stop)
  }).then(async () => {
    // Cancels an order in flight: nothing half-written, the lock released, before the servers go.
    await maintainer?.stop()
    await node?.stop()
    await runtime!.close()
    await cluster?.close()
    await data.close()
    await notifications.finish(5000)
    if (!options.worker) await pidFile.release()
    logger.info('Stopped')
  })
  return {info, logger, stopped}
}

/** The hidden `serve --supervisor`: owns the pid file, keeps a `serve --worker` alive. */
export async function runSupervisor(config: MfcConfig, options: {version: string; bin: string; workerArgs: string[]}): Promise<number> {
  const logger = (await createLogger({file: config.paths.logFile})).child({component: 'supervisor'})
  const pidFile = new PidFile(config.paths.pidFile)
  const now = new Date().toISOString()
  const ports = {api: config.settings.https_port_api, dashboard: config.settings.https_port_frontend, streamer: config.settings.wss_port_streaming, http: null}
  await pidFile.claim({pid: process.pid, supervisorPid: process.pid, startedAt: now, workerStartedAt: now, restarts: 0, ports, ready: false, version: options.version, logFile: config.paths.logFile})
  const events = new MfcEventBus()
  // Notifications: `daemon:restarted` after a crash; results go to the log.
  const notifications = await logNotifications(config, events, logger)
  const supervisor = new Supervisor({
    command: process.execPath, args: [options.bin, 'serve', '--worker', ...options.workerArgs], env: process.env,
    logFile: config.paths.logFile, pidFile, logger, events,
  })
  process.on('SIGTERM', () => supervisor.stop())
  process.on('SIGINT', () => supervisor.stop())
  process.on('SIGHUP', () => supervisor.signal('SIGHUP'))
  logger.info({pid: process.pid}, 'Supervisor started')
  const code = await supervisor.run()
  await notifications.finish(5000)
  await pidFile.release()
  logger.info({code}, 'Supervisor exiting')
  return code
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function logTail(file: string, lines = 8): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  return text.trim().split('\n').slice(-lines).map((line) => {
    try {
      const entry = JSON.parse(line) as {msg?: string; err?: string}
      return [entry.msg, entry.err].filter(Boolean).join(': ')
    } catch {
      return line
    }
  }).filter(Boolean).join('\n    ')
}

/** The server process's own reason for not starting, as it logged it after `offset`. */
async function workerFailure(file: string, offset: number): Promise<{err: string; code: ErrorCode; suggestions?: string[]} | undefined> {
  const text = await fs.readFile(file).then((buffer) => buffer.subarray(offset).toString('utf8'), () => '')
  for (const line of text.split('\n').reverse()) {
    try {
      const entry = JSON.parse(line) as {msg?: string; err?: string; code?: string; suggestions?: string[]}
      if (entry.msg === 'serve could not start' && entry.err && entry.code !== undefined && entry.code in ERROR_CODES) return entry as never
    } catch {
      // Not a log entry (the worker's own stderr): skip.
    }
  }

  return undefined
}

/**
 * `serve --daemon`: starts a detached supervisor and returns once the API, dashboard and
 * streamer all answer their health checks, or fails with the reason and the log file.
 */
export async function startDaemon(prep: Preparation, options: {bin: string; args: string[]; timeoutMs: number}): Promise<{record: PidRecord}> {
  const {config} = prep
  await ensureDir(config.paths.logDir, 0o700)
  const logOffset = await fs.stat(config.paths.logFile).then((stat) => stat.size, () => 0)
  const fd = openSync(config.paths.logFile, 'a', 0o600)
  const child = spawn(process.execPath, [options.bin, 'serve', '--supervisor', ...options.args], {detached: true, stdio: ['ignore', fd, fd], env: process.env})
  closeSync(fd)
  child.unref()
  const pidFile = new PidFile(config.paths.pidFile)
  // Readiness is liveness: the certificate serve loads answers, whether or not this machine
  // trusts its chain (LE staging, Pebble, a private CA); `mfc status` reports the trust.
  const pin = await leafFingerprint(config.settings.cert_file)
  const probe = {pin, servername: config.settings.domain, timeoutMs: 2000}
  const deadline = Date.now() + options.timeoutMs
  let last = 'the servers did not report ready'
  while (Date.now() < deadline) {
    if (!isRunning(child.pid!)) {
      last = 'the supervisor exited'
      break
    }

    const state = await pidFile.read()
    if (state?.record.ready && state.record.supervisorPid === child.pid) {
      const {api, dashboard, streamer} = state.record.ports
      const results = await Promise.all([
        probeHttps(`https://127.0.0.1:${api}/health`, probe), probeHttps(`https://127.0.0.1:${dashboard}/health`, probe),
        probeWss(`wss://127.0.0.1:${streamer}/`, {...probe, headers: {authorization: `Bearer ${prep.token.token}`}}),
      ])
      if (results.every((r) => r.ok)) return {record: state.record}
      last = results.map((r, i) => `${['api', 'dashboard', 'streamer'][i]}: ${r.ok ? 'ok' : r.error}`).join(', ')
    }

    await sleep(200)
  }

  if (isRunning(child.pid!)) process.kill(child.pid!, 'SIGTERM')
  const failure = await workerFailure(config.paths.logFile, logOffset)
  if (failure) throw new MfcError(failure.err, {code: failure.code, suggestions: [...failure.suggestions ?? [], `Read the log: ${config.paths.logFile}`]})
  throw new MfcError(`mfc serve --daemon did not become healthy: ${last}.\n    ${await logTail(config.paths.logFile)}`, {
    code: 'MFC_DAEMON_START',
    suggestions: [`Read the log: ${config.paths.logFile}`, 'Run `mfc serve` in the foreground to see the problem directly.'],
  })
}
