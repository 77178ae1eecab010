import {LockError} from '../../lib/errors.js'
import type {HeldLock, Locker} from './locker.js'
import type {PgDatabase} from './postgres.js'

/**
 * The lock in cluster mode: a session-level advisory lock held on the holder's own connection.
 * When the holder dies its kernel closes the socket and PostgreSQL drops the lock at once; when
 * its host vanishes the server's TCP keepalives (set short on this session) end the session
 * within about 15 s. No lease to renew, no clock to trust. Anyone can see the holder in
 * pg_stat_activity (application_name names host and pid, `command` is set as a comment).
 */
export class PgLocker implements Locker {
  constructor(private readonly db: PgDatabase) {}

  async acquire(name: string, command: string): Promise<HeldLock> {
    const session = await this.db.session()
    try {
      await session.query("SELECT set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '2', false), set_config('tcp_keepalives_count', '3', false)")
      const [{ok}] = await session.query<{ok: boolean}>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lockKey(name)])
      if (!ok) {
        const holder = await this.holder(name)
        throw new LockError(`Another mfc node holds the "${name}" lock in ${this.db.label}${holder ? ` (${holder})` : ''}.`, {
          code: 'MFC_LOCKED',
          suggestions: ['Wait for it to finish and try again: the lock goes when its holder ends or dies.'],
        })
      }

      await session.query(`SELECT set_config('application_name', left(current_setting('application_name') || ' ' || $1, 63), false)`, [command])
    } catch (error) {
      await session.end()
      throw error
    }

    let released = false
    return {
      name,
      async release() {
        if (released) return
        released = true
        // Ending the session drops the lock even if the unlock does not get through.
        await session.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey(name)]).catch(() => {})
        await session.end()
      },
    }
  }

  /** Who holds `name` now (application name and since when), if anyone. */
  async holder(name: string): Promise<string | undefined> {
    const row = await this.holderRecord(name)
    return row ? `${row.app}, connected since ${row.since.toISOString()}` : undefined
  }

  /** The holder's session: its application name (`mfc <host> <pid> <command>`) and connection time. */
  async holderRecord(name: string): Promise<{app: string; since: Date} | undefined> {
    const [row] = await this.db.query<{app: string; since: Date}>(`SELECT a.application_name AS app, a.backend_start AS since
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      CROSS JOIN (SELECT hashtext($1)::bigint AS k) key
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.classid = ((key.k >> 32) & 4294967295)::oid AND l.objid = (key.k & 4294967295)::oid`, [lockKey(name)])
    return row ? {app: row.app, since: new Date(row.since)} : undefined
  }
}

const lockKey = (name: string) => `mfc-lock:${name}`
