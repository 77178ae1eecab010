import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {StoreError} from '../../lib/errors.js'
import type {AcmeAccountStore} from '../acme/account-store.js'
import type {CaPair} from '../issuers/local-ca-issuer.js'
import type {CertBundle, CertStore, StoredCert} from '../store/cert-store.js'

/** One end of a copy: the embedded state (files) or the shared PostgreSQL. */
export interface StateSide {
  /** For messages: a directory, or the database's redacted URL. */
  label: string
  certs: CertStore
  accounts: AcmeAccountStore
  readToken(): Promise<string | undefined>
  /** Writes the API token unless one is there; false when one was. */
  writeToken(token: string): Promise<boolean>
  /** The local CA: this machine's files, or the cluster's one row. */
  readLocalCa(): Promise<CaPair | undefined>
  /** Stores the local CA unless one is there (key before certificate); false when one was. */
  writeLocalCa(pair: CaPair): Promise<boolean>
}

/** What a copy moved, after verifying every item on both sides. */
export interface CopyResult {
  from: string
  to: string
  lineages: number
  versions: number
  accounts: number
  token: 'copied' | 'already there' | 'none'
  /** The local CA that signs local-CA certificates, so the copied ones keep chaining to the root users trust. */
  localCa: 'copied' | 'already there' | 'none'
  verified: true
}

const digest = async (stored: StoredCert) => {
  const [cert, chain, key] = await Promise.all([stored.certFile, stored.chainFile, stored.keyFile].map((file) => readFile(file, 'utf8')))
  return createHash('sha256').update(cert.trim()).update('\0').update(chain.trim()).update('\0').update(key.trim()).update('\0').update(stored.meta.serial).digest('hex')
}

/** jsonb reorders object keys: compare records key-sorted. */
const canonical = (value: object) => JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b))))

const bundleOf = async (stored: StoredCert): Promise<CertBundle> => ({
  certPem: await readFile(stored.certFile, 'utf8'),
  chainPem: await readFile(stored.chainFile, 'utf8'),
  keyPem: await readFile(stored.keyFile, 'utf8'),
  meta: stored.meta,
})

function conflict(message: string, to: StateSide): StoreError {
  return new StoreError(`${message} Nothing was copied.`, {
    code: 'MFC_STORE_EXISTS',
    suggestions: [`Copy into an empty ${to.label} (a fresh database after \`mfc storage migrate\`, or an empty MFC_STATE_DIR).`],
  })
}

/**
 * Copies every certificate version (same numbers, same live version), every registered ACME
 * account (key and record), the API token and the local CA from one side to the other, then verifies each by
 * hash. It never overwrites: anything already present on the target with different content
 * stops the copy before the first write. The caller holds the mfc lock on both sides.
 */
export async function copyState(from: StateSide, to: StateSide): Promise<CopyResult> {
  const lineages = await from.certs.list()
  const accounts = await from.accounts.records()
  const token = await from.readToken()
  for (const live of lineages) {
    const there = await to.certs.versions(live.name)
    if (there.length > 0) throw conflict(`Certificate "${live.name}" already has ${there.length} version(s) in ${to.label}.`, to)
  }

  for (const record of accounts) {
    if (await to.accounts.record(record.directory)) throw conflict(`An ACME account for ${record.directory} already exists in ${to.label}.`, to)
  }

  const targetToken = await to.readToken()
  if (token && targetToken && targetToken !== token) throw conflict(`${to.label} already has a different API token.`, to)
  const ca = await from.readLocalCa()
  const targetCa = await to.readLocalCa()
  if (ca && targetCa && targetCa.certPem.trim() !== ca.certPem.trim()) throw conflict(`${to.label} already has a different local CA.`, to)

  let versions = 0
  for (const live of lineages) {
    for (const version of await from.certs.versions(live.name)) {
      const stored = (await from.certs.version(live.name, version))!
      const copied = await to.certs.put(live.name, await bundleOf(stored))
      if (copied.version !== version) throw new StoreError(`Version ${version} of "${live.name}" became ${copied.version} in ${to.label}.`, {code: 'MFC_STORE_IO', suggestions: ['Copy into an empty target.']})
      versions++
    }

    if ((await to.certs.live(live.name))?.version !== live.version) await to.certs.rollback(live.name, live.version)
  }

  for (const record of accounts) {
    const {pem} = await from.accounts.key(record.directory)
    await to.accounts.importKey(record.directory, pem)
    await to.accounts.save(record)
  }

  const tokenState = token === undefined ? 'none' : await to.writeToken(token) ? 'copied' : 'already there'
  const caState = ca === undefined ? 'none' : await to.writeLocalCa(ca) ? 'copied' : 'already there'
  await verify(from, to, token)
  return {from: from.label, to: to.label, lineages: lineages.length, versions, accounts: accounts.length, token: tokenState, localCa: caState, verified: true}
}

/** Every version, live pointer, account key/record and the token compared on both sides. */
async function verify(from: StateSide, to: StateSide, token: string | undefined): Promise<void> {
  const mismatch = (what: string) => new StoreError(`Verification failed: ${what} differs between ${from.label} and ${to.label}.`, {
    code: 'MFC_STORE_IO',
    suggestions: ['Check the target (disk, database) and copy again into an empty one.'],
  })
  for (const live of await from.certs.list()) {
    for (const version of await from.certs.versions(live.name)) {
      const [a, b] = await Promise.all([from.certs.version(live.name, version), to.certs.version(live.name, version)])
      if (!b || await digest(a!) !== await digest(b)) throw mismatch(`version ${version} of "${live.name}"`)
    }

    if ((await to.certs.live(live.name))?.version !== live.version) throw mismatch(`the live version of "${live.name}"`)
  }

  for (const record of await from.accounts.records()) {
    const [a, b] = await Promise.all([from.accounts.key(record.directory), to.accounts.key(record.directory)])
    if (a.pem !== b.pem || canonical(await to.accounts.record(record.directory) ?? {}) !== canonical(record)) throw mismatch(`the ACME account of ${record.directory}`)
  }

  if (token !== undefined && await to.readToken() !== token) throw mismatch('the API token')
  const [caFrom, caTo] = await Promise.all([from.readLocalCa(), to.readLocalCa()])
  if (caFrom && (caFrom.certPem.trim() !== caTo?.certPem.trim() || caFrom.keyPem.trim() !== caTo?.keyPem.trim())) throw mismatch('the local CA')
}
