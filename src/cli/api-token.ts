import type {MfcConfig} from '../lib/config.js'
import {StoreError} from '../lib/errors.js'
import type {ApiTokenFacts} from '../services/doctor/doctor.js'
import {type ApiToken, type SharedSecrets, readApiToken, resolveApiToken, rotateApiToken, tokenFingerprint, tokenWhere, weakTokenReason} from '../services/servers/auth.js'
import {openStorage, storageSealer} from './storage.js'

/** What `mfc api-token show/rotate` report with --json: where the token lives, never the token. */
export interface ApiTokenReport {
  source: ApiToken['source']
  where: string
  /** First 16 hex digits of the token's SHA-256: equal on two nodes means one token. */
  fingerprint: string
}

/**
 * Runs `work` with the cluster's shared secrets (cluster mode: its own pool, closed after) or
 * none (the embedded default), so one-shot commands never leave a database pool open.
 */
async function withSecrets<T>(config: MfcConfig, work: (shared: SharedSecrets | undefined) => Promise<T>): Promise<T> {
  if (!config.settings.storage) return work(undefined)
  const {PgSecrets} = await import('../services/storage/secrets.js')
  const sealer = await storageSealer(config)
  const db = await openStorage(config)
  try {
    return await work(new PgSecrets(db, sealer))
  } finally {
    await db.close()
  }
}

/** The token a running serve accepts (status, test-ssl): same sources and order as serve; undefined when unreadable. */
export async function currentApiToken(config: MfcConfig): Promise<string | undefined> {
  if (config.secrets.apiToken || !config.settings.storage) return readApiToken(config)
  return withSecrets(config, (shared) => readApiToken(config, shared)).catch(() => undefined)
}

/** The token in effect and where it lives, for `mfc api-token show`; never generates one. */
export async function showApiToken(config: MfcConfig): Promise<ApiTokenReport & {token: string}> {
  return withSecrets(config, async (shared) => {
    const token = await readApiToken(config, shared)
    if (!token) {
      const where = shared ? `the cluster database (${shared.label})` : `the token file ${config.settings.api_token_file ?? config.paths.apiTokenFile}`
      throw new StoreError(`There is no API token yet: nothing in MFC_API_TOKEN or ${where}.`, {
        code: 'MFC_TOKEN_MISSING',
        suggestions: ['`mfc serve` makes one on its first start; or set one now with `mfc api-token rotate`.'],
      })
    }

    // Resolution again, for the source and the same weak-token refusal serve would give.
    const resolved = await resolveApiToken(config, shared)
    return {token: resolved.token, source: resolved.source, where: tokenWhere(resolved, shared), fingerprint: tokenFingerprint(resolved.token)}
  })
}

/** The API token as doctor reports it: where, fingerprint or weakness; never the token, never throws. */
export async function apiTokenFacts(config: MfcConfig): Promise<ApiTokenFacts> {
  try {
    return await withSecrets(config, async (shared) => {
      if (!(await readApiToken(config, shared))) return {missing: shared ? `the cluster database (${shared.label})` : `MFC_API_TOKEN or ${config.settings.api_token_file ?? config.paths.apiTokenFile}`}
      const resolved = await resolveApiToken(config, shared).catch((error: unknown) => error as Error)
      if (resolved instanceof Error) {
        const weak = await readApiToken(config, shared)
        return {where: whereOf(config, shared), fingerprint: tokenFingerprint(weak ?? ''), weak: weakTokenReason(weak ?? '') ?? resolved.message}
      }

      return {where: tokenWhere(resolved, shared), fingerprint: tokenFingerprint(resolved.token)}
    })
  } catch (error) {
    return {error: (error as Error).message}
  }
}

function whereOf(config: MfcConfig, shared: SharedSecrets | undefined): string {
  if (config.secrets.apiToken) return 'MFC_API_TOKEN'
  if (!shared || config.settings.api_token_file) return `the token file ${config.settings.api_token_file ?? config.paths.apiTokenFile}`
  return `the cluster database (${shared.label})`
}

/** `mfc api-token rotate`: a new token where the current one lives. */
export async function rotateToken(config: MfcConfig): Promise<ApiTokenReport> {
  return withSecrets(config, async (shared) => {
    const rotated = await rotateApiToken(config, shared)
    return {source: rotated.source, where: tokenWhere(rotated, shared), fingerprint: tokenFingerprint(rotated.token)}
  })
}
