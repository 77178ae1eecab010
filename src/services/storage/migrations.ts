import {StoreError} from '../../lib/errors.js'
import type {PgDatabase} from './postgres.js'

/** One schema step. Versions only grow; an applied migration is never edited (add a new one). */
export interface Migration {
  version: number
  name: string
  sql: string
}

/**
 * The schema of cluster mode. Certificates: every version is a row holding cert, chain, the
 * sealed key and meta together, so a reader that joins `mfc_cert_live` gets a matching pair in
 * one statement; rows are never deleted or updated.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'certificates',
    sql: `
      CREATE TABLE mfc_certs (
        name text NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        cert_pem text NOT NULL,
        chain_pem text NOT NULL,
        key_sealed bytea NOT NULL,
        meta jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (name, version)
      );
      CREATE TABLE mfc_cert_live (
        name text PRIMARY KEY,
        version integer NOT NULL,
        switched_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (name, version) REFERENCES mfc_certs (name, version)
      );`,
  },
  {
    version: 2,
    name: 'acme accounts, challenge tokens, sessions',
    sql: `
      CREATE TABLE mfc_acme_accounts (
        directory text PRIMARY KEY,
        key_sealed bytea NOT NULL,
        record jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE mfc_challenge_tokens (
        token text PRIMARY KEY,
        key_authorization text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE TABLE mfc_sessions (
        id_hash bytea PRIMARY KEY,
        csrf_token text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX mfc_sessions_expiry ON mfc_sessions (expires_at);`,
  },
  {
    version: 3,
    name: 'shared secrets (the API token)',
    sql: `
      CREATE TABLE mfc_secrets (
        name text PRIMARY KEY,
        value_sealed bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );`,
  },
  {
    version: 4,
    name: 'cluster live data: alert episodes, the simulator run',
    // An episode is claimed by the node that inserts its row: the primary key makes one start
    // (source, parameter, the reading's timestamp) notify once ever, the partial index allows one
    // open episode per (source, parameter). The simulator row is written by the node that holds
    // the simulator's advisory lock, and read by every node.
    sql: `
      CREATE TABLE mfc_alert_episodes (
        source text NOT NULL,
        parameter text NOT NULL,
        started text NOT NULL,
        raised_by text NOT NULL,
        raised_at timestamptz NOT NULL DEFAULT now(),
        cleared_by text,
        cleared_at timestamptz,
        PRIMARY KEY (source, parameter, started)
      );
      CREATE UNIQUE INDEX mfc_alert_episodes_open ON mfc_alert_episodes (source, parameter) WHERE cleared_at IS NULL;
      CREATE TABLE mfc_simulation (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        holder text NOT NULL,
        status jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );`,
  },
  {
    version: 5,
    name: 'monitoring history (readings, sources, per-minute rollups, settings such as alert thresholds)',
    // The SQLite history's layout (src/services/data/history.ts), so both adapters answer the
    // same queries: `id` is the insertion order, (source, ts, seq) the deduplication key.
    sql: `
      CREATE TABLE mfc_readings (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts bigint NOT NULL,
        source text NOT NULL,
        seq bigint NOT NULL DEFAULT 0,
        run_id text,
        time_hours double precision NOT NULL,
        reservoir double precision NOT NULL,
        outlet double precision NOT NULL,
        total_power double precision NOT NULL,
        addition double precision NOT NULL,
        q_action integer,
        epsilon double precision,
        reward double precision,
        cells text NOT NULL,
        voltage_mean double precision,
        UNIQUE (source, ts, seq)
      );
      CREATE INDEX mfc_readings_ts ON mfc_readings (ts);
      CREATE TABLE mfc_sources (
        name text PRIMARY KEY,
        cells integer,
        description text,
        location text,
        first_seen bigint,
        last_seen bigint,
        readings bigint NOT NULL DEFAULT 0
      );
      CREATE TABLE mfc_rollup_1m (
        source text NOT NULL,
        minute bigint NOT NULL,
        n bigint NOT NULL,
        ${['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean'].map((f) => `${f}_min double precision, ${f}_max double precision, ${f}_sum double precision, ${f}_n bigint NOT NULL DEFAULT 0`).join(',\n        ')},
        PRIMARY KEY (source, minute)
      );
      CREATE TABLE mfc_history_settings (
        key text PRIMARY KEY,
        value text NOT NULL
      );`,
  },
  {
    // 10, not 4: other parts of cluster mode add their own steps; versions need only grow.
    version: 10,
    name: 'node heartbeats',
    sql: `
      CREATE TABLE mfc_nodes (
        name text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        version text NOT NULL,
        ports jsonb NOT NULL,
        served jsonb NOT NULL,
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL
      );`,
  },
  {
    version: 11,
    name: 'acme account key rollover and retired accounts',
    // `next_key_sealed`: the new key of a rollover, stored before the CA is asked (the file
    // store's account-key.next.pem). A deactivated account moves to the retired table (the file
    // store's `<dir>.deactivated-<time>`), so the directory is free for a new registration and
    // issuance can say which account was deactivated, and when.
    sql: `
      ALTER TABLE mfc_acme_accounts ADD COLUMN next_key_sealed bytea;
      CREATE TABLE mfc_acme_accounts_retired (
        directory text NOT NULL,
        key_sealed bytea NOT NULL,
        record jsonb,
        retired_at timestamptz NOT NULL,
        PRIMARY KEY (directory, retired_at)
      );`,
  },
  {
    version: 13,
    name: 'the cluster\'s local CA',
    // One row (id is always true): the CA every node's local-CA certificates chain to, created
    // once with INSERT ... ON CONFLICT DO NOTHING (src/services/storage/pg-local-ca.ts).
    sql: `
      CREATE TABLE mfc_local_ca (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        cert_pem text NOT NULL,
        key_sealed bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );`,
  },
]

/** Advisory-lock key of `storage migrate` (any constant; "mfc" "migr" in ASCII). */
const MIGRATION_LOCK = 0x6d66_636d_6967_72n

/** What `migrate` did: versions applied by this run, and where the schema stands now. */
export interface MigrateResult {
  applied: {version: number; name: string}[]
  current: number
  latest: number
}

/**
 * Brings the schema to the latest version. Safe when every node runs it at once: the whole run
 * holds a session advisory lock, so the others wait, then find nothing left to do. Each
 * migration and its bookkeeping row commit in one transaction: a crash leaves the schema at a
 * version, never between two.
 */
export async function migrate(db: PgDatabase, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  const session = await db.session()
  try {
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()])
    await session.query(`CREATE TABLE IF NOT EXISTS mfc_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const done = new Set((await session.query<{version: number}>('SELECT version FROM mfc_migrations')).map((r) => r.version))
    const applied: MigrateResult['applied'] = []
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue
      await session.query('BEGIN')
      try {
        await session.query(migration.sql)
        await session.query('INSERT INTO mfc_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
        await session.query('COMMIT')
      } catch (error) {
        await session.query('ROLLBACK').catch(() => {})
        throw error
      }

      applied.push({version: migration.version, name: migration.name})
    }

    const latest = Math.max(0, ...migrations.map((m) => m.version))
    const current = Math.max(0, ...done, ...applied.map((a) => a.version))
    return {applied, current, latest}
  } finally {
    // Ending the session releases the advisory lock even if the unlock were skipped.
    await session.end()
  }
}

/** The schema version in the database (0 before the first migrate). */
export async function schemaVersion(db: PgDatabase): Promise<number> {
  const [row] = await db.query<{version: number | null}>(`SELECT CASE WHEN to_regclass('mfc_migrations') IS NULL THEN 0
    ELSE (SELECT coalesce(max(version), 0) FROM mfc_migrations) END AS version`)
  return Number(row?.version ?? 0)
}

/** Fails with the next step when the database's schema is older than this mfc needs. */
export async function requireSchema(db: PgDatabase, migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
  const current = await schemaVersion(db)
  const latest = Math.max(0, ...migrations.map((m) => m.version))
  if (current < latest) {
    throw new StoreError(`The schema in ${db.label} is at version ${current}; this mfc needs ${latest}.`, {
      code: 'MFC_STORE_IO',
      suggestions: ['Run `mfc storage migrate` (safe to run on every node at once).'],
    })
  }
}
