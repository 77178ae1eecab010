import {readFile} from 'node:fs/promises'
import {dirname} from 'node:path'

import type {MfcConfig} from '../lib/config.js'
import {ConfigError, UsageError, errnoCode} from '../lib/errors.js'
import {createFileExclusive, ensureDir, writeFileAtomic} from '../lib/fs-atomic.js'
import {AccountStore} from '../services/acme/account-store.js'
import {FileCertStore} from '../services/store/file-cert-store.js'
import type {StateSide} from '../services/storage/copy.js'
import {PgAccountStore} from '../services/storage/pg-account-store.js'
import {PgLocalCa} from '../services/storage/pg-local-ca.js'
import {PgSecrets} from '../services/storage/secrets.js'
import {KeySealer} from '../services/storage/key-sealer.js'
import {PgCertStore} from '../services/storage/pg-cert-store.js'
import {type PgConnectionOptions, type PgDatabase, openPostgres} from '../services/storage/postgres.js'

async function secretFile(file: string, key: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (error) {
    throw new ConfigError(`Cannot read ${key} ${file}: ${errnoCode(error) ?? (error as Error).message}.`, {
      code: 'MFC_CONFIG_VALUE',
      suggestions: [`Create ${file} (mode 0600, readable by the user running mfc) or fix "${key}".`],
    })
  }
}

/** How to reach the shared database (URL, password, CA) from the resolved config; `url` overrides "storage". */
export async function storageTarget(config: MfcConfig, url = config.settings.storage ?? undefined): Promise<PgConnectionOptions> {
  if (!url) {
    throw new UsageError('No shared storage is configured: mfc uses its embedded storage (files + SQLite).', {
      code: 'MFC_USAGE',
      suggestions: [`Set "storage": "postgres://user@host:5432/mfc" in ${config.paths.sslConfigFile} (or MFC_STORAGE_URL).`],
    })
  }

  const {storage_password_file: passwordFile, storage_ca_file: caFile} = config.settings
  const password = passwordFile ? await secretFile(passwordFile, 'storage_password_file') : config.secrets.storagePassword
  return {url, password, caFile: caFile ?? undefined}
}

/** The shared database of cluster mode from the resolved config (`url` overrides "storage"). */
export async function openStorage(config: MfcConfig, url = config.settings.storage ?? undefined): Promise<PgDatabase> {
  return openPostgres(await storageTarget(config, url))
}

/** The key that seals private keys in the database, from storage_key_file or MFC_STORAGE_KEY. */
export async function storageSealer(config: MfcConfig): Promise<KeySealer> {
  const file = config.settings.storage_key_file
  if (file) return KeySealer.fromText(await secretFile(file, 'storage_key_file'), `storage_key_file ${file}`)
  if (config.secrets.storageKey) return KeySealer.fromText(config.secrets.storageKey, 'MFC_STORAGE_KEY')
  throw new ConfigError('Cluster storage needs the key that seals private keys in the database, and none is set.', {
    code: 'MFC_CONFIG_MISSING',
    suggestions: ['Make one with `openssl rand -base64 32 > /etc/mfc/storage.key` (mode 0600), copy it to every node, and set "storage_key_file" (or MFC_STORAGE_KEY).'],
  })
}

/** The certificate store on the shared database, with this node's local PEM copies. */
export async function pgCertStore(config: MfcConfig, db: PgDatabase): Promise<PgCertStore> {
  return new PgCertStore(db, await storageSealer(config), config.paths.clusterStoreDir)
}

/** The embedded state of this machine as one end of `storage copy`. */
export function fileSide(config: MfcConfig): StateSide {
  const tokenFile = config.settings.api_token_file ?? config.paths.apiTokenFile
  return {
    label: config.paths.stateDir,
    certs: new FileCertStore(config.paths.embeddedStoreDir),
    accounts: new AccountStore(config.paths.acmeDir),
    readToken: async () => (await readFile(tokenFile, 'utf8').catch(() => '')).trim() || undefined,
    async writeToken(token) {
      await ensureDir(dirname(tokenFile), 0o700)
      return createFileExclusive(tokenFile, token + '\n', 0o600)
    },
    async readLocalCa() {
      const [certPem, keyPem] = await Promise.all([config.paths.caCertFile, config.paths.caKeyFile].map((file) => readFile(file, 'utf8').catch(() => undefined)))
      return certPem && keyPem ? {certPem, keyPem} : undefined
    },
    async writeLocalCa(pair) {
      if (await this.readLocalCa()) return false
      await ensureDir(config.paths.caDir, 0o700)
      // Key first, as the local CA writes them: a crash between the two leaves no certificate without its key.
      await writeFileAtomic(config.paths.caKeyFile, pair.keyPem, 0o600)
      await writeFileAtomic(config.paths.caCertFile, pair.certPem, 0o644)
      return true
    },
  }
}

/** The shared PostgreSQL as one end of `storage copy`. */
export async function pgSide(config: MfcConfig, db: PgDatabase): Promise<StateSide> {
  const sealer = await storageSealer(config)
  const secrets = new PgSecrets(db, sealer)
  const localCa = new PgLocalCa(db, sealer)
  return {
    label: db.label,
    certs: new PgCertStore(db, sealer, config.paths.clusterStoreDir),
    accounts: new PgAccountStore(db, sealer),
    readToken: () => secrets.get('api_token'),
    writeToken: (token) => secrets.setIfAbsent('api_token', token),
    readLocalCa: () => localCa.load(),
    writeLocalCa: async (pair) => (await localCa.createIfAbsent(pair)).created,
  }
}
