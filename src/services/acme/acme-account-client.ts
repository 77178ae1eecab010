import type {KeyObject} from 'node:crypto'

import {IssuerError} from '../../lib/errors.js'
import {httpRequest} from '../http-client.js'
import {type FlattenedJws, publicJwk, signJws} from './jws.js'

const PROBLEM = 'urn:ietf:params:acme:error:'

/** RFC 5280 §5.3.1 reason codes that RFC 8555 §7.6 lets a subscriber give (certbot's names). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keycompromise: 1,
  affiliationchanged: 3,
  superseded: 4,
  cessationofoperation: 5,
} as const

export type RevocationReason = keyof typeof REVOCATION_REASONS

/** The parts of an RFC 8555 directory this client uses. */
interface Directory {
  newNonce: string
  newAccount: string
  revokeCert: string
  keyChange: string
  meta?: {termsOfService?: string}
}

/** An ACME account object as the CA returns it (RFC 8555 §7.1.2). */
export interface AcmeAccountObject {
  status: 'valid' | 'deactivated' | 'revoked' | string
  contact?: string[]
  termsOfServiceAgreed?: boolean
  orders?: string
  createdAt?: string
  [key: string]: unknown
}

/** Who signs a request: an account (`kid` = account URL) or a bare key (`jwk` in the header). */
export interface AcmeSigner {
  key: KeyObject
  kid?: string
}

interface Answer {
  status: number
  location?: string
  body: unknown
}

/**
 * The account-level RFC 8555 operations that the ordering client (acme-issuer, acme-client)
 * does not offer or cannot sign the way they must be: show (POST-as-GET), deactivate, key
 * change (§7.3.5, a JWS inside a JWS), and revocation signed either by the account or by the
 * certificate's own key (§7.6; acme-client always signs with the account). JWS by node:crypto,
 * transport by the undici adapter. Fresh nonces, badNonce retried. Every failure is an
 * IssuerError keeping the CA's problem document. Stateless apart from the nonce and the
 * directory; never prints.
 */
export class AcmeAccountClient {
  private directoryDoc?: Directory
  private nonce?: string

  constructor(readonly directoryUrl: string, private readonly options: {timeoutMs?: number} = {}) {}

  /** The account the signer's `kid` names, as the CA sees it now. */
  async account(signer: Required<AcmeSigner>): Promise<AcmeAccountObject> {
    return (await this.post(signer.kid, '', signer)).body as AcmeAccountObject
  }

  /** The URL of the account registered with `key`, or undefined (RFC 8555 `onlyReturnExisting`). */
  async findAccount(key: KeyObject): Promise<string | undefined> {
    const {newAccount} = await this.directory()
    try {
      return (await this.post(newAccount, {onlyReturnExisting: true}, {key})).location
    } catch (error) {
      if ((error as IssuerError).problem?.type === `${PROBLEM}accountDoesNotExist`) return undefined
      throw error
    }
  }

  /** Deactivates the account for good (RFC 8555 §7.3.6): the CA refuses it from now on. */
  async deactivate(signer: Required<AcmeSigner>): Promise<AcmeAccountObject> {
    return (await this.post(signer.kid, {status: 'deactivated'}, signer)).body as AcmeAccountObject
  }

  /** Rolls the account over to `newKey` (RFC 8555 §7.3.5); the old key stops working at once. */
  async keyChange(signer: Required<AcmeSigner>, newKey: KeyObject): Promise<void> {
    const {keyChange} = await this.directory()
    // The inner JWS is signed by the new key, carries it as `jwk`, and has no nonce (§7.3.5).
    const innerJws: FlattenedJws = signJws(newKey, keyChange, {account: signer.kid, oldKey: publicJwk(signer.key)}, {})
    await this.post(keyChange, innerJws, signer)
  }

  /** Revokes a certificate (DER) with a reason, signed by the account or by the certificate key. */
  async revoke(certDer: Buffer, reason: RevocationReason, signer: AcmeSigner): Promise<void> {
    const {revokeCert} = await this.directory()
    await this.post(revokeCert, {certificate: certDer.toString('base64url'), reason: REVOCATION_REASONS[reason]}, signer)
  }

  async termsOfService(): Promise<string | undefined> {
    return (await this.directory()).meta?.termsOfService
  }

  private async directory(): Promise<Directory> {
    if (this.directoryDoc) return this.directoryDoc
    const answer = await this.send(this.directoryUrl, 'GET')
    if (answer.status !== 200) throw this.failure(answer, `GET ${this.directoryUrl}`)
    this.directoryDoc = answer.body as Directory
    return this.directoryDoc
  }

  private async freshNonce(): Promise<string> {
    if (this.nonce) {
      const nonce = this.nonce
      this.nonce = undefined
      return nonce
    }

    const {newNonce} = await this.directory()
    const answer = await this.send(newNonce, 'HEAD')
    if (!this.nonce) throw this.failure(answer, `HEAD ${newNonce}`)
    const nonce = this.nonce
    this.nonce = undefined
    return nonce
  }

  /** A signed POST; a badNonce answer is retried with the fresh nonce it carries (CAs reject some on purpose). */
  private async post(url: string, payload: unknown, signer: AcmeSigner): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const body = JSON.stringify(signJws(signer.key, url, payload, {kid: signer.kid, nonce: await this.freshNonce()}))
      const answer = await this.send(url, 'POST', body)
      if (answer.status < 400) return answer
      if ((answer.body as {type?: string})?.type === `${PROBLEM}badNonce` && attempt < 20) continue
      throw this.failure(answer, `POST ${url}`)
    }
  }

  private async send(url: string, method: string, body?: string): Promise<Answer> {
    let exchange
    try {
      exchange = await httpRequest(url, {method, body, headers: body ? {'content-type': 'application/jose+json'} : {}, timeoutMs: this.options.timeoutMs})
    } catch (error) {
      throw new IssuerError(`The CA at ${this.directoryUrl} could not be reached (${method} ${url}): ${(error as Error).message}.`, {
        code: 'MFC_ISSUER_UNREACHABLE', cause: error,
        suggestions: [`Check the network and the directory URL (curl -sS ${this.directoryUrl}).`, 'For a private or test CA, trust its HTTPS root: NODE_EXTRA_CA_CERTS=/path/to/root.pem mfc ...'],
      })
    }

    if (exchange.headers['replay-nonce']) this.nonce = exchange.headers['replay-nonce']
    let parsed: unknown = exchange.body
    try {
      parsed = exchange.body ? JSON.parse(exchange.body) : undefined
    } catch {}

    return {status: exchange.status, location: exchange.headers.location, body: parsed}
  }

  private failure(answer: Answer, what: string): IssuerError {
    const problem = (typeof answer.body === 'object' && answer.body !== null ? answer.body : {}) as {type?: string; detail?: string}
    const kind = problem.type?.replace(PROBLEM, '')
    return new IssuerError(`The CA at ${this.directoryUrl} refused ${what}: ${problem.detail ?? `HTTP ${answer.status}`}${kind ? ` (${kind})` : ''}.`, {
      code: answer.status === 429 ? 'MFC_ISSUER_RATE_LIMITED' : 'MFC_ISSUER_FAILED',
      problem: {type: problem.type, detail: problem.detail, status: answer.status, url: what.split(' ')[1]},
      suggestions: suggestionFor(kind),
    })
  }
}

function suggestionFor(kind: string | undefined): string[] {
  switch (kind) {
    case 'alreadyRevoked': return ['The certificate is revoked already: nothing more to do (delete it with `mfc cert delete --cert-name NAME`).']
    case 'unauthorized': return ['Sign with the account that ordered the certificate, or with the certificate\'s own key (`mfc cert revoke --cert-path FILE --key-path KEY`).']
    case 'accountDoesNotExist': return ['The CA does not know this account (deactivated, or the CA was reset): `mfc account show` to check.']
    case 'badRevocationReason': return ['Pick another --reason (unspecified, keycompromise, affiliationchanged, superseded, cessationofoperation).']
    default: return ['Run again with --debug for the CA\'s full answer.']
  }
}
