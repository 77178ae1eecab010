import {createCipheriv, createDecipheriv, randomBytes, scrypt} from 'node:crypto'
import {createReadStream, createWriteStream, promises as fs} from 'node:fs'
import {Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {StoreError} from '../../lib/errors.js'

/**
 * Passphrase encryption of a backup file:
 *
 *     MFCENC1\n<JSON header>\n<AES-256-GCM ciphertext><16-byte tag>
 *
 * The header names the KDF and its parameters (scrypt, random salt) and the IV; it is bound
 * to the ciphertext as additional authenticated data, so changing a parameter fails the tag.
 */
export const MAGIC = 'MFCENC1\n'
const TAG_BYTES = 16

interface Header {
  kdf: 'scrypt'
  N: number
  r: number
  p: number
  salt: string
  cipher: 'aes-256-gcm'
  iv: string
}

function deriveKey(passphrase: string, header: Header): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must cover 128 * N * r bytes (32 MiB at N=2^15, r=8).
    scrypt(passphrase, Buffer.from(header.salt, 'base64'), 32, {N: header.N, r: header.r, p: header.p, maxmem: 256 * header.N * header.r}, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

function passphraseError(message: string): StoreError {
  return new StoreError(message, {code: 'MFC_BACKUP_PASSPHRASE', suggestions: ['Pass the --passphrase-file used when the backup was made.']})
}

export function invalidArchive(file: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(`${file} is not a usable mfc backup: ${detail}. Nothing was changed.`, {
    code: 'MFC_BACKUP_INVALID',
    cause,
    suggestions: ['Use another copy of the backup (the file may be truncated or modified).'],
  })
}

/** True when the file starts with the encryption magic. */
export async function isEncrypted(file: string): Promise<boolean> {
  const handle = await fs.open(file, 'r')
  try {
    const {buffer, bytesRead} = await handle.read(Buffer.alloc(MAGIC.length), 0, MAGIC.length, 0)
    return bytesRead === MAGIC.length && buffer.toString('latin1') === MAGIC
  } finally {
    await handle.close()
  }
}

/** Encrypts `input` into `output` (created 0600). */
export async function encryptFile(input: string, output: string, passphrase: string): Promise<void> {
  const header: Header = {kdf: 'scrypt', N: 2 ** 15, r: 8, p: 1, salt: randomBytes(16).toString('base64'), cipher: 'aes-256-gcm', iv: randomBytes(12).toString('base64')}
  const headerBytes = Buffer.from(MAGIC + JSON.stringify(header) + '\n')
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(passphrase, header), Buffer.from(header.iv, 'base64'))
  cipher.setAAD(headerBytes)
  const out = createWriteStream(output, {mode: 0o600, flags: 'wx'})
  out.write(headerBytes)
  const appendTag = new Transform({
    transform: (chunk, _encoding, done) => done(null, chunk),
    flush(done) {
      this.push(cipher.getAuthTag())
      done()
    },
  })
  await pipeline(createReadStream(input), cipher, appendTag, out)
}

/** Holds back the last TAG_BYTES of the stream: they are the tag, not ciphertext. */
class TagSplitter extends Transform {
  private held = Buffer.alloc(0)
  tag = Buffer.alloc(0)

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const all = Buffer.concat([this.held, chunk])
    this.held = all.subarray(Math.max(0, all.length - TAG_BYTES))
    done(null, all.subarray(0, Math.max(0, all.length - TAG_BYTES)))
  }

  override _flush(done: TransformCallback): void {
    this.tag = this.held
    done()
  }
}

async function readHeader(file: string): Promise<{header: Header; bytes: Buffer}> {
  const handle = await fs.open(file, 'r')
  try {
    const {buffer, bytesRead} = await handle.read(Buffer.alloc(4096), 0, 4096, 0)
    const end = buffer.indexOf('\n', MAGIC.length)
    if (end === -1 || bytesRead < end) throw invalidArchive(file, 'the encryption header is damaged')
    const bytes = buffer.subarray(0, end + 1)
    const header = JSON.parse(bytes.subarray(MAGIC.length).toString('utf8')) as Header
    if (header.kdf !== 'scrypt' || header.cipher !== 'aes-256-gcm' || !(header.N > 1 && header.N <= 2 ** 20) || !(header.r > 0 && header.r <= 32) || !(header.p > 0 && header.p <= 16)) {
      throw invalidArchive(file, 'the encryption header names unsupported parameters')
    }

    return {header, bytes}
  } catch (error) {
    if (error instanceof StoreError) throw error
    throw invalidArchive(file, 'the encryption header is damaged', error)
  } finally {
    await handle.close()
  }
}

/**
 * Decrypts `input` into `output` (0600). Throws MFC_BACKUP_PASSPHRASE when the tag does not
 * verify: a wrong passphrase and a modified file are indistinguishable by design.
 * The caller must discard `output` on error.
 */
export async function decryptFile(input: string, output: string, passphrase: string | undefined): Promise<void> {
  const {header, bytes} = await readHeader(input)
  if (passphrase === undefined) throw passphraseError(`${input} is encrypted and no passphrase was given.`)
  const decipher = createDecipheriv('aes-256-gcm', await deriveKey(passphrase, header), Buffer.from(header.iv, 'base64'))
  decipher.setAAD(bytes)
  const splitter = new TagSplitter()
  const out = createWriteStream(output, {mode: 0o600, flags: 'wx'})
  await pipeline(createReadStream(input, {start: bytes.length}), splitter, new Transform({
    transform: (chunk, _encoding, done) => done(null, decipher.update(chunk)),
    flush(done) {
      try {
        if (splitter.tag.length !== TAG_BYTES) throw new Error('truncated')
        decipher.setAuthTag(splitter.tag)
        this.push(decipher.final())
        done()
      } catch {
        done(passphraseError(`Cannot decrypt ${input}: the passphrase is wrong, or the file was truncated or modified. Nothing was changed.`))
      }
    },
  }), out)
}
