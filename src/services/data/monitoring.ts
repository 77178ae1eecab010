import {type Clock, systemClock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import type {MfcEventBus} from '../../lib/events.js'
import type {Logger} from '../../lib/logger.js'
import {AlertManager} from './alerts.js'
import {type DataSettings, DEFAULT_DATA_SETTINGS, dataSettings} from './data-settings.js'
import {CsvFollower} from './follower.js'
import {GroupCommit} from './group-commit.js'
import {openHistory} from './history.js'
import type {History} from './history-types.js'
import {IngestService, parseIngestBatch, reservedSource} from './ingest.js'
import {mqttOptions} from './mqtt-options.js'
import {type MqttOptions, type MqttStatus, MqttSubscriber} from './mqtt-subscriber.js'
import {RequestCounter, renderMetrics} from './metrics.js'
import {ProcessMetrics} from './process-metrics.js'
import {DataValidationError, type Reading} from './reading.js'
import type {StreamHub} from './server-types.js'
import {type SimulationConfig, type SimulationControl, SimulationRunner} from './simulation-runner.js'
import {SourceRegistry, type SourceTimes, type SourceView} from './sources.js'
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
  /** MQTT ingest, when `mqtt_url` is set. */
  mqtt?: MqttOptions
  /**
   * Opens the history instead of the SQLite file `historyDb` (cluster mode: PostgreSQL, chosen
   * by the composition root, which may import the storage adapters this package must not).
   */
  openHistory?: (retention: {retentionDays: number; clock: Clock}) => Promise<History>
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
  /** This process's simulator. */
  readonly localRunner: SimulationRunner
  /** What routes, metrics and autostart use: the local runner, or in cluster mode the cluster's one run. */
  runner: SimulationControl
  readonly alerts: AlertManager
  readonly hub: MonitoringStreamHub
  readonly ingest: IngestService
  readonly follower: CsvFollower | undefined
  readonly sources: SourceRegistry
  readonly commit: GroupCommit
  readonly times: SourceTimes
  readonly mqtt: MqttSubscriber | undefined
  ingested = 0
  private pruneTimer: NodeJS.Timeout | undefined
  private silenceTimer: NodeJS.Timeout | undefined
  private latestMemo: {version: number; texts: Map<number, string>} = {version: -1, texts: new Map()}
  private closed = false
  /** Called with readings this node stored, after the commit (cluster mode publishes them to the other nodes). */
  onStored: ((readings: Reading[]) => void) | undefined

  constructor(readonly history: History, readonly settings: DataSettings, private readonly options: MonitoringOptions) {
    const {clock, events, logger} = options
    this.times = {staleAfterMs: settings.source_stale_after_s * 1000, offlineAfterMs: settings.source_offline_after_s * 1000}
    this.sources = new SourceRegistry(history, () => clock.now().getTime())
    this.commit = new GroupCommit(history, (readings) => this.published(readings))
    this.alerts = new AlertManager(history, events, clock)
    this.hub = new MonitoringStreamHub({clock, heartbeatMs: options.heartbeatMs})
    this.alerts.onReconfigured((change) => this.hub.alert(change))
    this.runner = this.localRunner = new SimulationRunner({
      clock, speed: settings.simulation_speed, sampleIntervalMs: settings.simulation_sample_ms, seed: settings.simulation_seed,
      publish: (reading) => this.store([reading]),
      finished: (status) => logger.info({run: status.run_id, state: status.state, hours: status.current_time_hours}, 'simulation finished'),
    })
    this.ingest = new IngestService(this.commit, {cells: settings.stack_cells, maxBatch: settings.ingest_max_batch, cellsOf: (name) => this.sources.cellsOf(name)}, clock)
    if (options.mqtt) this.mqtt = new MqttSubscriber(options.mqtt, (source, payload) => this.fromMqtt(source, payload), logger)
    if (settings.data_follow_dir) this.follower = new CsvFollower(settings.data_follow_dir, history, (r) => this.published(r), logger)
  }

  /** Reads what lives in the history (alert thresholds, sources, the newest readings); before `start`. */
  async load(): Promise<void> {
    await Promise.all([this.alerts.reload(), this.sources.reload()])
    this.hub.reseed(await this.history.latest(1000))
  }

  /** Starts the background parts: retention, follower, the default simulation. */
  start(): void {
    this.processMetrics.start()
    void this.safely('prune', () => this.history.prune())
    this.pruneTimer = setInterval(() => void this.safely('prune', () => this.history.prune()), 3_600_000)
    this.pruneTimer.unref()
    const every = Math.min(5000, Math.max(200, this.times.staleAfterMs / 2))
    this.silenceTimer = setInterval(() => void this.safely('silence check', () => this.checkSilence()), every)
    this.silenceTimer.unref()
    this.follower?.start()
    void this.mqtt?.start()
    if (this.settings.simulation_autostart) void this.safely('autostart', () => this.runner.start(AUTOSTART_CONFIG))
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

  /**
   * GET /data/latest without a source: the hub holds the newest 1000 stored readings in
   * insertion order (the history's order), so they are served from memory, and the JSON text is
   * built once per limit until the next reading arrives. Undefined: ask the history.
   */
  latestJson(limit: number): string | undefined {
    const version = this.hub.version
    if (this.latestMemo.version !== version) this.latestMemo = {version, texts: new Map()}
    let text = this.latestMemo.texts.get(limit)
    if (text === undefined) {
      const recent = this.hub.recent(limit)
      if (recent === undefined) return undefined
      text = JSON.stringify(recent)
      if (this.latestMemo.texts.size < 16) this.latestMemo.texts.set(limit, text)
    }

    return text
  }

  mqttStatus(): MqttStatus | null {
    return this.mqtt?.status() ?? null
  }

  /** One MQTT message: the ingest body's shapes (a reading, a list, or {"readings": [...]}) under the topic's source. */
  private async fromMqtt(source: string, payload: Buffer): Promise<void> {
    let body: unknown
    try {
      body = JSON.parse(payload.toString('utf8'))
    } catch {
      throw new DataValidationError(`Payload from ${source} is not JSON`, [{loc: ['payload'], msg: 'Invalid JSON', type: 'json_invalid'}], 400)
    }

    const envelope = Array.isArray(body) ? {readings: body} : body !== null && typeof body === 'object' && 'readings' in body ? body : {readings: [body]}
    const named = (envelope as {source?: unknown}).source
    if (named !== undefined && named !== source) throw new DataValidationError(`Payload names source ${JSON.stringify(named).slice(0, 64)} on the topic of ${source}`, [{loc: ['payload', 'source'], msg: 'Source must match the topic', type: 'value_error'}], 400)
    const readings = parseIngestBatch({...envelope, source}, {cells: this.settings.stack_cells, maxBatch: this.settings.ingest_max_batch, cellsOf: (name) => this.sources.cellsOf(name)}, this.options.clock.now())
    await this.commit.submit(readings)
  }

  /** Raises "no data" for sources gone silent (the simulator only while a run goes). */
  checkSilence(): void {
    const running = this.runner.status().is_running
    const expected = this.sources.active().filter((s) => s.name !== 'simulator' || running)
    for (const change of this.alerts.silence(expected, this.times.offlineAfterMs)) this.hub.alert(change)
  }

  /** Every source with its state, newest reading and alerts (GET /sources, the dashboard's overview). */
  async sourceViews(): Promise<SourceView[]> {
    return Promise.all(this.sources.list().map(async (info) => this.view(info)))
  }

  async sourceView(name: string): Promise<SourceView | undefined> {
    const info = this.sources.get(name)
    return info && this.view(info)
  }

  private async view(info: NonNullable<ReturnType<SourceRegistry['get']>>): Promise<SourceView> {
    const latest = this.sources.newestOf(info.name) ?? (await this.history.latest(1, info.name))[0] ?? null
    return {...info, ...this.sources.state(info.name, this.times), latest, alerts: this.alerts.list(info.name)}
  }

  async metricsText(): Promise<string> {
    const historyReadings = await this.history.count()
    return renderMetrics({
      latest: this.hub.latestBySource(), alerts: this.alerts.list(), certificates: this.certificates(), requests: this.requests,
      streamClients: this.hub.clientCount, streamDropped: this.hub.dropped, historyReadings,
      ingested: this.ingested, commits: {commits: this.commit.commits, batches: this.commit.batches}, simulation: this.runner.status(), mqtt: this.mqtt?.status(),
    }) + this.processMetrics.render()
  }

  /**
   * Reopens the history database and rereads what lives in it (alert thresholds, the readings
   * new stream clients get first, the follower's offsets). SIGHUP calls this: `mfc restore`
   * renames a new history.sqlite into place and must not leave serve writing to the old one.
   * Returns false (and logs) when the database cannot be opened; the next call retries.
   */
  async reload(): Promise<boolean> {
    if (this.closed) return false
    let ok = false
    await this.safely('reopen', async () => {
      await this.history.reopen()
      await this.load()
      this.follower?.forget()
      this.options.logger.info({file: this.history.file, readings: await this.history.count()}, 'history database reopened')
      ok = true
    })
    return ok
  }

  /** Idempotent: stops the run, timers and clients, commits what was submitted, then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.processMetrics.stop()
    void this.runner.close()
    this.follower?.close()
    void this.mqtt?.close()
    clearInterval(this.pruneTimer)
    clearInterval(this.silenceTimer)
    this.hub.close()
    await this.commit.drain()
    await this.history.close()
  }

  /** The simulator's readings share the group commit with ingest (published once durable). */
  private store(readings: Reading[]): void {
    void this.safely('store', () => this.commit.submit(readings))
  }

  private published(readings: Reading[]): void {
    this.ingested += readings.reduce((n, r) => n + (reservedSource(r.source) ? 0 : 1), 0)
    this.show(readings)
    this.onStored?.(readings)
  }

  /** Readings another node of the cluster stored: shown, counted and checked like this node's own, not stored again. */
  fromPeer(readings: Reading[]): void {
    if (!this.closed) this.show(readings)
  }

  /** A cluster catch-up left readings out (its cap): the stream clients are told the range. */
  catchUpGap(gap: {missed: number; from: string; to: string}): void {
    if (!this.closed) this.hub.gap(gap)
  }

  private show(readings: Reading[]): void {
    this.sources.arrived(readings)
    for (const reading of readings) for (const change of this.alerts.evaluate(reading)) this.hub.alert(change)
    this.hub.publish(readings)
  }

  private async safely(what: string, work: () => unknown): Promise<void> {
    try {
      await work()
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
  reload(): Promise<boolean>
  close(): Promise<void>
}

/**
 * Creates history + simulator + alerts + hub and returns the monitoring (for the routes) and the
 * hub for the streamer. The caller starts the servers, then calls `monitoring.start()`.
 */
export async function createMonitoring(options: MonitoringOptions): Promise<MonitoringWiring> {
  const settings = {...DEFAULT_DATA_SETTINGS, ...options.settings}
  const retention = {retentionDays: settings.data_retention_days, clock: options.clock}
  const history = await (options.openHistory ? options.openHistory(retention) : openHistory(options.historyDb, retention))
  const monitoring = new Monitoring(history, settings, options)
  try {
    await monitoring.load()
  } catch (error) {
    await monitoring.close()
    throw error
  }

  return {
    hub: monitoring.hub,
    monitoring,
    reload: async () => monitoring.reload(),
    close: async () => monitoring.close(),
  }
}

/**
 * `createMonitoring` from the resolved config: the history in `paths.historyDb`, the data keys
 * of ssl-config.json. `certificate` returns the served certificate's notAfter (or undefined
 * before the TLS context has loaded).
 */
export async function createMonitoringFor(config: MfcConfig, deps: {logger: Logger; events: MfcEventBus; certificate?: () => Date | undefined; openHistory?: MonitoringOptions['openHistory']}): Promise<MonitoringWiring> {
  const settings = dataSettings(config)
  return createMonitoring({
    historyDb: config.paths.historyDb,
    openHistory: deps.openHistory,
    settings,
    clock: systemClock,
    events: deps.events,
    logger: deps.logger,
    mqtt: await mqttOptions(settings, config),
    certificates() {
      const notAfter = deps.certificate?.()
      return notAfter ? [{name: config.settings.domain, notAfter}] : []
    },
  })
}
