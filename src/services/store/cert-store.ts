import type {KeySpec} from '../certificates/key-spec.js'

export type IssuerKind = 'local-ca' | 'acme' | 'custom'

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
  put(name: string, bundle: CertBundle): Promise<StoredCert>
  /** Makes an older version live again (the previous one when `version` is omitted). */
  rollback(name: string, version?: string): Promise<StoredCert>
}
