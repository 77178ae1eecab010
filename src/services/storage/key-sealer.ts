import {createCipheriv, createDecipheriv, createHash, randomBytes} from 'node:crypto'

import {ConfigError, StoreError} from '../../lib/errors.js'

const FORMAT = 1
const ID_BYTES = 8
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * Seals private keys for the database with AES-256-GCM. The 32-byte key lives on the nodes
 * (storage_key_file or MFC_STORAGE_KEY), never in the database. A sealed value is
 * `format(1) | key id(8) | iv(12) | tag(16) | ciphertext`; the key id (a hash prefix of the
 * key) lets a wrong key be named as such instead of as "corrupt data", and the associated data
 * binds a sealed key to its lineage and version, so rows cannot be swapped.
 */
export class KeySealer {
  private readonly id: Buffer

  /** `setting` names where the key came from, for error messages. */
  constructor(private readonly key: Buffer, private readonly setting: string) {
    if (key.length !== 32) {
      throw new ConfigError(`The storage encryption key from ${setting} is ${key.length} bytes; it must be 32 bytes (base64 or hex).`, {
        code: 'MFC_CONFIG_VALUE',
        suggestions: ['Make one with `openssl rand -base64 32` and give every node the same key.'],
      })
    }

    this.id = createHash('sha256').update('mfc-storage-key').update(key).digest().subarray(0, ID_BYTES)
  }

  /** Parses a key written as base64 or hex (what `openssl rand` prints). */
  static fromText(text: string, setting: string): KeySealer {
    const trimmed = text.trim()
    const key = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64')
    return new KeySealer(key, setting)
  }

  seal(plain: string, context: string): Buffer {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    cipher.setAAD(Buffer.from(context))
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return Buffer.concat([Buffer.from([FORMAT]), this.id, iv, cipher.getAuthTag(), body])
  }

  open(sealed: Buffer, context: string): string {
    const id = sealed.subarray(1, 1 + ID_BYTES)
    if (sealed[0] !== FORMAT || !id.equals(this.id)) {
      throw new ConfigError(`The private key of ${context} was sealed with a different storage key than the one in ${this.setting}.`, {
        code: 'MFC_CONFIG_VALUE',
        suggestions: [`Give this node the same key as the others (${this.setting}); mfc never stores it in the database.`],
      })
    }

    const ivEnd = 1 + ID_BYTES + IV_BYTES
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(1 + ID_BYTES, ivEnd))
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(sealed.subarray(ivEnd, ivEnd + TAG_BYTES))
    try {
      return Buffer.concat([decipher.update(sealed.subarray(ivEnd + TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch (error) {
      throw new StoreError(`The sealed private key of ${context} does not authenticate: it was altered or moved in the database.`, {
        code: 'MFC_CERT_INVALID',
        cause: error,
        suggestions: ['Issue a new certificate (`mfc cert renew`), which writes a new version.'],
      })
    }
  }
}
