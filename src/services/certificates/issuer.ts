import type {KeySpec} from './key-spec.js'
import type {IssuerKind} from '../store/cert-store.js'

export interface IssueRequest {
  /** Lineage name in the store. */
  name: string
  domains: string[]
  keySpec: KeySpec
  now: Date
  /** Progress for task lists and logs ("creating account", "validating example.org"...). */
  onStep?: (step: string) => void
  /** Cancels the issuance (serve shutting down): it rejects soon after, having written nothing. */
  signal?: AbortSignal
  /** ACME profile (draft-ietf-acme-profiles) to order under; ignored by issuers without profiles. */
  profile?: string
  /**
   * Fail (MfcError, exit 2, naming the profiles offered) when the CA does not offer `profile`,
   * instead of ordering its default profile with a warning.
   */
  profileRequired?: boolean
}

export interface IssuedCertificate {
  certPem: string
  chainPem: string
  keyPem: string
  /** Extra facts for the store's meta.json (e.g. the ACME directory URL). */
  meta?: {acmeDirectory?: string; profile?: string}
  /** Things the user should know that did not stop the issuance (a preferred profile not offered). */
  warnings?: string[]
}

/**
 * Something that turns names into a signed certificate and its key. Implementations never
 * print and never touch the store; the caller holds the lock and installs the result.
 * A failure throws an IssuerError (keeping an ACME problem document when there is one).
 *
 * Concurrency: `issue()` keeps no per-call state on the instance, so one issuer may serve
 * several calls at once. Cancellation: an aborted `request.signal` makes `issue()` reject
 * promptly (between two requests or polls) and release whatever it set up (challenges,
 * listeners); the certificate it was ordering is never returned.
 */
export interface Issuer {
  readonly kind: IssuerKind
  /** Human name for messages ("local CA", "ACME https://.../dir"). */
  readonly label: string
  issue(request: IssueRequest): Promise<IssuedCertificate>
}
