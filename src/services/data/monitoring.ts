import {type Clock, systemClock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import type {MfcEventBus} from '../../lib/events.js'
import type {Logger} from '../../lib/logger.js'
import {AlertManager} from './alerts.js'
import {type DataSettings, DEFAULT_DATA_SETTINGS, dataSettings} from './data-settings.js'
import {CsvFollower} from './follower.js'
import {type HistoryStore, openHistory} from './history.js'
import {IngestService} from './ingest.js'
import {RequestCounter, renderMetrics} from './metrics.js'
import {ProcessMetrics} from './process-metrics.js'
import type {Reading} from './reading.js'
import type {StreamHub} from './server-types.js'
import {type SimulationConfig, SimulationRunner} from './simulation-runner.js'
import {MonitoringStreamHub} from './stream-hub.js'

export interface MonitoringOptions {
  historyDb: string
  settings?: Partial<DataSettings>
  clock: Clock
  events: MfcEventBus
  logger: Logger
  /** notAfter of the served certificates, for /metrics and the dashboard's SSL panel. */
  certificates?: () => {name: string; notAfter: Date}[]
  /** The WSS streamer's port, which the dashboard connects to. */
  streamPort?: number
  /** Health of the servers of this process, for the dashboard's configuration panel. */
  services?: () => Record<string, {ok: boolean; url: string}>
  /** Overrides of the stream hub (tests shorten the heartbeat). */
  heartbeatMs?: number
}

/** The default run `simulation_autostart` starts: the original's defaults, for one year. */
export const AUTOSTART_CONFIG: SimulationConfig = {
  duration_hours: 8760, n_cells: 5, electrode_area_m2: 0.001, target_concentration: 25, use_pretrained: true,
  learning_rate: 0.1, epsilon_initial: 0.4, discount_factor: 0.95,
}

/**
 * The monitoring services of one server process, wired: every new reading (simulator, ingest,
 * follower) is stored first, then checked against the alerts, then pushed to stream clients.
 */
export class Monitoring {
  readonly requests = new RequestCounter()
  readonly processMetrics = new ProcessMetrics()
  readonly runner: SimulationRunner
  readonly alerts: AlertManager
  readonly hub: MonitoringStreamHub
  readonly ingest: IngestService
  readonly follower: CsvFollower | undefined
  ingested = 0
  private pruneTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor(readonly history: HistoryStore, readonly settings: DataSettings, private readonly options: MonitoringOptions) {
    const {clock, events, logger} = options
    this.alerts = new AlertManager(history, events, clock)
    this.hub = new MonitoringStreamHub({clock, heartbeatMs: options.heartbeatMs}, history.latest(1000))
    this.runner = new SimulationRunner({
      clock, speed: settings.simulation_speed, sampleIntervalMs: settings.simulation_sample_ms, seed: settings.simulation_seed,
      publish: (reading) => this.store([reading]),
      finished: (status) => logger.info({run: status.run_id, state: status.state, hours: status.current_time_hours}, 'simulation finished'),
    })
    this.ingest = new IngestService(history, {cells: settings.stack_cells, maxBatch: settings.ingest_max_batch}, clock, (readings) => {
      this.ingested += readings.length
      this.published(readings)
    })
    if (settings.data_follow_dir) this.follower = new CsvFollower(settings.data_follow_dir, history, (r) => this.published(r), logger)
  }

  /** Starts the background parts: retention, follower, the default simulation. */
  start(): void {
    this.processMetrics.start()
    this.history.prune()
    this.pruneTimer = setInterval(() => this.safely('prune', () => this.history.prune()), 3_600_000)
    this.pruneTimer.unref()
    this.follower?.start()
    if (this.settings.simulation_autostart) this.runner.start(AUTOSTART_CONFIG)
  }

  get streamPort(): number | undefined {
    return this.options.streamPort
  }

  /** The streamer's port once it listens (port 0 in tests), for the dashboard to connect to. */
  setStreamPort(port: number): void {
    this.options.streamPort = port
  }

  services(): Record<string, {ok: boolean; url: string}> {
    return this.options.services?.() ?? {}
  }

  certificates(): {name: string; notAfter: Date}[] {
    return this.options.certificates?.() ?? []
  }

  metricsText(): string {
    return renderMetrics({
      latest: this.hub.latest(), alerts: this.alerts.list(), certificates: this.certificates(), requests: this.requests,
      streamClients: this.hub.clientCount, streamDropped: this.hub.dropped, historyReadings: this.history.count(),
      ingested: this.ingested, simulation: this.runner.status(),
    }) + this.processMetrics.render()
  }

  /**
   * Reopens the history database and rereads what lives in it (alert thresholds, the readings
   * new stream clients get first, the follower's offsets). SIGHUP calls this: `mfc restore`
   * renames a new history.sqlite into place and must not leave serve writing to the old one.
   * Returns false (and logs) when the database cannot be opened; the next call retries.
   */
  reload(): boolean {
    if (this.closed) return false
    let ok = false
    this.safely('reopen', () => {
      this.history.reopen()
      this.alerts.reload()
      this.hub.reseed(this.history.latest(1000))
      this.follower?.forget()
      this.options.logger.info({file: this.history.file, readings: this.history.count()}, 'history database reopened')
      ok = true
    })
    return ok
  }

  /** Idempotent: stops the run, timers and clients, then closes the database. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.processMetrics.stop()
    this.runner.close()
    this.follower?.close()
    clearInterval(this.pruneTimer)
    this.hub.close()
    this.history.close()
  }

  private store(readings: Reading[]): void {
    this.safely('store', () => {
      this.history.insert(readings)
      this.published(readings)
    })
  }

  private published(readings: Reading[]): void {
    for (const reading of readings) for (const change of this.alerts.evaluate(reading)) this.hub.alert(change)
    this.hub.publish(readings)
  }

  private safely(what: string, work: () => unknown): void {
    try {
      work()
    } catch (error) {
      this.options.logger.error({err: (error as Error).message}, `monitoring ${what} failed`)
    }
  }
}

/**
 * What `mfc serve` needs from the data side: the stream hub, the monitoring (its routes come
 * from `dataPlugins(monitoring)` in data-routes.ts, wired by the composition root so this module
 * and the routes do not import each other), a reload and a close.
 */
export interface MonitoringWiring {
  hub: StreamHub
  monitoring: Monitoring
  /** SIGHUP: reopen the history database (see `Monitoring.reload`). */
  reload(): boolean
  close(): void
}

/**
 * Creates history + simulator + alerts + hub and returns the monitoring (for the routes) and the
 * hub for the streamer. The caller starts the servers, then calls `monitoring.start()`.
 */
export async function createMonitoring(options: MonitoringOptions): Promise<MonitoringWiring> {
  const settings = {...DEFAULT_DATA_SETTINGS, ...options.settings}
  const history = await openHistory(options.historyDb, {retentionDays: settings.data_retention_days, clock: options.clock})
  const monitoring = new Monitoring(history, settings, options)
  return {
    hub: monitoring.hub,
    monitoring,
    reload: () => monitoring.reload(),
    close: () => monitoring.close(),
  }
}

/**
 * `createMonitoring` from the resolved config: the history in `paths.historyDb`, the data keys
 * of ssl-config.json. `certificate` returns the served certificate's notAfter (or undefined
 * before the TLS context has loaded).
 */
export function createMonitoringFor(config: MfcConfig, deps: {logger: Logger; events: MfcEventBus; certificate?: () => Date | undefined}): Promise<MonitoringWiring> {
  return createMonitoring({
    historyDb: config.paths.historyDb,
    settings: dataSettings(config),
    clock: systemClock,
    events: deps.events,
    logger: deps.logger,
    certificates() {
      const notAfter = deps.certificate?.()
      return notAfter ? [{name: config.settings.domain, notAfter}] : []
    },
  })
}
