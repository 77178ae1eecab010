import {X509Certificate} from 'node:crypto'
import {isIP} from 'node:net'
import {type ConnectionOptions, type PeerCertificate, type TLSSocket, checkServerIdentity, connect as tlsConnect, rootCertificates} from 'node:tls'

import {type Check, type ProbeTarget, check} from './check.js'

const TIMEOUT_MS = 5000
/** OpenSSL 3 refuses TLS 1.0/1.1 and SHA-1 signatures at the default security level: a probe must lower it to see what the server offers. */
const LEGACY = 'DEFAULT:@SECLEVEL=0'

type Outcome = {ok: true; socket: TLSSocket} | {ok: false; error: string}

/** One handshake; the socket is returned open (the caller destroys it). Never throws. */
export function handshake(target: ProbeTarget, options: ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    let socket: TLSSocket
    try {
      socket = tlsConnect({host: target.host, port: target.port, servername: isIpLiteral(target.servername) ? undefined : target.servername, rejectUnauthorized: false, ...options})
    } catch (error) {
      resolve({ok: false, error: (error as NodeJS.ErrnoException).code ?? (error as Error).message})
      return
    }

    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)))
    socket.once('secureConnect', () => {
      socket.setTimeout(0)
      resolve({ok: true, socket})
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ok: false, error: error.code ?? error.message}))
  })
}

function groupOf(socket: TLSSocket): string | null {
  return (socket.getEphemeralKeyInfo() as {name?: string} | null)?.name ?? null
}

function firstOf(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value[0] : value ?? ''
}

/** RFC 6066 forbids IP addresses in SNI. */
function isIpLiteral(name: string): boolean {
  return isIP(name) !== 0
}

const PROTOCOLS = [
  {id: 'protocol.tls1', version: 'TLSv1', name: 'TLS 1.0', wanted: false},
  {id: 'protocol.tls1_1', version: 'TLSv1.1', name: 'TLS 1.1', wanted: false},
  {id: 'protocol.tls1_2', version: 'TLSv1.2', name: 'TLS 1.2', wanted: true},
  {id: 'protocol.tls1_3', version: 'TLSv1.3', name: 'TLS 1.3', wanted: true},
] as const

/** One handshake per version with min = max, ciphers at security level 0 so old versions are honestly offered. */
export async function protocolChecks(target: ProbeTarget): Promise<Check[]> {
  return Promise.all(PROTOCOLS.map(async (p) => {
    const outcome = await handshake(target, {minVersion: p.version, maxVersion: p.version, ciphers: LEGACY})
    const offered = outcome.ok && outcome.socket.getProtocol() === p.version
    const cipher = outcome.ok ? outcome.socket.getCipher()?.name : undefined
    if (outcome.ok) outcome.socket.destroy()
    const title = `${p.name} ${p.wanted ? 'accepted' : 'refused'}`
    if (p.wanted) {
      // A server without TLS 1.3 is behind, not broken (testssl rates it the same way).
      const status = offered ? 'pass' : p.version === 'TLSv1.3' ? 'warn' : 'fail'
      return check(p.id, title, status, offered ? 'offered' : 'not offered')
    }

    return check(p.id, title, offered ? 'fail' : 'pass', offered ? `offered (${cipher}): deprecated by RFC 8996` : 'not offered')
  }))
}

/** Cipher families a client offers alone (TLS <= 1.2); any accepted one is a finding. */
const FAMILIES = [
  {id: 'cipher.null', name: 'NULL / anonymous', list: 'eNULL:aNULL'},
  {id: 'cipher.export', name: 'EXPORT', list: 'EXP'},
  {id: 'cipher.rc4', name: 'RC4', list: 'RC4'},
  {id: 'cipher.3des', name: '3DES', list: '3DES'},
  {id: 'cipher.rsa_kex', name: 'RSA key exchange (no forward secrecy)', list: 'kRSA'},
  {id: 'cipher.cbc', name: 'CBC (non-AEAD)', list: 'ALL:COMPLEMENTOFALL:!AESGCM:!AESCCM:!CHACHA20:!ARIAGCM:!eNULL:!aNULL'},
] as const

export async function cipherChecks(target: ProbeTarget): Promise<Check[]> {
  return Promise.all(FAMILIES.map(async (family) => {
    const title = `${family.name} refused`
    const outcome = await handshake(target, {minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: `${family.list}:@SECLEVEL=0`})
    if (!outcome.ok && outcome.error === 'ERR_SSL_NO_CIPHER_MATCH') {
      // Node's OpenSSL 3 cannot even offer these suites; an OpenSSL 3 server cannot offer them either.
      return check(family.id, title, 'skip', 'not testable: this client (OpenSSL 3) has no such suites')
    }

    if (!outcome.ok) return check(family.id, title, 'pass', 'not offered')
    const cipher = outcome.socket.getCipher()
    outcome.socket.destroy()
    return check(family.id, title, 'fail', `offered: ${cipher.name} (${cipher.version})`)
  }))
}

export interface CertificateFacts {
  protocol: string | null
  cipher: string | null
  group: string | null
  subject: string
  issuer: string
  sans: string[]
  notAfter: string
  daysLeft: number
  keyType: string
  keySize: number | null
}

function keyOf(raw: Buffer): {type: string; size: number | null; summary: string; strong: boolean} {
  const {publicKey} = new X509Certificate(raw)
  const details = publicKey.asymmetricKeyDetails ?? {}
  if (publicKey.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? 'unknown curve'
    const size = curve === 'prime256v1' ? 256 : curve === 'secp384r1' ? 384 : curve === 'secp521r1' ? 521 : null
    return {type: 'ECDSA', size, summary: `ECDSA ${curve}`, strong: (size ?? 0) >= 256}
  }

  const bits = details.modulusLength ?? null
  const type = (publicKey.asymmetricKeyType ?? 'unknown').toUpperCase()
  return {type, size: bits, summary: `${type} ${bits ?? '?'} bits`, strong: type === 'ED25519' || (type.startsWith('RSA') && (bits ?? 0) >= 2048)}
}

/**
 * The certificate checks, from one lenient handshake that trusts the system store plus the
 * configured CA: chain, hostname, expiry, key; then a second handshake for resumption.
 */
export async function certificateChecks(target: ProbeTarget, extraCa: string[], now: Date): Promise<{checks: Check[]; facts: CertificateFacts | null}> {
  const outcome = await handshake(target, {minVersion: 'TLSv1', ciphers: LEGACY, ca: [...rootCertificates, ...extraCa]})
  if (!outcome.ok) return {checks: [check('certificate', 'Certificate', 'fail', `no handshake possible: ${outcome.error}`)], facts: null}
  const {socket} = outcome
  const session = waitForSession(socket)
  const peer = socket.getPeerCertificate(true) as PeerCertificate & {raw: Buffer}
  const key = keyOf(peer.raw)
  const notAfter = new Date(peer.valid_to)
  const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000)
  // Browsers ignore the CN since 2017 (Chrome 58); Node's check still falls back to it.
  const identity = peer.subjectaltname ? checkServerIdentity(target.servername, peer) : new Error('the certificate has no subjectAltName (browsers ignore the CN)')
  const checks = [
    check('chain', 'Chain trusted (system store + configured CA)', socket.authorized ? 'pass' : 'fail', socket.authorized ? `issued by ${nameOf(peer.issuer?.CN) ?? nameOf(peer.issuer?.O) ?? '?'}` : String(socket.authorizationError)),
    check('hostname', `Certificate matches ${target.servername}`, identity ? 'fail' : 'pass', identity ? identity.message : `names: ${peer.subjectaltname ?? nameOf(peer.subject?.CN)}`),
    check('expiry', 'Days to expiry', daysLeft < 0 ? 'fail' : daysLeft <= 7 ? 'fail' : daysLeft <= 30 ? 'warn' : 'pass', daysLeft < 0 ? `expired on ${notAfter.toISOString()}` : `${daysLeft} days (until ${notAfter.toISOString()})`),
    check('key', 'Key type and size', key.strong ? 'pass' : 'fail', key.summary),
  ]
  const facts: CertificateFacts = {
    protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? null, group: groupOf(socket),
    subject: firstOf(peer.subject?.CN), issuer: firstOf(peer.issuer?.CN), sans: (peer.subjectaltname ?? '').split(', ').filter(Boolean).map((s) => s.replace(/^(DNS|IP Address):/, '')),
    notAfter: notAfter.toISOString(), daysLeft, keyType: key.type, keySize: key.size,
  }
  const ticket = await session
  socket.destroy()
  checks.push(await resumptionCheck(target, ticket, extraCa))
  return {checks, facts}
}

/** TLS 1.3 tickets arrive after the handshake: wait for one briefly. */
function waitForSession(socket: TLSSocket): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(socket.getSession()), 300)
    socket.once('session', (session: Buffer) => {
      clearTimeout(timer)
      resolve(session)
    })
  })
}

async function resumptionCheck(target: ProbeTarget, session: Buffer | undefined, extraCa: string[]): Promise<Check> {
  const title = 'Session resumption'
  if (!session) return check('resumption', title, 'info', 'the server issued no session ticket or ID')
  const outcome = await handshake(target, {minVersion: 'TLSv1', ciphers: LEGACY, ca: [...rootCertificates, ...extraCa], session})
  if (!outcome.ok) return check('resumption', title, 'info', `second handshake failed: ${outcome.error}`)
  const reused = outcome.socket.isSessionReused()
  outcome.socket.destroy()
  return check('resumption', title, reused ? 'pass' : 'info', reused ? 'session resumed' : 'not resumed (full handshake every time)')
}

/** The handshake a default client (Node, browsers: TLS >= 1.2, default ciphers) gets. */
export async function defaultHandshakeCheck(target: ProbeTarget): Promise<Check> {
  const outcome = await handshake(target, {})
  if (!outcome.ok) return check('handshake', 'TLS handshake (default client)', 'fail', outcome.error)
  const {socket} = outcome
  const detail = `${socket.getProtocol()} ${socket.getCipher().name}${groupOf(socket) ? `, ${groupOf(socket)}` : ''}${socket.alpnProtocol ? `, ALPN ${socket.alpnProtocol}` : ''}`
  socket.destroy()
  return check('handshake', 'TLS handshake (default client)', 'pass', detail)
}

/** A certificate name field as text: Node gives an array when the attribute repeats. */
function nameOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}
