import {Readable} from 'node:stream'

import type {FastifyError, FastifyInstance, FastifyReply, FastifyRequest} from 'fastify'

import type {MfcError} from '../../lib/errors.js'
import {CONTENT_TYPES, EXPORT_FORMATS, type ExportFormat, exportChunks, exportFileName} from './export.js'
import {BUCKET_FIELDS, MAX_BUCKETS, MAX_QUERY_LIMIT} from './history-types.js'
import type {Monitoring} from './monitoring.js'
import {ALERTABLE, DataValidationError} from './reading.js'
import type {ApiPlugin} from './server-types.js'
import {parseSimulationConfig} from './simulation-runner.js'
import {addFastJsonRoute, onEveryResponse} from '../servers/http-app.js'
import type {ErrorAnswer} from '../servers/types.js'
import {proxiedStreamUrl} from '../servers/proxy.js'

/** Largest accepted ingest body; the batch-size check gives the precise reason below it. */
const INGEST_BODY_LIMIT = 32 * 1024 * 1024
/** Bodies up to this size may take the fast path; fastify's per-request cost matters only for small ones. */
const INGEST_FAST_MAX_BYTES = 64 * 1024

/**
 * Counts every response of the server it is registered on (skip-override makes the hook apply
 * to the whole app, not just this plugin's scope, exactly what fastify-plugin would do).
 */
export function requestCounter(monitoring: Pick<Monitoring, 'requests'>): ApiPlugin {
  const plugin = async (app: FastifyInstance) => {
    // Counted when the response is sent (its status is final then), /health's fast path included.
    onEveryResponse(app, (method, route, status) => monitoring.requests.record(method, route, status))
  }

  return Object.assign(plugin, {[Symbol.for('skip-override')]: true})
}

function detail(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(body)
}

/**
 * The data routes' answer to an error, in FastAPI's `{"detail": ...}` shape; a client's
 * mistake is never a 500. One function for the fastify error handler and the ingest fast path.
 */
export function dataErrorAnswer(error: FastifyError | Error): ErrorAnswer {
  // Matched by stable code, not instanceof: a code reload or a second copy of a module must not
  // turn a client's mistake into a 500.
  const {code} = error as MfcError
  if (code === 'MFC_DATA_INVALID') {
    const invalid = error as DataValidationError
    return {status: invalid.status, body: {detail: invalid.status === 422 ? invalid.issues : invalid.message, issues: invalid.issues}}
  }

  if (code === 'MFC_DATA_CONFLICT') return {status: 409, body: {detail: error.message, suggestions: (error as MfcError).suggestions}}
  if (code === 'MFC_HISTORY_UNAVAILABLE') {
    // The shared PostgreSQL is down or restarting: nothing of the request was stored, so a
    // client that retries after Retry-After loses nothing (the dedupe key makes retries safe).
    const retryAfter = String((error as MfcError & {retryAfterSeconds?: number}).retryAfterSeconds ?? 5)
    return {status: 503, headers: {'retry-after': retryAfter}, body: {detail: 'The history database is unreachable; nothing was stored. Retry after the Retry-After seconds.', code}}
  }

  if (code === 'MFC_HISTORY_IO') return {status: 503, body: {detail: 'The history database is unavailable; see the server log'}}
  if (code === 'MFC_CLUSTER_UNAVAILABLE') return {status: 503, headers: {'retry-after': '5'}, body: {detail: error.message, suggestions: (error as MfcError).suggestions}}
  const status = (error as FastifyError).statusCode
  if (status && status >= 400 && status < 500) return {status, body: {detail: error.message}}
  return {status: 500, body: {detail: 'Internal server error'}}
}

function handleError(this: FastifyInstance, error: FastifyError | Error, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const {status, headers, body} = dataErrorAnswer(error)
  if (headers) reply.headers(headers)
  return detail(reply, status, body)
}

function queryInt(query: Record<string, string | undefined>, key: string, fallback: number, max: number): number {
  const raw = query[key]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!/^\d+$/.test(raw) || value < 1 || value > max) {
    throw new DataValidationError(`Query parameter ${key} must be a whole number from 1 to ${max}`, [{loc: ['query', key], msg: `Input should be a whole number from 1 to ${max}`, type: 'int_parsing', input: raw}])
  }

  return value
}

function queryTime(query: Record<string, string | undefined>, key: string): number | undefined {
  const raw = query[key]
  if (raw === undefined || raw === '') return undefined
  const value = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (!Number.isFinite(value)) {
    throw new DataValidationError(`Query parameter ${key} must be an ISO 8601 time or milliseconds since 1970`, [{loc: ['query', key], msg: 'Input should be a valid datetime', type: 'datetime_parsing', input: raw}])
  }

  return value
}

function rangeOf(query: Record<string, string | undefined>) {
  return {from: queryTime(query, 'from'), to: queryTime(query, 'to'), source: query.source || undefined, runId: query.simulation_id || query.run_id || undefined}
}

type Query = {Querystring: Record<string, string | undefined>}

const SOURCE_PATTERN = String.raw`^[\w.:@-]{1,64}$`
const TIME_PATTERN = String.raw`^(\d{1,15}|\d{4}-\d{2}-\d{2}[0-9T:.+\-Z]{0,30})$`
/** GET /data/history: fastify validates (400 with the reason) before the handler runs. */
const HISTORY_SCHEMA = {
  querystring: {
    type: 'object', required: ['source', 'from', 'to'],
    properties: {
      source: {type: 'string', pattern: SOURCE_PATTERN},
      from: {type: 'string', pattern: TIME_PATTERN},
      to: {type: 'string', pattern: TIME_PATTERN},
      buckets: {type: 'integer', minimum: 1, maximum: MAX_BUCKETS},
    },
  },
}
const NAME_SCHEMA = {params: {type: 'object', required: ['name'], properties: {name: {type: 'string', pattern: SOURCE_PATTERN}}}}

/**
 * Buckets of a downsampled read: `buckets` wide (default 600, about a chart's width in
 * pixels), each at least 1 s, so an hour of 1 Hz data comes back as it was stored.
 */
async function historyOf(monitoring: Monitoring, query: Record<string, string | undefined>) {
  const {from, to} = {from: queryTime(query, 'from')!, to: queryTime(query, 'to')!}
  if (!(to > from)) throw new DataValidationError('"to" must be after "from"', [{loc: ['query', 'to'], msg: 'Input should be after from', type: 'value_error', input: query.to}], 400)
  const wanted = Number(query.buckets ?? 600)
  let bucketMs = Math.max(1000, Math.ceil((to - from + 1) / wanted))
  let start = from
  // Buckets of a minute or more are whole minutes from a minute boundary: served from the
  // per-minute rollups, so a month costs what an hour does.
  if (bucketMs >= 60_000) {
    bucketMs = Math.ceil(bucketMs / 60_000) * 60_000
    start = Math.floor(from / 60_000) * 60_000
  }

  const source = query.source!
  return {source, from: start, to, bucket_ms: bucketMs, fields: BUCKET_FIELDS, buckets: await monitoring.history.buckets({source, from: start, to, bucketMs})}
}

function unknownSource(name: string): DataValidationError {
  return new DataValidationError(`Unknown source "${name}"`, [{loc: ['path', 'name'], msg: 'No such source; GET /sources lists them', type: 'not_found', input: name}], 400)
}

/**
 * The original's monitoring endpoints (§4.3), working: simulation control, latest/range data,
 * streamed exports, performance metrics, alert config, ingest, Prometheus /metrics, plus the
 * dashboard's info endpoint. Registered by the API server after its auth/security layers.
 */
export function dataRoutes(monitoring: Monitoring): ApiPlugin {
  const routes = async (app: FastifyInstance) => {
    app.setErrorHandler(handleError)
    const now = () => new Date().toISOString()

    app.get('/simulation/status', async () => monitoring.runner.status())
    app.post('/simulation/start', async (request) => {
      const config = parseSimulationConfig(request.body)
      const status = await monitoring.runner.start(config)
      return {status: 'started', message: 'Simulation started successfully', config, run_id: status.run_id, simulation: status, timestamp: now()}
    })
    app.post('/simulation/stop', async () => {
      const wasRunning = monitoring.runner.status().is_running
      const status = await monitoring.runner.stop()
      return {status: 'stopped', message: wasRunning ? 'Simulation stopped successfully' : 'No simulation was running', simulation: status, timestamp: now()}
    })

    app.get<Query>('/data/latest', async (request, reply) => {
      const limit = queryInt(request.query, 'limit', 100, MAX_QUERY_LIMIT)
      const source = request.query.source || undefined
      const memo = source === undefined ? monitoring.latestJson(limit) : undefined
      return memo === undefined ? monitoring.history.latest(limit, source) : reply.type('application/json; charset=utf-8').send(memo)
    })
    app.get<Query>('/data/history', {schema: HISTORY_SCHEMA}, async (request) => historyOf(monitoring, request.query))

    app.get('/sources', async () => ({sources: await monitoring.sourceViews(), stale_after_s: monitoring.settings.source_stale_after_s, offline_after_s: monitoring.settings.source_offline_after_s}))
    app.get<{Params: {name: string}}>('/sources/:name', {schema: NAME_SCHEMA}, async (request, reply) => {
      const view = await monitoring.sourceView(request.params.name)
      return view ?? detail(reply, 404, {detail: unknownSource(request.params.name).message, suggestions: ['GET /sources lists the sources; PUT /sources/NAME registers one']})
    })
    app.put<{Params: {name: string}}>('/sources/:name', {schema: NAME_SCHEMA}, async (request) => ({status: 'registered', source: await monitoring.sources.register(request.params.name, request.body)}))
    app.get<Query>('/data/range', async (request) => monitoring.history.range({...rangeOf(request.query), limit: queryInt(request.query, 'limit', 1000, MAX_QUERY_LIMIT)}))
    app.get<Query & {Params: {format: string}}>('/data/export/:format', async (request, reply) => {
      const format = request.params.format.toLowerCase()
      if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new DataValidationError('Unsupported export format; use csv or json', [{loc: ['path', 'format'], msg: 'Input should be csv or json', type: 'enum', input: request.params.format}], 400)
      const range = rangeOf(request.query)
      if ((await monitoring.history.range({...range, limit: 1})).length === 0) return detail(reply, 404, {detail: 'No data to export for this range'})
      const name = exportFileName(format as ExportFormat, {now: () => new Date()})
      return reply
        .type(CONTENT_TYPES[format as ExportFormat])
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(exportChunks(monitoring.history, format as ExportFormat, range)))
    })

    app.get('/metrics/performance', async (request, reply) => {
      const metrics = monitoring.runner.metrics()
      if (!metrics) return detail(reply, 404, {detail: 'No simulation has run yet; start one with POST /simulation/start'})
      return {...metrics, energy_efficiency: null, stability_score: null}
    })

    app.get<Query>('/alerts/config', async (request) => ({
      ...monitoring.alerts.config(request.query.source || undefined), active: monitoring.alerts.active(request.query.source || undefined), parameters: ALERTABLE,
    }))
    app.post<Query>('/alerts/config', async (request) => monitoring.alerts.update(request.body, request.query.source || undefined))
    app.delete<Query>('/alerts/config', async (request) => {
      const {source, parameter} = request.query
      if (!source) throw new DataValidationError('DELETE /alerts/config needs ?source=NAME (and optionally &parameter=NAME): only a source\'s own thresholds can be removed', [{loc: ['query', 'source'], msg: 'Field required', type: 'missing'}], 400)
      return monitoring.alerts.clearOverride(source, parameter || undefined)
    })
    app.get<Query>('/alerts', async (request) => ({alerts: monitoring.alerts.list(request.query.source || undefined)}))

    app.post('/data/ingest', {bodyLimit: INGEST_BODY_LIMIT}, async (request) => monitoring.ingest.ingest(request.body))
    // The same route answered before fastify when it can (a rig posting one reading at a time;
    // see fast-route.ts); `ingest_fast_path: false` sends every request through fastify.
    if (monitoring.settings.ingest_fast_path) {
      addFastJsonRoute(app, {url: '/data/ingest', maxBytes: INGEST_FAST_MAX_BYTES, handle: async (body) => monitoring.ingest.ingest(body), errorAnswer: dataErrorAnswer})
    }

    app.get('/mqtt/status', async () => ({configured: monitoring.mqtt !== undefined, ...monitoring.mqttStatus()}))

    app.get('/metrics', async (request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await monitoring.metricsText()))

    // stream.url: the proxy's /ws/ when this page came through a trusted proxy (see proxy.ts),
    // the same decision as the page's CSP; null: the page connects to `port` on its own host.
    app.get('/dashboard/info', async (request) => ({
      certificates: monitoring.certificates().map((c) => ({name: c.name, not_after: c.notAfter.toISOString(), days_left: Math.floor((c.notAfter.getTime() - Date.now()) / 86_400_000)})),
      stream: {port: monitoring.streamPort ?? null, url: request.mfcProxyOrigin ? proxiedStreamUrl(request.mfcProxyOrigin) : null, clients: monitoring.hub.clientCount},
      services: monitoring.services(),
      history: {readings: await monitoring.history.count(), retention_days: monitoring.history.retentionDays},
      simulation: monitoring.runner.status(),
      timestamp: now(),
    }))
  }

  return routes
}

/** Both plugins, in order: the counter (whole app), then the routes (their own scope). */
export function dataPlugins(monitoring: Monitoring): ApiPlugin[] {
  return [requestCounter(monitoring), dataRoutes(monitoring)]
}
