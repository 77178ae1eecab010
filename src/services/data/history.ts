import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'
import {parentPort, Worker, workerData} from 'node:worker_threads'

import type {Database as Db, Statement} from 'better-sqlite3'

import type {Clock} from '../../lib/clock.js'
import {type Bucket, type BucketQuery, BUCKET_FIELDS, type History, type InsertOptions, type RangeQuery, type SourceInfo, type SourceRegistration} from './history-types.js'
import {addToRollup, AGGREGATES, BUCKET_ALIASES, clampLimit, fromRow, HistoryError, MIGRATION_1, MIGRATION_2, PAGE, ROLLUP_BUCKETS, ROLLUP_UPSERT, type Row, SCHEMA, toRow} from './history-schema.js'
import type {Reading} from './reading.js'

export {MAX_QUERY_LIMIT} from './history-types.js'
export type {History, RangeQuery} from './history-types.js'
export {HistoryError} from './history-schema.js'
/** The name the rest of the code has used for the role; kept so existing callers read the same. */
export type HistoryStore = History

type DatabaseClass = typeof import('better-sqlite3')

/** Rows per part of a large insert handed to the writer thread (see SqliteHistory.insert). */
const INSERT_PART = 100

/** Opens the write connection: WAL, every commit fsynced (synchronous=FULL), schema migrated. */
function connect(Database: DatabaseClass, file: string): Db {
  let db: Db | undefined
  try {
    mkdirSync(dirname(file), {recursive: true, mode: 0o700})
    db = new Database(file)
    db.pragma('journal_mode = WAL')
    // FULL in WAL mode fsyncs the log at each commit: an acknowledged batch survives power loss.
    db.pragma('synchronous = FULL')
    db.pragma('busy_timeout = 5000')
    db.exec(SCHEMA)
    migrate(db)
    return db
  } catch (error) {
    db?.close()
    throw new HistoryError(`Cannot open the history database ${file}: ${(error as Error).message}`, file, error)
  }
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', {simple: true}) as number
  if (version >= 2) return
  db.transaction(() => {
    if (version < 1) db.exec(MIGRATION_1)
    db.exec(MIGRATION_2)
    db.pragma('user_version = 2')
  }).immediate()
}

/** What the main thread asks of the writer thread; each gets one reply with its id. */
type WriteRequest =
  | {op: 'insert'; rows: unknown[][]; setting?: {key: string; value: string}}
  // The leading parts of the next insert (InsertParts): no reply of their own; that insert's reply answers for them.
  | {op: 'part'; rows: unknown[][]}
  // The parts sent so far are void (the sender failed before sending their insert).
  | {op: 'abort'}
  | {op: 'putSource'; registration: SourceRegistration}
  | {op: 'putSetting'; key: string; value: string}
  | {op: 'prune'; cutoff: number}
  | {op: 'close'}
type WriteReply = {id: number; ok: true; result: unknown} | {id: number; ok: false; message: string}

/**
 * The writer thread's side (started by history-writer.ts): owns the one write connection and
 * runs each request to its commit, in the order they were posted, then replies. An insert
 * replies with the indices of the rows it stored (null: all of them).
 */
export async function serveWrites(): Promise<void> {
  const {file} = workerData as {file: string}
  const port = parentPort!
  let db: Db
  try {
    const {default: Database} = await import('better-sqlite3')
    db = connect(Database, file)
  } catch (error) {
    port.postMessage({ready: false, message: (error as Error).message})
    return
  }

  const run = writer(db)
  port.postMessage({ready: true})
  port.on('message', ({id, ...request}: WriteRequest & {id: number}) => {
    if (request.op === 'part' || request.op === 'abort') return void run(request)
    let reply: WriteReply
    try {
      reply = {id, ok: true, result: run(request)}
    } catch (error) {
      reply = {id, ok: false, message: (error as Error).message}
    }

    port.postMessage(reply)
    if (request.op === 'close' && reply.ok) port.close()
  })
}

type InsertStatements = Record<'insert' | 'touch' | 'rollup' | 'put', Statement>

/**
 * One insert's work inside its transaction: the rows (a duplicate (source, ts, seq) is skipped),
 * then each source's counters and each minute's rollup once, and the optional setting. Rows may
 * come in several `add`s (an insert sent in parts); indices count across them.
 */
class InsertRun {
  private stored: number[] | null = null
  private count = 0
  private readonly touched = new Map<string, {name: string; cells: number | null; first: number; last: number; n: number}>()
  private readonly minutes = new Map<string, Record<string, number | string | null>>()

  constructor(private readonly s: InsertStatements) {}

  add(rows: unknown[][]): this {
    for (const row of rows) {
      const i = this.count++
      if (this.s.insert.run(row).changes === 0) {
        this.stored ??= Array.from({length: i}, (_, k) => k)
        continue
      }

      this.stored?.push(i)
      const [ts, source] = row as [number, string]
      addToRollup(this.minutes, source, row)
      const seen = this.touched.get(source)
      if (seen) Object.assign(seen, {first: Math.min(seen.first, ts), last: Math.max(seen.last, ts), n: seen.n + 1})
      else this.touched.set(source, {name: source, cells: cellCount(row[11] as string), first: ts, last: ts, n: 1})
    }

    return this
  }

  /** Writes the counters, rollups and setting; returns the indices of the rows stored (null: all). */
  finish(setting?: {key: string; value: string}): number[] | null {
    for (const t of this.touched.values()) this.s.touch.run(t)
    for (const m of this.minutes.values()) this.s.rollup.run(m)
    if (setting) this.s.put.run(setting.key, setting.value)
    return this.stored
  }
}

function writer(db: Db): (request: WriteRequest) => unknown {
  const s = {
    insert: db.prepare(`INSERT INTO readings (ts, source, run_id, time_hours, reservoir, outlet, total_power, addition, q_action, epsilon, reward, cells, seq, voltage_mean)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, ts, seq) DO NOTHING`),
    touch: db.prepare(`INSERT INTO sources (name, cells, first_seen, last_seen, readings) VALUES (@name, @cells, @first, @last, @n)
      ON CONFLICT (name) DO UPDATE SET cells = coalesce(cells, excluded.cells), first_seen = min(coalesce(first_seen, excluded.first_seen), excluded.first_seen),
      last_seen = max(coalesce(last_seen, excluded.last_seen), excluded.last_seen), readings = readings + excluded.readings`),
    rollup: db.prepare(ROLLUP_UPSERT),
    put: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    register: db.prepare(`INSERT INTO sources (name, cells, description, location) VALUES (@name, @cells, @description, @location)
      ON CONFLICT (name) DO UPDATE SET cells = CASE WHEN @setCells THEN excluded.cells ELSE cells END,
      description = CASE WHEN @setDescription THEN excluded.description ELSE description END,
      location = CASE WHEN @setLocation THEN excluded.location ELSE location END`),
    source: db.prepare('SELECT * FROM sources WHERE name = ?'),
    pruned: db.prepare('SELECT source, count(*) AS n, (SELECT min(ts) FROM readings r2 WHERE r2.source = readings.source AND r2.ts >= @cutoff) AS first FROM readings WHERE ts < @cutoff GROUP BY source'),
    forget: db.prepare('UPDATE sources SET readings = max(0, readings - @n), first_seen = @first, last_seen = CASE WHEN @first IS NULL THEN NULL ELSE last_seen END WHERE name = @name'),
    rollupPrune: db.prepare('DELETE FROM rollup_1m WHERE minute < ?'),
    prune: db.prepare('DELETE FROM readings WHERE ts < ?'),
  }
  const insert = db.transaction((rows: unknown[][], setting?: {key: string; value: string}) => new InsertRun(s).add(rows).finish(setting))
  const begin = db.prepare('BEGIN')
  const commit = db.prepare('COMMIT')
  const rollback = db.prepare('ROLLBACK')
  // An insert arriving in parts: its transaction is open from the first part to its insert's
  // commit. The parts and their insert are posted in one synchronous run on the main thread, so
  // nothing else comes between them. A part that fails rolls back at once; the insert then fails.
  let parts: InsertRun | undefined
  let failed: string | undefined
  const abandon = () => {
    parts = undefined
    if (db.inTransaction) rollback.run()
  }

  const finishInsert = (rows: unknown[][], setting?: {key: string; value: string}): number[] | null => {
    if (failed !== undefined) {
      const message = failed
      failed = undefined
      abandon()
      throw new Error(message)
    }

    if (!parts) return insert(rows, setting)
    const run = parts
    parts = undefined
    try {
      const stored = run.add(rows).finish(setting)
      commit.run()
      return stored
    } catch (error) {
      if (db.inTransaction) rollback.run()
      throw error
    }
  }

  const prune = db.transaction((cutoff: number) => {
    const gone = s.pruned.all({cutoff}) as {source: string; n: number; first: number | null}[]
    for (const g of gone) s.forget.run({name: g.source, n: g.n, first: g.first})
    // Minutes wholly before the cutoff; a minute straddling it keeps its rollup until the next prune.
    s.rollupPrune.run(Math.floor(cutoff / 60_000) * 60_000)
    return s.prune.run(cutoff).changes
  })
  return (request) => {
    switch (request.op) {
      case 'insert': return finishInsert(request.rows, request.setting)
      case 'part': {
        if (failed !== undefined) return
        try {
          if (!parts) {
            begin.run()
            parts = new InsertRun(s)
          }

          parts.add(request.rows)
        } catch (error) {
          abandon()
          failed = (error as Error).message
        }

        return
      }

      case 'abort': {
        abandon()
        failed = undefined
        return
      }

      case 'putSetting': return void s.put.run(request.key, request.value)
      case 'prune': return prune(request.cutoff)
      case 'close': return void db.close()
      case 'putSource': {
        const r = request.registration
        const has = (key: keyof SourceRegistration) => (r[key] === undefined ? 0 : 1)
        s.register.run({name: r.name, cells: r.cells ?? null, description: r.description ?? null, location: r.location ?? null,
          setCells: has('cells'), setDescription: has('description'), setLocation: has('location')})
        return s.source.get(r.name)
      }
    }
  }
}

/** A source's cell count from its first stored row (toRow's cells JSON): voltages, powers, else biofilm. */
function cellCount(cells: string): number | null {
  const c = JSON.parse(cells) as {b: number[]; v: number[] | null; p: number[] | null}
  const n = c.v?.length ?? c.p?.length ?? c.b.length
  return n > 0 ? n : null
}

/**
 * The main thread's handle on one writer thread. A request is acknowledged only by the reply
 * the thread sends after its commit returned; if the thread dies, every pending request is
 * rejected (never acknowledged) and the handle is dead, so the store starts a new thread.
 */
class WriterThread {
  dead = false
  private readonly pending = new Map<number, {resolve: (value: unknown) => void; reject: (error: unknown) => void}>()
  private nextId = 0
  private failure = ''

  private constructor(private readonly worker: Worker, private readonly file: string) {
    worker.on('message', (reply: WriteReply) => this.settle(reply))
    worker.on('error', (error) => {
      this.failure = `: ${error.message}`
    })
    worker.on('exit', (code) => {
      this.dead = true
      const error = new HistoryError(`The history writer of ${this.file} stopped (exit code ${code}${this.failure}); the writes in flight were not acknowledged, retry them`, this.file)
      for (const p of this.pending.values()) p.reject(error)
      this.pending.clear()
    })
    worker.unref()
  }

  static async start(file: string): Promise<WriterThread> {
    // Under tsx (tests, benchmarks) the entry is TypeScript: the thread registers tsx's loader first.
    const entry = new URL(`./history-writer${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)
    const worker = entry.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then(({register}) => { register(); return import(${JSON.stringify(entry.href)}) })`, {eval: true, workerData: {file}})
      : new Worker(entry, {workerData: {file}})
    const ready = await new Promise<{ready: boolean; message?: string}>((resolve) => {
      worker.once('message', resolve)
      worker.once('exit', (code) => resolve({ready: false, message: `the writer thread exited (code ${code})`}))
    })
    if (!ready.ready) {
      await worker.terminate()
      throw new HistoryError(ready.message!.startsWith('Cannot open') ? ready.message! : `Cannot open the history database ${file}: ${ready.message}`, file)
    }

    return new WriterThread(worker, file)
  }

  call<T>(request: WriteRequest): Promise<T> {
    if (this.dead) return Promise.reject(new HistoryError(`The history writer of ${this.file} has stopped`, this.file))
    const id = this.nextId++
    if (this.pending.size === 0) this.worker.ref()
    this.worker.postMessage({id, ...request})
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {resolve: resolve as (value: unknown) => void, reject})
    })
  }

  /** A request the next `call` answers for (an insert's leading parts, or their abort): no reply of its own. */
  send(request: Extract<WriteRequest, {op: 'part' | 'abort'}>): void {
    if (!this.dead) this.worker.postMessage({id: -1, ...request})
  }

  /** Test hook: ends the thread as a crash would (pending writes are rejected). */
  async kill(): Promise<void> {
    await this.worker.terminate()
  }

  private settle(reply: WriteReply): void {
    const p = this.pending.get(reply.id)
    if (!p) return
    this.pending.delete(reply.id)
    if (this.pending.size === 0) this.worker.unref()
    if (reply.ok) p.resolve(reply.result)
    else p.reject(new HistoryError(`Cannot write the history database ${this.file}: ${reply.message}`, this.file))
  }
}

type ReadName = 'latest' | 'latestOf' | 'page' | 'pageOf' | 'count' | 'get' | 'buckets' | 'sources' | 'source' | 'rollupBuckets'

function readStatements(db: Db): Record<ReadName, Statement> {
  return {
    latest: db.prepare('SELECT * FROM (SELECT * FROM readings ORDER BY id DESC LIMIT ?) ORDER BY id'),
    latestOf: db.prepare('SELECT * FROM (SELECT * FROM readings WHERE source = ? ORDER BY ts DESC, seq DESC LIMIT ?) ORDER BY ts, seq'),
    page: db.prepare(`SELECT * FROM readings WHERE id > @after AND ts >= @from AND ts <= @to
      AND (@run IS NULL OR run_id = @run) ORDER BY id LIMIT @limit`),
    pageOf: db.prepare(`SELECT * FROM readings WHERE source = @source AND (ts, seq) > (@afterTs, @afterSeq) AND ts >= @from AND ts <= @to
      AND (@run IS NULL OR run_id = @run) ORDER BY ts, seq LIMIT @limit`),
    count: db.prepare('SELECT count(*) AS n FROM readings'),
    get: db.prepare('SELECT value FROM settings WHERE key = ?'),
    buckets: db.prepare(`SELECT CAST((ts - @from) / @width AS INTEGER) AS b, count(*) AS n, ${AGGREGATES} FROM readings
      WHERE source = @source AND ts >= @from AND ts <= @to GROUP BY b ORDER BY b`),
    sources: db.prepare('SELECT * FROM sources ORDER BY name'),
    source: db.prepare('SELECT * FROM sources WHERE name = ?'),
    rollupBuckets: db.prepare(ROLLUP_BUCKETS),
  }
}

/** Opens (creating or migrating if needed) the SQLite history; better-sqlite3 is loaded only here, lazily. */
export async function openHistory(file: string, options: {retentionDays: number; clock: Clock}): Promise<History> {
  const {default: Database} = await import('better-sqlite3')
  const history = new SqliteHistory(Database, file, options.retentionDays, options.clock)
  await history.reopen()
  return history
}

/**
 * The SQLite adapter. Writes go to a writer thread that owns the write connection, so a commit's
 * fsync never stalls the event loop (requests keep being parsed and the next group commit
 * gathers meanwhile). Reads run here, on a read-only connection: WAL lets them proceed while
 * the writer commits, and they see every commit whose reply has arrived.
 */
class SqliteHistory implements History {
  private reader: Db | undefined
  private statements!: Record<ReadName, Statement>
  private writer: Promise<WriterThread> | undefined
  /** The writer promise of the last restart after a crash (retried by the next write if it fails). */
  private restart: Promise<WriterThread> | undefined
  private closed = true

  constructor(private readonly Database: DatabaseClass, readonly file: string, readonly retentionDays: number, private readonly clock: Clock) {}

  async insert(readings: readonly Reading[], options: InsertOptions = {}): Promise<Reading[]> {
    const rows = (from: number, to: number) => {
      const part: unknown[][] = []
      for (let i = from; i < to; i++) part.push(toRow(readings[i], options.seqs?.[i] ?? 0))
      return part
    }

    const writer = await this.thread()
    // A large batch goes over in parts: the writer thread inserts the first rows (in the open
    // transaction) while this thread converts the next, instead of waiting for all of them.
    let from = 0
    try {
      for (; readings.length - from > INSERT_PART; from += INSERT_PART) writer.send({op: 'part', rows: rows(from, from + INSERT_PART)})
    } catch (error) {
      if (from > 0) writer.send({op: 'abort'})
      throw error
    }

    const stored = await writer.call<number[] | null>({op: 'insert', rows: rows(from, readings.length), setting: options.setting})
    return stored === null ? [...readings] : stored.map((i) => readings[i])
  }

  async latest(limit: number, source?: string): Promise<Reading[]> {
    return this.read(() => (source === undefined
      ? this.statements.latest.all(clampLimit(limit))
      : this.statements.latestOf.all(source, clampLimit(limit)) as Row[]).map((row) => fromRow(row as Row)))
  }

  async range(query: RangeQuery): Promise<Reading[]> {
    const limit = clampLimit(query.limit ?? 1000)
    return this.read(() => this.page(query, undefined, limit).map(fromRow))
  }

  async * pages(query: Omit<RangeQuery, 'limit'> = {}): AsyncGenerator<Reading[]> {
    let after: Row | undefined
    for (;;) {
      const rows = this.read(() => this.page(query, after, PAGE))
      if (rows.length === 0) return
      after = rows.at(-1)!
      yield rows.map(fromRow)
      if (rows.length < PAGE) return
    }
  }

  async buckets(query: BucketQuery): Promise<Bucket[]> {
    const width = Math.max(1, Math.trunc(query.bucketMs))
    const from = Math.trunc(query.from)
    // Whole minutes from a minute boundary: the rollups hold exactly these buckets' aggregates.
    const statement = width % 60_000 === 0 && from % 60_000 === 0 ? this.statements.rollupBuckets : this.statements.buckets
    const rows = this.read(() => statement.all({source: query.source, from, to: Math.trunc(query.to), width})) as Record<string, number | null>[]
    return rows.map((row) => {
      const values = Object.fromEntries(BUCKET_FIELDS.map((field, i) => {
        const alias = BUCKET_ALIASES[i]
        const min = row[`${alias}_min`]
        return [field, min === null ? null : [min, row[`${alias}_max`]!, row[`${alias}_mean`]!]]
      })) as Bucket['values']
      return {t: from + (row.b as number) * width, n: row.n as number, values}
    })
  }

  async sources(): Promise<SourceInfo[]> {
    return this.read(() => this.statements.sources.all() as SourceInfo[])
  }

  async source(name: string): Promise<SourceInfo | undefined> {
    return this.read(() => this.statements.source.get(name) as SourceInfo | undefined)
  }

  async putSource(registration: SourceRegistration): Promise<SourceInfo> {
    return this.write<SourceInfo>({op: 'putSource', registration})
  }

  async count(): Promise<number> {
    return this.read(() => (this.statements.count.get() as {n: number}).n)
  }

  async prune(): Promise<number> {
    if (this.retentionDays <= 0) return 0
    return this.write<number>({op: 'prune', cutoff: this.clock.now().getTime() - this.retentionDays * 86_400_000})
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.read(() => (this.statements.get.get(key) as {value: string} | undefined)?.value)
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.write({op: 'putSetting', key, value})
  }

  /**
   * A new writer thread (after the old one committed what it was given and closed), then a new
   * reader. Set synchronously, so every write submitted after this call waits for the new file.
   */
  async reopen(): Promise<void> {
    const previous = this.writer
    this.closed = false
    const next = (async () => {
      // The reader first: the writer closing last checkpoints the WAL into the file (a restore
      // moves only the main file).
      this.closeReader()
      await this.closeWriter(previous)
      const writer = await WriterThread.start(this.file)
      try {
        this.openReader()
      } catch (error) {
        await writer.call({op: 'close'}).catch(() => undefined)
        throw error
      }

      return writer
    })()
    this.writer = next
    await next
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const writer = this.writer
    this.writer = undefined
    this.closeReader()
    await this.closeWriter(writer)
  }

  /** Test hook: the writer thread dies as on a crash (see WriterThread.kill). */
  async killWriter(): Promise<void> {
    await (await this.writer)?.kill()
  }

  private async write<T>(request: WriteRequest): Promise<T> {
    return (await this.thread()).call<T>(request)
  }

  /** The live writer thread: a new one if the last died (or its restart failed). */
  private async thread(): Promise<WriterThread> {
    if (this.closed) throw new HistoryError(`The history database ${this.file} is closed`, this.file)
    if (!this.writer) {
      this.restart = WriterThread.start(this.file)
      this.writer = this.restart
    }

    const current = this.writer
    const writer = await current.catch((error: unknown) => {
      // A restart that failed is tried again by the next write; a failed (re)open stays failed until reopen().
      if (this.restart === current && this.writer === current) this.writer = undefined
      throw error
    })
    if (!writer.dead) return writer
    // The thread died (its pending writes were rejected): the first write after that starts a new one.
    if (this.writer === current) {
      this.restart = WriterThread.start(this.file)
      this.writer = this.restart
    }

    return this.thread()
  }

  private async closeWriter(writer: Promise<WriterThread> | undefined): Promise<void> {
    const thread = await writer?.catch(() => undefined)
    if (thread && !thread.dead) await thread.call({op: 'close'}).catch(() => thread.kill())
  }

  private openReader(): void {
    try {
      const db = new this.Database(this.file, {readonly: true, fileMustExist: true})
      db.pragma('busy_timeout = 5000')
      this.statements = readStatements(db)
      this.reader = db
    } catch (error) {
      throw new HistoryError(`Cannot open the history database ${this.file}: ${(error as Error).message}`, this.file, error)
    }
  }

  private closeReader(): void {
    this.reader?.close()
    this.reader = undefined
  }

  private page(query: Omit<RangeQuery, 'limit'>, after: Row | undefined, limit: number): Row[] {
    const bounds = {from: query.from ?? 0, to: query.to ?? Number.MAX_SAFE_INTEGER, run: query.runId ?? null, limit}
    if (query.source === undefined) return this.statements.page.all({...bounds, after: after?.id ?? 0}) as Row[]
    return this.statements.pageOf.all({...bounds, source: query.source, afterTs: after?.ts ?? -1, afterSeq: after?.seq ?? 0}) as Row[]
  }

  private read<T>(work: () => T): T {
    if (this.closed || !this.reader) throw new HistoryError(`The history database ${this.file} is closed`, this.file)
    try {
      return work()
    } catch (error) {
      throw new HistoryError(`Cannot read the history database ${this.file}: ${(error as Error).message}`, this.file, error)
    }
  }
}

/**
 * The benchmark's baseline (bench/data-bench.ts): the writer thread's own transaction (rows,
 * rollups, sources; WAL, synchronous=FULL) run inline on the calling thread, one per call, with
 * no thread, queue or HTTP in between. Not for serving: it blocks while it commits.
 */
export async function openInlineWriter(file: string): Promise<{insert(readings: readonly Reading[]): void; close(): void}> {
  const {default: Database} = await import('better-sqlite3')
  const db = connect(Database, file)
  const run = writer(db)
  return {
    insert: (readings) => void run({op: 'insert', rows: readings.map((r) => toRow(r, 0))}),
    close: () => db.close(),
  }
}

/**
 * A consistent copy of a history database while writers may be active: SQLite's online backup
 * API, not a file copy that could catch a half-applied WAL. Used by `mfc backup`.
 */
export async function snapshotSqlite(source: string, destination: string): Promise<void> {
  const {default: Database} = await import('better-sqlite3')
  const db = new Database(source, {readonly: true, fileMustExist: true})
  try {
    await db.backup(destination)
  } finally {
    db.close()
  }
}
