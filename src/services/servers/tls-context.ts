import {X509Certificate, constants as cryptoConstants, createPrivateKey, randomBytes} from 'node:crypto'
import {type FSWatcher, promises as fs, watch} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {type SecureContextOptions, type Server as TlsServer, createSecureContext} from 'node:tls'

import type {Clock} from '../../lib/clock.js'
import {StoreError, errnoCode} from '../../lib/errors.js'
import type {MfcEventBus} from '../../lib/events.js'
import type {Logger} from '../../lib/logger.js'
import {parseCertificates} from '../certificates/inspect.js'

/**
 * Mozilla's "intermediate" profile (ssl-config.mozilla.org, v5.7): TLS 1.2 ECDHE + AEAD suites
 * and the three TLS 1.3 suites. Its DHE suites are left out: they need a 2048-bit DH group that
 * Node does not configure by default, and every client that can do DHE-AES-GCM can do ECDHE.
 */
export const MOZILLA_INTERMEDIATE_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')
export const MOZILLA_INTERMEDIATE_CURVES = 'X25519:prime256v1:secp384r1'

/** The certificate and key currently served, from one version of the store. */
export interface TlsMaterial {
  certPem: string
  keyPem: string
  /** The files actually read, symlinks resolved. */
  certPath: string
  keyPath: string
  serial: string
  fingerprint256: string
  notAfter: Date
}

export interface TlsContextOptions {
  certFile: string
  keyFile: string
  /** `ciphers` of ssl-config.json; null means Mozilla intermediate. */
  ciphers?: string | null
  /** `ssl_version`: "TLSv1_3" raises the floor to TLS 1.3; anything else means TLS 1.2. */
  sslVersion?: string
  logger: Logger
  clock: Clock
  events?: MfcEventBus
  /** Quiet period after a file change before reloading (renewals touch several files). */
  debounceMs?: number
  /** How often `startTicketRotation` replaces the session-ticket key (default 12 h). */
  ticketRotationMs?: number
}

export type ReloadOutcome =
  | {status: 'reloaded'; serial: string; previousSerial: string}
  | {status: 'unchanged'; serial: string}
  | {status: 'rejected'; error: Error}

/**
 * Owns the TLS configuration of every server of `mfc serve`: one hardened option set, one
 * certificate/key pair, shared session-ticket keys (so resumption works across the three ports
 * and across reloads). `reload()` reads the live files again and, only if the new pair is
 * valid, swaps it into every registered server with `setSecureContext`: new handshakes get the
 * new certificate, open connections are untouched. A bad pair is logged and rejected; the old
 * one keeps serving. Reloads are serialized; `close()` stops the watchers and the ticket
 * rotation and is idempotent.
 *
 * Session-ticket keys are replaced every `ticketRotationMs` (`startTicketRotation`), on every
 * server at once, so a stolen key decrypts at most one period's resumed sessions. Node's public
 * TLS API holds one ticket key per context (`setTicketKeys`), so a ticket made under the
 * previous key no longer resumes: that client does one full handshake. With tickets valid for
 * `sessionTimeout` (1 h) and a 12 h period, that is at most the last hour's tickets, twice a day.
 */
export class TlsContextManager {
  private material?: TlsMaterial
  private readonly servers = new Map<TlsServer, string>()
  private ticketKeys = randomBytes(48)
  private rotation?: NodeJS.Timeout
  /** How many times the ticket key was replaced (tests wait on it; never a secret). */
  ticketRotations = 0
  private readonly watchers: FSWatcher[] = []
  private timer?: NodeJS.Timeout
  private queue: Promise<unknown> = Promise.resolve()

  constructor(private readonly options: TlsContextOptions) {}

  get current(): TlsMaterial {
    if (!this.material) throw new Error('TlsContextManager.load() was not called')
    return this.material
  }

  /** Whole days until the served certificate expires (negative once expired). */
  daysLeft(): number {
    return Math.floor((this.current.notAfter.getTime() - this.options.clock.now().getTime()) / 86_400_000)
  }

  /** Reads and checks the pair; the first call must succeed before servers are built. */
  async load(): Promise<TlsMaterial> {
    const material = await this.read()
    createSecureContext(this.contextOptions(material))
    this.material = material
    if (material.notAfter <= this.options.clock.now()) {
      this.options.logger.warn({certFile: material.certPath, notAfter: material.notAfter.toISOString()}, 'The served certificate has expired: renew it (mfc cert renew)')
    }

    return material
  }

  /** Options for `https.createServer` / `tls.createServer`: certificate plus hardening. */
  serverOptions(): SecureContextOptions & {ticketKeys: Buffer; handshakeTimeout: number} {
    return {...this.contextOptions(this.current), handshakeTimeout: 10_000}
  }

  /** Adds a server to the set `reload()` updates; returns the function that removes it. */
  register(name: string, server: TlsServer): () => void {
    this.servers.set(server, name)
    return () => {
      this.servers.delete(server)
    }
  }

  /** Re-reads the live pair and swaps it in if it changed and is valid. Never throws. */
  reload(reason: string): Promise<ReloadOutcome> {
    const next = this.queue.then(() => this.doReload(reason))
    this.queue = next.catch(() => {})
    return next
  }

  /**
   * Watches the directories of the live files (and, when a directory is a symlink like the
   * store's `live`, the directory holding the link), reloading after `debounceMs` of quiet.
   */
  async watch(): Promise<void> {
    const dirs = new Set<string>()
    for (const file of [this.options.certFile, this.options.keyFile]) {
      const dir = dirname(file)
      dirs.add(dir)
      const stat = await fs.lstat(dir).catch(() => undefined)
      if (stat?.isSymbolicLink()) dirs.add(dirname(dir))
    }

    for (const dir of dirs) {
      try {
        const watcher = watch(dir, {persistent: false}, () => this.schedule())
        watcher.on('error', (error) => this.options.logger.warn({dir, err: error.message}, 'Stopped watching a certificate directory'))
        this.watchers.push(watcher)
      } catch (error) {
        this.options.logger.warn({dir, err: (error as Error).message}, 'Cannot watch a certificate directory; reload with SIGHUP instead')
      }
    }
  }

  /** Starts replacing the ticket key every `ticketRotationMs`; idempotent. */
  startTicketRotation(): void {
    if (this.rotation) return
    this.rotation = setInterval(() => this.rotateTicketKeys(), this.options.ticketRotationMs ?? 43_200_000)
    this.rotation.unref()
  }

  /** A new ticket key, now, on every registered server (and in every later reload). */
  rotateTicketKeys(): void {
    this.ticketKeys = randomBytes(48)
    for (const server of this.servers.keys()) server.setTicketKeys(this.ticketKeys)
    this.ticketRotations++
    this.options.logger.debug({rotations: this.ticketRotations}, 'Rotated the TLS session-ticket key')
  }

  close(): void {
    clearInterval(this.rotation)
    clearTimeout(this.timer)
    for (const watcher of this.watchers.splice(0)) watcher.close()
  }

  private schedule(): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.reload('file change'), this.options.debounceMs ?? 250)
    this.timer.unref()
  }

  private async doReload(reason: string): Promise<ReloadOutcome> {
    const {logger, events} = this.options
    const previous = this.current
    let material: TlsMaterial
    try {
      material = await this.read()
      if (material.certPem === previous.certPem && material.keyPem === previous.keyPem) return {status: 'unchanged', serial: previous.serial}
      if (material.notAfter <= this.options.clock.now()) throw new StoreError(`The new certificate ${material.certPath} has already expired.`, {code: 'MFC_CERT_INVALID'})
      createSecureContext(this.contextOptions(material))
    } catch (error) {
      logger.error({reason, err: (error as Error).message, certFile: this.options.certFile}, 'Certificate reload rejected; the previous certificate keeps serving')
      for (const name of this.names()) events?.emit('server:reload-failed', {service: name, error: error as Error})
      return {status: 'rejected', error: error as Error}
    }

    const options = this.contextOptions(material)
    for (const server of this.servers.keys()) server.setSecureContext(options)
    this.material = material
    logger.info({reason, serial: material.serial, previousSerial: previous.serial, notAfter: material.notAfter.toISOString()}, 'Certificate reloaded')
    for (const name of this.names()) events?.emit('server:reloaded', {service: name, serial: material.serial})
    return {status: 'reloaded', serial: material.serial, previousSerial: previous.serial}
  }

  private names(): string[] {
    return [...new Set(this.servers.values())]
  }

  /**
   * Resolves the directory symlink once for both files when they share a directory (the
   * store's `live -> versions/NNNN`), so a switch between the two reads cannot mix versions.
   */
  private async read(): Promise<TlsMaterial> {
    const {certFile, keyFile} = this.options
    try {
      const certDir = await fs.realpath(dirname(certFile))
      const keyDir = dirname(keyFile) === dirname(certFile) ? certDir : await fs.realpath(dirname(keyFile))
      const certPath = await fs.realpath(join(certDir, basename(certFile)))
      const keyPath = await fs.realpath(join(keyDir, basename(keyFile)))
      const [certPem, keyPem] = await Promise.all([fs.readFile(certPath, 'utf8'), fs.readFile(keyPath, 'utf8')])
      return {certPem, keyPem, certPath, keyPath, ...this.check(certPem, keyPem, certPath, keyPath)}
    } catch (error) {
      if (error instanceof StoreError) throw error
      const missing = errnoCode(error) === 'ENOENT'
      throw new StoreError(`Cannot read the certificate ${certFile} or key ${keyFile}: ${(error as Error).message}`, {
        code: 'MFC_CERT_INVALID',
        cause: error,
        suggestions: [missing ? 'Create one with `mfc ssl init --domain localhost` (or fix cert_file/key_file in ssl-config.json).' : `Check the permissions of ${certFile} and ${keyFile}.`],
      })
    }
  }

  private check(certPem: string, keyPem: string, certPath: string, keyPath: string): Pick<TlsMaterial, 'serial' | 'fingerprint256' | 'notAfter'> {
    const [leaf] = parseCertificates(certPem, certPath)
    let matches = false
    try {
      matches = leaf.checkPrivateKey(createPrivateKey(keyPem))
    } catch (error) {
      throw new StoreError(`${keyPath} is not a readable private key: ${(error as Error).message}`, {code: 'MFC_CERT_INVALID', cause: error})
    }

    if (!matches) {
      throw new StoreError(`The private key ${keyPath} does not belong to the certificate ${certPath}.`, {
        code: 'MFC_CERT_INVALID',
        suggestions: ['Install a matching pair (`mfc ssl init --cert-file ... --key-file ...`), or roll back the store.'],
      })
    }

    return {serial: leaf.serialNumber, fingerprint256: leaf.fingerprint256, notAfter: new Date((leaf as X509Certificate).validTo)}
  }

  private contextOptions(material: TlsMaterial): SecureContextOptions & {ticketKeys: Buffer} {
    const tls13Only = /1[._]3/.test(this.options.sslVersion ?? '')
    return {
      cert: material.certPem,
      key: material.keyPem,
      minVersion: tls13Only ? 'TLSv1.3' : 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ciphers: this.options.ciphers ?? MOZILLA_INTERMEDIATE_CIPHERS,
      ecdhCurve: MOZILLA_INTERMEDIATE_CURVES,
      // Mozilla intermediate: every suite is strong, so the client (which knows whether it has
      // AES hardware) picks.
      honorCipherOrder: false,
      // Client-initiated renegotiation is a CPU DoS vector and nobody needs it.
      secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
      sessionTimeout: 3600,
      ticketKeys: this.ticketKeys,
    }
  }
}
