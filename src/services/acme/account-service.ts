import {generateKeyPair} from 'node:crypto'
import {promisify} from 'node:util'

import type {Clock} from '../../lib/clock.js'
import {StoreError} from '../../lib/errors.js'
import {withLock} from '../../lib/lock.js'
import {type Locker, withLocker} from '../../lib/locker.js'
import {AcmeAccountClient, type AcmeAccountObject} from './acme-account-client.js'
import {type AccountRecord, AccountStore, type ManagedAccountStore} from './account-store.js'
import {jwkThumbprint, privateKeyFrom} from './jws.js'

/** What `mfc account show` reports: mfc's record and, when the CA answers, the CA's view. */
export interface AccountView {
  directory: string
  url: string
  email: string
  createdAt: string
  /** Where the key lives: its file, or (cluster mode) the cluster database. Never the key. */
  keyFile: string
  keyType: string
  /** RFC 7638 thumbprint of the account key (certbot's account id is its MD5; this is unique too). */
  thumbprint: string
  /** The account as the CA sees it; null when it could not be asked (see `caError`). */
  ca: {status: string; contact: string[]; termsOfServiceAgreed: boolean | null} | null
  caError: string | null
  /** A key rollover that was interrupted after the new key was written. */
  pendingRollover: boolean
}

export interface AccountServiceOptions {
  acmeDir: string
  lockFile: string
  clock: Clock
  /** The accounts (cluster mode: PgAccountStore); default the files under `acmeDir`. */
  store?: ManagedAccountStore
  /** The cluster's lock, taken (as "store", the lock every renewal holds) inside the lock file. */
  locker?: Locker
}

/**
 * Show, deactivate and roll over the key of the ACME account mfc keeps for one CA directory.
 * Writers take the mfc lock and, in cluster mode, the cluster's "store" lock that every
 * renewal holds from order to install, so no node renews with a key that is being replaced or
 * an account being deactivated. Rollover is crash-safe: the new key is stored (0600 file, or
 * sealed in the database) before the CA is asked and becomes the account key in one atomic
 * step after the CA agreed; an interrupted rollover is finished (or undone) by the next one,
 * which asks the CA which key it knows.
 */
export class AccountService {
  private readonly store: ManagedAccountStore

  constructor(private readonly options: AccountServiceOptions) {
    this.store = options.store ?? new AccountStore(options.acmeDir)
  }

  private locked<T>(command: string, work: () => Promise<T>): Promise<T> {
    const {locker} = this.options
    return withLock(this.options.lockFile, command, locker ? () => withLocker(locker, 'store', command, work) : work)
  }

  async show(directoryUrl: string): Promise<AccountView> {
    const {record, keyPem} = await this.load(directoryUrl)
    const key = privateKeyFrom(keyPem)
    let ca: AccountView['ca'] = null
    let caError: string | null = null
    try {
      const object: AcmeAccountObject = await new AcmeAccountClient(directoryUrl).account({key, kid: record.url})
      ca = {status: object.status, contact: object.contact ?? [], termsOfServiceAgreed: object.termsOfServiceAgreed ?? null}
    } catch (error) {
      caError = (error as Error).message
    }

    const details = key.asymmetricKeyDetails
    return {
      directory: directoryUrl, url: record.url, email: record.email, createdAt: record.createdAt,
      keyFile: this.store.location(directoryUrl),
      keyType: key.asymmetricKeyType === 'rsa' ? `RSA ${details?.modulusLength}` : `ECDSA ${details?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'}`,
      thumbprint: jwkThumbprint(key), ca, caError,
      pendingRollover: (await this.store.stagedKey(directoryUrl)) !== undefined,
    }
  }

  /** Deactivates the account at the CA, then moves mfc's copy aside; returns where it went. */
  async deactivate(directoryUrl: string, command: string): Promise<{url: string; status: string; movedTo: string}> {
    return this.locked(command, async () => {
      const {record, keyPem} = await this.load(directoryUrl)
      const object = await new AcmeAccountClient(directoryUrl).deactivate({key: privateKeyFrom(keyPem), kid: record.url})
      const movedTo = await this.store.retire(directoryUrl, this.options.clock.now())
      return {url: record.url, status: object.status, movedTo}
    })
  }

  /** RFC 8555 keyChange to a fresh ECDSA P-256 key; returns the old and new thumbprints. */
  async rolloverKey(directoryUrl: string, command: string): Promise<{url: string; oldThumbprint: string; newThumbprint: string; keyFile: string}> {
    return this.locked(command, async () => {
      const {record, keyPem} = await this.load(directoryUrl)
      const client = new AcmeAccountClient(directoryUrl)
      const oldKey = privateKeyFrom(keyPem)
      const staged = await this.store.stagedKey(directoryUrl)
      // A previous rollover died after writing its key: if the CA already took it, finish that one.
      if (staged && await client.findAccount(privateKeyFrom(staged)) === record.url) {
        await this.store.commitNextKey(directoryUrl)
        return {url: record.url, oldThumbprint: jwkThumbprint(oldKey), newThumbprint: jwkThumbprint(privateKeyFrom(staged)), keyFile: this.store.location(directoryUrl)}
      }

      const {privateKey} = await promisify(generateKeyPair)('ec', {namedCurve: 'P-256'})
      await this.store.stageNextKey(directoryUrl, privateKey.export({format: 'pem', type: 'pkcs8'}) as string)
      try {
        await client.keyChange({key: oldKey, kid: record.url}, privateKey)
      } catch (error) {
        await this.store.discardNextKey(directoryUrl)
        throw error
      }

      await this.store.commitNextKey(directoryUrl)
      return {url: record.url, oldThumbprint: jwkThumbprint(oldKey), newThumbprint: jwkThumbprint(privateKey), keyFile: this.store.location(directoryUrl)}
    })
  }

  private async load(directoryUrl: string): Promise<{record: AccountRecord; keyPem: string}> {
    const [record, keyPem] = await Promise.all([this.store.record(directoryUrl), this.store.existingKey(directoryUrl)])
    if (!record || !keyPem) {
      throw new StoreError(`mfc has no ACME account for ${directoryUrl} (looked in ${this.store.location(directoryUrl)}).`, {
        code: 'MFC_ACCOUNT_MISSING',
        suggestions: [
          'An account is registered by the first ACME certificate: `mfc ssl init --letsencrypt` (or --acme-directory URL).',
          'Coming from certbot: `mfc cert import --from-certbot` adopts its account.',
          'Another CA? Pass its directory: --server URL.',
        ],
      })
    }

    return {record, keyPem}
  }
}
