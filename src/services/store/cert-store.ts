import {join} from 'node:path'

import {StoreError} from '../../lib/errors.js'
import type {KeySpec} from '../../lib/key-spec.js'

export type IssuerKind = 'local-ca' | 'acme' | 'custom'

/**
 * How an ACME lineage's challenges were answered, so renewals answer them the same way. Holds
 * paths and commands only, never a secret (the TSIG key stays in its credentials file).
 */
export interface ChallengeRecord {
  type: 'http-01' | 'dns-01'
  /** DNS-01 by RFC 2136: certbot-dns-rfc2136's credentials file. */
  rfc2136Credentials?: string
  /** certbot's --manual-auth-hook / --manual-cleanup-hook. */
  manualAuthHook?: string
  manualCleanupHook?: string
  /** Where the propagation check starts (host:port), when not the credentials' server. */
  dnsNameserver?: string
  propagationTimeoutS?: number
  propagationIntervalS?: number
}

/** What the store records next to each version (meta.json). */
export interface CertMeta {
  name: string
  domains: string[]
  issuer: IssuerKind
  keySpec?: KeySpec
  /** ACME directory URL the certificate came from (for renewals against the same CA). */
  acmeDirectory?: string
  /** ACME profile it was ordered under (draft-ietf-acme-profiles): every renewal asks for it again. */
  profile?: string
  /** ACME lineages: the challenge type and solver settings to renew with (absent: HTTP-01 as configured). */
  challenge?: ChallengeRecord
  /** Set on versions adopted from another tool (`cert import --from-certbot`). */
  adoptedFrom?: {tool: 'certbot'; lineage: string; archiveVersion: number; directory: string}
  serial: string
  notBefore: string
  notAfter: string
  createdAt: string
}

/** One stored version of a lineage, with absolute paths inside its version directory. */
export interface StoredCert {
  name: string
  version: string
  dir: string
  /** Leaf + chain (what servers load as `cert`). */
  fullchainFile: string
  certFile: string
  chainFile: string
  keyFile: string
  meta: CertMeta
}

export interface CertBundle {
  /** The leaf certificate, PEM. */
  certPem: string
  /** Issuer certificates after the leaf, PEM (may be empty). */
  chainPem: string
  keyPem: string
  meta: CertMeta
}

/**
 * Versioned certificate storage. `live(name)` resolves the live version once, so a reader
 * gets a cert and key of the same version even while a writer switches versions.
 *
 * Contract: `put` is atomic (a crash at any instant leaves the previous live version, or the
 * new one, fully in place) and must be called with the mfc lock held; it never deletes old
 * versions. `live` returns undefined when the lineage does not exist.
 */
export interface CertStore {
  live(name: string): Promise<StoredCert | undefined>
  list(): Promise<StoredCert[]>
  versions(name: string): Promise<string[]>
  /** One stored version (any, not only the live one); undefined when missing. */
  version(name: string, version: string): Promise<StoredCert | undefined>
  put(name: string, bundle: CertBundle): Promise<StoredCert>
  /** Makes an older version live again (the previous one when `version` is omitted). */
  rollback(name: string, version?: string): Promise<StoredCert>
  /**
   * Deletes a whole lineage (every version), atomically: afterwards `live(name)` is undefined,
   * and a crash part-way leaves either the complete lineage or none of it. Only the explicit
   * `cert delete` calls this, with the mfc lock held; renewals never delete. Returns false when
   * there was no such lineage.
   */
  remove(name: string): Promise<boolean>
}

/**
 * The version `rollback` makes live, the same for every store: `version` when given, else the
 * newest one older than the live version. Throws a StoreError naming the versions kept when there
 * is no such version.
 */
export function rollbackTarget(name: string, current: StoredCert | undefined, versions: readonly string[], version?: string): string {
  const target = version ?? versions.filter((v) => current === undefined || v < current.version).at(-1)
  if (!target || !versions.includes(target)) {
    throw new StoreError(`Certificate "${name}" has no version ${target ?? 'before ' + current?.version} to roll back to.`, {
      code: 'MFC_STORE_IO',
      suggestions: [`Versions kept: ${versions.join(', ') || 'none'}.`],
    })
  }

  return target
}

/** A version's files inside its directory: the one place every store names them. */
export function storedCertAt(name: string, version: string, dir: string, meta: CertMeta): StoredCert {
  return {
    name, version, dir, meta,
    fullchainFile: join(dir, 'fullchain.pem'),
    certFile: join(dir, 'cert.pem'),
    chainFile: join(dir, 'chain.pem'),
    keyFile: join(dir, 'privkey.pem'),
  }
}
