import type {KeySpec} from '../certificates/key-spec.js'
import type {IssuerKind} from '../store/cert-store.js'

export interface IssueRequest {
  /** Lineage name in the store. */
  name: string
  domains: string[]
  keySpec: KeySpec
  now: Date
  /** Progress for task lists and logs ("creating account", "validating example.org"...). */
  onStep?: (step: string) => void
}

export interface IssuedCertificate {
  certPem: string
  chainPem: string
  keyPem: string
  /** Extra facts for the store's meta.json (e.g. the ACME directory URL). */
  meta?: {acmeDirectory?: string}
}

/**
 * Something that turns names into a signed certificate and its key. Implementations never
 * print and never touch the store; the caller holds the lock and installs the result.
 * A failure throws an IssuerError (keeping an ACME problem document when there is one).
 */
export interface Issuer {
  readonly kind: IssuerKind
  /** Human name for messages ("local CA", "ACME https://.../dir"). */
  readonly label: string
  issue(request: IssueRequest): Promise<IssuedCertificate>
}
