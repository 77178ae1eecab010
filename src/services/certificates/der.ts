/**
 * The few DER (X.690) encodings an X.509 certificate needs, and a reader for the two things
 * mfc takes out of existing DER: a certificate's subject and a key's public bits. Small on
 * purpose: it replaces a 250 ms library import on the `ssl init` path.
 */

export type Der = Buffer

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xFF)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

export function tlv(tag: number, content: Buffer): Der {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content])
}

export const sequence = (...items: Der[]): Der => tlv(0x30, Buffer.concat(items))
export const set = (...items: Der[]): Der => tlv(0x31, Buffer.concat(items))
export const octetString = (bytes: Buffer): Der => tlv(0x04, bytes)
export const boolean = (value: boolean): Der => tlv(0x01, Buffer.from([value ? 0xFF : 0x00]))
export const nullValue = (): Der => Buffer.from([0x05, 0x00])
export const utf8String = (text: string): Der => tlv(0x0C, Buffer.from(text, 'utf8'))
export const ia5String = (text: string): Der => tlv(0x16, Buffer.from(text, 'ascii'))
/** [n] EXPLICIT, constructed. */
export const explicit = (n: number, inner: Der): Der => tlv(0xA0 | n, inner)
/** [n] IMPLICIT over a primitive type. */
export const implicitPrimitive = (n: number, bytes: Buffer): Der => tlv(0x80 | n, bytes)

/** A non-negative INTEGER from big-endian bytes (a leading 0 keeps it positive). */
export function unsignedInteger(bytes: Buffer): Der {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  const trimmed = bytes.subarray(start)
  return tlv(0x02, trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

export function smallInteger(n: number): Der {
  return unsignedInteger(Buffer.from([n]))
}

export function objectIdentifier(oid: string): Der {
  const [first, second, ...rest] = oid.split('.').map(Number)
  const bytes = [first * 40 + second]
  for (const arc of rest) {
    const chunk = [arc & 0x7F]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7F))
    bytes.push(...chunk)
  }

  return tlv(0x06, Buffer.from(bytes))
}

/** A BIT STRING of whole bytes. */
export function bitString(bytes: Buffer): Der {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]))
}

/** A named-bit BIT STRING (KeyUsage), bit 0 = the most significant bit, trailing zeros dropped. */
export function namedBits(bits: number[]): Der {
  const highest = Math.max(...bits)
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1)
  for (const bit of bits) bytes[Math.floor(bit / 8)] |= 0x80 >> (bit % 8)
  const unused = 7 - (highest % 8)
  return tlv(0x03, Buffer.concat([Buffer.from([unused]), bytes]))
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), to the second, UTC. */
export function time(date: Date): Der {
  const iso = date.toISOString().replaceAll(/[-:T]/g, '').slice(0, 14) + 'Z'
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'))
}

export interface DerElement {
  tag: number
  /** The whole element, header included. */
  raw: Buffer
  content: Buffer
}

/** Reads one element at `offset` (definite lengths only, as DER requires). */
export function readElement(buffer: Buffer, offset = 0): DerElement {
  const tag = buffer[offset]
  let len = buffer[offset + 1]
  let header = 2
  if (len & 0x80) {
    const count = len & 0x7F
    len = 0
    for (let i = 0; i < count; i++) len = len * 256 + buffer[offset + 2 + i]
    header += count
  }

  if (offset + header + len > buffer.length) throw new Error('DER element runs past the end of its buffer')
  return {tag, raw: buffer.subarray(offset, offset + header + len), content: buffer.subarray(offset + header, offset + header + len)}
}

/** The elements inside a constructed element's content. */
export function children(content: Buffer): DerElement[] {
  const out: DerElement[] = []
  for (let offset = 0; offset < content.length;) {
    const element = readElement(content, offset)
    out.push(element)
    offset += element.raw.length
  }

  return out
}
