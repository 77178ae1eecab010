import {generateKeyPair} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {errnoCode} from '../../lib/errors.js'
import {createFileExclusive, ensureDir, writeFileAtomic} from '../../lib/fs-atomic.js'
import {accountDirName} from './directories.js'

/** What mfc remembers about an ACME account (the key lives beside it, 0600). */
export interface AccountRecord {
  directory: string
  url: string
  email: string
  /** The External Account Binding key ID the account was registered with, if any (never the key). */
  eabKid?: string
  createdAt: string
}

export interface AccountFiles {
  dir: string
  keyFile: string
  recordFile: string
  /** The new key of a key rollover in progress: written before the CA is asked, renamed after. */
  nextKeyFile: string
}

/**
 * Where ACME accounts live (one per CA directory URL). Contract: `key` returns the same key to
 * every caller for a directory, creating it on first use (concurrent first calls, on one node
 * or several, converge on one key); `record` is undefined until `save`; `save` replaces the
 * record. Keys are secrets: 0600 on disk, sealed in a database.
 */
export interface AcmeAccountStore {
  key(directoryUrl: string): Promise<{pem: string; created: boolean}>
  record(directoryUrl: string): Promise<AccountRecord | undefined>
  save(record: AccountRecord): Promise<void>
  /** Every account that has a record (a registered account), in no particular order. */
  records(): Promise<AccountRecord[]>
  /** Stores an existing account key (storage copy); false, changing nothing, when one exists. */
  importKey(directoryUrl: string, pem: string): Promise<boolean>
  /**
   * The last account of this directory that `mfc account deactivate` retired, if the store
   * remembers one (the cluster's does): issuance then refuses to register a new account
   * without the user's --agree-tos, and names the old one.
   */
  retired?(directoryUrl: string): Promise<{url: string; retiredAt: string} | undefined>
}

/**
 * An account store `mfc account show/deactivate/rollover-key` can work on (files or the
 * cluster database). Contract, for one directory: `existingKey` never creates; a rollover
 * stages the new key durably (`stageNextKey`) before the CA is asked, `commitNextKey` makes
 * it the account key in one atomic step (rename, UPDATE), `discardNextKey` drops it, and
 * `stagedKey` shows one an interrupted rollover left; `retire` moves the account aside (kept,
 * not deleted) so the next issuance registers anew, and says where it went. Writers hold the
 * mfc lock (and the cluster's, in cluster mode).
 */
export interface ManagedAccountStore extends AcmeAccountStore {
  /** Where the account key lives, for messages and `account show` (a file, or the database). */
  location(directoryUrl: string): string
  existingKey(directoryUrl: string): Promise<string | undefined>
  stageNextKey(directoryUrl: string, keyPem: string): Promise<void>
  stagedKey(directoryUrl: string): Promise<string | undefined>
  commitNextKey(directoryUrl: string): Promise<void>
  discardNextKey(directoryUrl: string): Promise<void>
  retire(directoryUrl: string, when: Date): Promise<string>
}

/**
 * One account per CA directory URL under `acmeDir/<host_port_path>/`: `account-key.pem` (0600,
 * ECDSA P-256, created before registration so a crash never orphans a registered account)
 * and `account.json` (the account URL). Writers hold the mfc lock.
 */
export class AccountStore implements ManagedAccountStore {
  constructor(private readonly acmeDir: string) {}

  location(directoryUrl: string): string {
    return this.files(directoryUrl).keyFile
  }

  files(directoryUrl: string): AccountFiles {
    const dir = join(this.acmeDir, accountDirName(directoryUrl))
    return {dir, keyFile: join(dir, 'account-key.pem'), recordFile: join(dir, 'account.json'), nextKeyFile: join(dir, 'account-key.next.pem')}
  }

  /** The account key, created on first use. */
  async key(directoryUrl: string): Promise<{pem: string; created: boolean}> {
    const {dir, keyFile} = this.files(directoryUrl)
    try {
      return {pem: await fs.readFile(keyFile, 'utf8'), created: false}
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error
    }

    const {privateKey} = await promisify(generateKeyPair)('ec', {namedCurve: 'P-256'})
    const pem = privateKey.export({format: 'pem', type: 'pkcs8'}) as string
    await ensureDir(this.acmeDir, 0o700)
    await ensureDir(dir, 0o700)
    // Two first uses at once must not end with two keys (one of them registered, then lost).
    if (await createFileExclusive(keyFile, pem, 0o600)) return {pem, created: true}
    return {pem: await fs.readFile(keyFile, 'utf8'), created: false}
  }

  async record(directoryUrl: string): Promise<AccountRecord | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.files(directoryUrl).recordFile, 'utf8')) as AccountRecord
    } catch {
      return undefined
    }
  }

  async importKey(directoryUrl: string, pem: string): Promise<boolean> {
    const {dir, keyFile} = this.files(directoryUrl)
    await ensureDir(this.acmeDir, 0o700)
    await ensureDir(dir, 0o700)
    return createFileExclusive(keyFile, pem, 0o600)
  }

  async records(): Promise<AccountRecord[]> {
    const entries = await fs.readdir(this.acmeDir).catch(() => [] as string[])
    const records = await Promise.all(entries.map(async (entry) => {
      try {
        return JSON.parse(await fs.readFile(join(this.acmeDir, entry, 'account.json'), 'utf8')) as AccountRecord
      } catch {
        return undefined
      }
    }))
    return records.filter((r): r is AccountRecord => r !== undefined)
  }

  async save(record: AccountRecord): Promise<void> {
    const {dir, recordFile} = this.files(record.directory)
    await ensureDir(dir, 0o700)
    await writeFileAtomic(recordFile, JSON.stringify(record, null, 2) + '\n', 0o600)
  }

  /** The stored key, if any (never creates one). */
  async existingKey(directoryUrl: string): Promise<string | undefined> {
    try {
      return await fs.readFile(this.files(directoryUrl).keyFile, 'utf8')
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined
      throw error
    }
  }

  /**
   * Adopts an account registered elsewhere (certbot's), key and record together. The record is
   * written last, so a crash in between leaves a key without a record, which issuance treats
   * as "register this key again" and the CA answers with the same account.
   */
  async adopt(record: AccountRecord, keyPem: string): Promise<void> {
    const {dir, keyFile} = this.files(record.directory)
    await ensureDir(this.acmeDir, 0o700)
    await ensureDir(dir, 0o700)
    await writeFileAtomic(keyFile, keyPem, 0o600)
    await this.save(record)
  }

  /** Step 1 of a key rollover: the new key, on disk before the CA hears of it. */
  async stageNextKey(directoryUrl: string, keyPem: string): Promise<void> {
    await writeFileAtomic(this.files(directoryUrl).nextKeyFile, keyPem, 0o600)
  }

  /** The staged key of an interrupted rollover, if one is left. */
  async stagedKey(directoryUrl: string): Promise<string | undefined> {
    return fs.readFile(this.files(directoryUrl).nextKeyFile, 'utf8').catch(() => undefined)
  }

  /** Step 2, once the CA accepted the new key: it becomes the account key (one rename). */
  async commitNextKey(directoryUrl: string): Promise<void> {
    const {keyFile, nextKeyFile} = this.files(directoryUrl)
    await fs.rename(nextKeyFile, keyFile)
  }

  async discardNextKey(directoryUrl: string): Promise<void> {
    await fs.rm(this.files(directoryUrl).nextKeyFile, {force: true})
  }

  /**
   * After deactivation: the account's directory is renamed aside (`<dir>.deactivated-<time>`,
   * key kept for the record), so the next issuance registers a new account.
   */
  async retire(directoryUrl: string, when: Date): Promise<string> {
    const {dir} = this.files(directoryUrl)
    const target = `${dir}.deactivated-${when.toISOString().replaceAll(/[:.]/g, '-')}`
    await fs.rename(dir, target)
    return target
  }
}
