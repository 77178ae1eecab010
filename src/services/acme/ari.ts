import {X509Certificate, createHash} from 'node:crypto'

/**
 * ACME Renewal Information (RFC 9773): the CA's suggested renewal window for a certificate.
 * Advisory only: callers use it to renew earlier, and an ARI failure never blocks renewal.
 * Plain `fetch` (no acme-client): the request is an unauthenticated GET, and `renew-if-needed`
 * must stay fast when nothing is due.
 */
export interface RenewalWindow {
  start: Date
  end: Date
  /** Where the CA explains an unusual window (e.g. a revocation event). */
  explanationUrl?: string
}

interface Tlv {
  tag: number
  start: number
  end: number
}

/** One DER element at `offset` (definite lengths only, which DER guarantees). */
function readTlv(der: Uint8Array, offset: number): Tlv {
  const tag = der[offset]
  let length = der[offset + 1]
  let start = offset + 2
  if (length & 0x80) {
    const octets = length & 0x7F
    length = 0
    for (let i = 0; i < octets; i++) length = (length * 256) + der[start + i]
    start += octets
  }

  if (start + length > der.length) throw new Error('truncated DER')
  return {tag, start, end: start + length}
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const list: Tlv[] = []
  for (let offset = parent.start; offset < parent.end;) {
    const child = readTlv(der, offset)
    list.push(child)
    offset = child.end
  }

  return list
}

const AKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1D, 0x23])

/**
 * The ARI CertID: base64url(AKI keyIdentifier) "." base64url(serial number DER content
 * octets), RFC 9773 section 4.1.
 */
export function ariCertId(certPem: string): string {
  const der = new Uint8Array(new X509Certificate(certPem).raw)
  const tbs = children(der, readTlv(der, 0))[0]
  const fields = children(der, tbs)
  const serial = fields[fields[0].tag === 0xA0 ? 1 : 0]
  const extensions = fields.find((f) => f.tag === 0xA3)
  let keyId: Uint8Array | undefined
  for (const extension of extensions ? children(der, children(der, extensions)[0]) : []) {
    const parts = children(der, extension)
    if (!Buffer.from(der.subarray(parts[0].start - 2, parts[0].end)).equals(AKI_OID)) continue
    const value = parts.at(-1)!
    const aki = readTlv(der, value.start)
    const id = children(der, aki).find((p) => p.tag === 0x80)
    if (id) keyId = der.subarray(id.start, id.end)
  }

  if (!keyId) throw new Error('the certificate has no Authority Key Identifier')
  return `${Buffer.from(keyId).toString('base64url')}.${Buffer.from(der.subarray(serial.start, serial.end)).toString('base64url')}`
}

async function getJson(url: string, signal: AbortSignal): Promise<unknown> {
  const response = await fetch(url, {signal, headers: {'User-Agent': 'mfc (ARI)'}})
  if (!response.ok) throw new Error(`GET ${url} answered HTTP ${response.status}`)
  return response.json()
}

/**
 * Fetches ARI windows. One instance per run: it reads each CA's directory once, however many
 * certificates come from that CA (they are checked in parallel).
 */
export class AriClient {
  private readonly directories = new Map<string, Promise<{renewalInfo?: unknown}>>()

  constructor(private readonly timeoutMs = 5000) {}

  /**
   * The CA's window for `certPem`, or undefined when its directory offers no `renewalInfo`.
   * Throws on network, HTTP or format errors (callers report them and carry on).
   */
  async window(directoryUrl: string, certPem: string): Promise<RenewalWindow | undefined> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    if (!this.directories.has(directoryUrl)) this.directories.set(directoryUrl, getJson(directoryUrl, signal) as Promise<{renewalInfo?: unknown}>)
    const directory = await this.directories.get(directoryUrl)!
    if (typeof directory.renewalInfo !== 'string') return undefined
    const url = `${directory.renewalInfo.replace(/\/+$/, '')}/${ariCertId(certPem)}`
    const body = await getJson(url, signal) as {suggestedWindow?: {start?: string; end?: string}; explanationURL?: string}
    const start = new Date(body.suggestedWindow?.start ?? Number.NaN)
    const end = new Date(body.suggestedWindow?.end ?? Number.NaN)
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
      throw new Error(`${url} returned no valid suggestedWindow`)
    }

    return {start, end, explanationUrl: body.explanationURL}
  }
}

/**
 * The moment in the window this client renews at: uniformly spread over the window as RFC
 * 9773 asks, but fixed per certificate (derived from its serial) so that successive cron
 * runs agree instead of re-rolling the dice each time.
 */
export function ariRenewAt(window: RenewalWindow, serial: string): Date {
  const fraction = createHash('sha256').update(serial).digest().readUInt32BE(0) / 0x1_0000_0000
  return new Date(window.start.getTime() + fraction * (window.end.getTime() - window.start.getTime()))
}
