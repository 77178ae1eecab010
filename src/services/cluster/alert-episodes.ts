import type {MfcEventBus, MfcEvents} from '../../lib/events.js'
import type {PgQueryable} from '../storage/postgres.js'

/** One alert episode as the cluster names it: the source, the parameter, and when it started. */
export interface EpisodeKey {
  source: string
  parameter: string
  /** The timestamp of the reading that raised it (the same on every node that saw that reading). */
  since: string
}

/**
 * Who notifies an alert episode in a cluster. Contract: of any number of nodes (and calls)
 * claiming the raise of one episode, exactly one gets `true`, also when they race; at most one
 * episode per (source, parameter) is open in the cluster, so a node that saw the same episode
 * start at another instant ("no data" is timed by each node's clock) does not notify it again.
 * The same holds for the clear of an open episode. Rejects (StoreError) when the store is
 * unreachable.
 */
export interface AlertEpisodes {
  claimRaise(key: EpisodeKey, node: string): Promise<boolean>
  claimClear(key: EpisodeKey, node: string): Promise<boolean>
}

/** Alert episodes in PostgreSQL (table mfc_alert_episodes, migration 4). */
export class PgAlertEpisodes implements AlertEpisodes {
  constructor(private readonly db: PgQueryable) {}

  async claimRaise({source, parameter, since}: EpisodeKey, node: string): Promise<boolean> {
    // No conflict target: either the primary key (this start, already claimed) or the partial
    // index (an episode still open) turns the insert into nothing.
    const rows = await this.db.query(`INSERT INTO mfc_alert_episodes (source, parameter, started, raised_by) VALUES ($1, $2, $3, $4)
      ON CONFLICT DO NOTHING RETURNING started`, [source, parameter, since, node])
    return rows.length === 1
  }

  async claimClear({source, parameter, since}: EpisodeKey, node: string): Promise<boolean> {
    // A threshold episode clears by its start; "no data" starts differ by node, so its one open
    // episode clears whoever started it (also when that node is gone).
    const rows = await this.db.query(`UPDATE mfc_alert_episodes SET cleared_by = $4, cleared_at = now()
      WHERE source = $1 AND parameter = $2 AND cleared_at IS NULL AND (started = $3 OR parameter = 'no_data') RETURNING started`, [source, parameter, since, node])
    return rows.length > 0
  }
}

/** A claim that failed: the gate notified anyway (a duplicate is better than a silent alarm). */
export type GateProblem = (error: Error, event: 'alert:raised' | 'alert:cleared') => void

/**
 * Passes a node's alert events on to its notifications only when this node claims the episode,
 * so an episode every node sees in the same data notifies once for the cluster. Claims of one
 * (source, parameter) run one after the other, so a raise is decided before its clear. Other
 * listeners of alerts (stream, dashboard) keep every node's own view.
 */
export class ClusterAlertGate {
  private readonly chains = new Map<string, Promise<void>>()
  private readonly offs: (() => void)[]

  constructor(from: MfcEventBus, private readonly to: MfcEventBus, private readonly episodes: AlertEpisodes, private readonly node: string, private readonly problem: GateProblem = () => {}) {
    this.offs = [
      from.on('alert:raised', (payload) => this.pass('alert:raised', payload)),
      from.on('alert:cleared', (payload) => this.pass('alert:cleared', payload)),
    ]
  }

  /** Waits for the claims in flight (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all(this.chains.values())
  }

  close(): void {
    for (const off of this.offs) off()
  }

  private pass<K extends 'alert:raised' | 'alert:cleared'>(event: K, payload: MfcEvents[K]): void {
    const key: EpisodeKey = {source: payload.source ?? '', parameter: payload.parameter, since: payload.since ?? ''}
    const id = `${key.source}\u0000${key.parameter}`
    const next = (this.chains.get(id) ?? Promise.resolve()).then(async () => {
      let mine = true
      try {
        mine = event === 'alert:raised' ? await this.episodes.claimRaise(key, this.node) : await this.episodes.claimClear(key, this.node)
      } catch (error) {
        this.problem(error as Error, event)
      }

      if (mine) this.to.emit(event, payload)
    })
    this.chains.set(id, next)
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id)
    })
  }
}
