import {createHmac, randomInt, timingSafeEqual} from 'node:crypto'
import {createSocket} from 'node:dgram'
import {isIPv6, connect as tcpConnect} from 'node:net'

/**
 * The DNS wire protocol, as far as DNS-01 needs it: queries (SOA, NS, A, AAAA, TXT) and RFC 2136
 * dynamic updates signed with TSIG (RFC 8945), over UDP with a TCP retry when the answer is
 * truncated. The only module that speaks DNS on the wire; it never prints and never reads
 * process.env. Secrets stay in the `TsigKey` passed in: no error message or log field holds one.
 */

export const TYPE = {A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, TSIG: 250, ANY: 255} as const
const CLASS_IN = 1
const CLASS_NONE = 254
const CLASS_ANY = 255
const OPCODE_UPDATE = 5

/** RFC 1035/2136/8945 response codes, by number, for messages. */
export const RCODES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN', 7: 'YXRRSET',
  8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE', 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME',
}

/** TSIG algorithms of certbot's dns_rfc2136_algorithm, with their wire names (RFC 8945 §6). */
export const TSIG_ALGORITHMS: Record<string, {wire: string; hmac: string}> = {
  'HMAC-MD5': {wire: 'hmac-md5.sig-alg.reg.int', hmac: 'md5'},
  'HMAC-SHA1': {wire: 'hmac-sha1', hmac: 'sha1'},
  'HMAC-SHA224': {wire: 'hmac-sha224', hmac: 'sha224'},
  'HMAC-SHA256': {wire: 'hmac-sha256', hmac: 'sha256'},
  'HMAC-SHA384': {wire: 'hmac-sha384', hmac: 'sha384'},
  'HMAC-SHA512': {wire: 'hmac-sha512', hmac: 'sha512'},
}

/** A TSIG key. `secret` is the decoded key; it is used for MACs only and never shown. */
export interface TsigKey {
  name: string
  algorithm: keyof typeof TSIG_ALGORITHMS
  secret: Buffer
}

/** Where to send: an IP address and port. */
export interface DnsServer {
  host: string
  port: number
}

export interface DnsRecord {
  name: string
  type: number
  ttl: number
  /** TXT: the strings joined; NS/CNAME: the target; SOA: the primary server; A/AAAA: the address. */
  data: string
}

export interface DnsResponse {
  rcode: number
  authoritative: boolean
  answers: DnsRecord[]
  authority: DnsRecord[]
  additional: DnsRecord[]
  /** The TSIG error of a signed answer (BADSIG, BADKEY, BADTIME), 0 when none or unsigned. */
  tsigError: number
}

export interface ExchangeOptions {
  timeoutMs?: number
  /** UDP attempts before giving up (each `timeoutMs`). */
  attempts?: number
  signal?: AbortSignal
  /** Set RD: ask a recursive resolver (finding a zone's servers); clear it to ask them directly. */
  recursive?: boolean
}

/** Thrown when a server does not answer, or answers with something that is not DNS for us. */
export class DnsTransportError extends Error {
  constructor(message: string, readonly server: DnsServer) {
    super(message)
  }
}

export function formatServer(server: DnsServer): string {
  return isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`
}

/** A query; RD clear unless `recursive`, so an authoritative server answers from its own data. */
export async function query(server: DnsServer, name: string, type: number, options: ExchangeOptions = {}): Promise<DnsResponse> {
  const id = randomInt(0x10000)
  const message = Buffer.concat([header(id, options.recursive ? 0x0100 : 0, 1, 0, 0, 0), encodeName(name), u16(type), u16(CLASS_IN)])
  return parse(await exchange(server, message, id, options), id)
}

/** One record to add to or delete from a zone. */
export interface TxtChange {
  name: string
  value: string
  ttl: number
}

/**
 * Sends one RFC 2136 UPDATE for `zone`: adds `add` records and deletes exactly the `remove`
 * records (class NONE: only that value, other TXT values at the name stay), signed with `key`.
 * The answer's TSIG is verified; a forged or unsigned answer to a signed update is an error.
 */
export async function update(server: DnsServer, zone: string, changes: {add?: TxtChange[]; remove?: TxtChange[]}, key: TsigKey, options: ExchangeOptions = {}): Promise<DnsResponse> {
  const id = randomInt(0x10000)
  const records = [
    ...(changes.add ?? []).map((c) => resourceRecord(c.name, TYPE.TXT, CLASS_IN, c.ttl, txtData(c.value))),
    ...(changes.remove ?? []).map((c) => resourceRecord(c.name, TYPE.TXT, CLASS_NONE, 0, txtData(c.value))),
  ]
  const unsigned = Buffer.concat([header(id, OPCODE_UPDATE << 11, 1, 0, records.length, 0), encodeName(zone), u16(TYPE.SOA), u16(CLASS_IN), ...records])
  const {message, mac} = signTsig(unsigned, id, key, Math.floor(Date.now() / 1000))
  const answer = await exchange(server, message, id, options)
  const response = parse(answer, id)
  // A refusal is reported by its rcode (and TSIG error); only a success must prove its origin.
  if (response.rcode === 0) verifyTsig(answer, key, mac, server)
  return response
}

// --- TSIG (RFC 8945) ---

const FUDGE = 300

function tsigVariables(key: TsigKey, time: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([encodeName(key.name.toLowerCase()), u16(CLASS_ANY), u32(0), encodeName(TSIG_ALGORITHMS[key.algorithm].wire), u48(time), u16(FUDGE), u16(error), u16(other.length), other])
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const mac = createHmac(TSIG_ALGORITHMS[key.algorithm].hmac, key.secret)
  for (const part of parts) mac.update(part)
  return mac.digest()
}

/** Appends a TSIG record to `unsigned` (whose ARCOUNT does not count it yet). */
export function signTsig(unsigned: Buffer, id: number, key: TsigKey, time: number): {message: Buffer; mac: Buffer} {
  const mac = hmac(key, unsigned, tsigVariables(key, time, 0, Buffer.alloc(0)))
  const rdata = Buffer.concat([encodeName(TSIG_ALGORITHMS[key.algorithm].wire), u48(time), u16(FUDGE), u16(mac.length), mac, u16(id), u16(0), u16(0)])
  const message = Buffer.concat([unsigned, resourceRecord(key.name.toLowerCase(), TYPE.TSIG, CLASS_ANY, 0, rdata)])
  message.writeUInt16BE(unsigned.readUInt16BE(10) + 1, 10)
  return {message, mac}
}

/**
 * Checks the TSIG of an answer to a signed request (RFC 8945 §5.3): the request MAC, the answer
 * without its TSIG record (ARCOUNT one less, original ID), then the answer's TSIG variables.
 * A server that rejected our key answers unsigned with a TSIG error: that is reported by
 * `parse` (tsigError), so only answers that carry a MAC are checked here.
 */
function verifyTsig(answer: Buffer, key: TsigKey, requestMac: Buffer, server: DnsServer): void {
  const tsig = findTsig(answer)
  if (!tsig) throw new DnsTransportError(`the answer from ${formatServer(server)} is not signed (TSIG), so it cannot be trusted`, server)
  if (tsig.mac.length === 0) return
  const stripped = Buffer.from(answer.subarray(0, tsig.offset))
  stripped.writeUInt16BE(tsig.originalId, 0)
  stripped.writeUInt16BE(stripped.readUInt16BE(10) - 1, 10)
  const expected = hmac(key, u16(requestMac.length), requestMac, stripped, tsigVariables(key, tsig.time, tsig.error, tsig.other))
  if (expected.length !== tsig.mac.length || !timingSafeEqual(expected, tsig.mac)) {
    throw new DnsTransportError(`the TSIG signature of the answer from ${formatServer(server)} does not verify with key ${key.name}`, server)
  }
}

interface TsigRecord {
  offset: number
  time: number
  mac: Buffer
  originalId: number
  error: number
  other: Buffer
}

function findTsig(message: Buffer): TsigRecord | undefined {
  const counts = [4, 6, 8, 10].map((o) => message.readUInt16BE(o))
  let offset = 12
  for (let i = 0; i < counts[0]; i++) offset = readName(message, offset).next + 4
  const total = counts[1] + counts[2] + counts[3]
  for (let i = 0; i < total; i++) {
    const start = offset
    const {next} = readName(message, offset)
    const type = message.readUInt16BE(next)
    const rdlength = message.readUInt16BE(next + 8)
    const rdata = next + 10
    offset = rdata + rdlength
    if (type !== TYPE.TSIG || i !== total - 1) continue
    let p = readName(message, rdata).next
    const time = message.readUIntBE(p, 6)
    p += 8
    const macSize = message.readUInt16BE(p)
    const mac = message.subarray(p + 2, p + 2 + macSize)
    p += 2 + macSize
    const otherLength = message.readUInt16BE(p + 4)
    return {offset: start, time, mac, originalId: message.readUInt16BE(p), error: message.readUInt16BE(p + 2), other: message.subarray(p + 6, p + 6 + otherLength)}
  }

  return undefined
}

// --- transport ---

async function exchange(server: DnsServer, message: Buffer, id: number, options: ExchangeOptions): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? 2000
  const attempts = options.attempts ?? 3
  let lastError: Error | undefined
  for (let attempt = 0; attempt < attempts; attempt++) {
    options.signal?.throwIfAborted()
    try {
      const answer = await udpExchange(server, message, id, timeoutMs)
      // TC: the answer did not fit in a datagram; RFC 7766 says ask again over TCP.
      return (answer.readUInt16BE(2) & 0x0200) === 0 ? answer : await tcpExchange(server, message, timeoutMs)
    } catch (error) {
      lastError = error as Error
    }
  }

  throw new DnsTransportError(`${formatServer(server)} did not answer (${attempts} tries of ${timeoutMs} ms over UDP): ${lastError?.message ?? 'timeout'}`, server)
}

function udpExchange(server: DnsServer, message: Buffer, id: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4')
    const done = (error: Error | undefined, answer?: Buffer) => {
      clearTimeout(timer)
      socket.close()
      if (error) reject(error)
      else resolve(answer!)
    }

    const timer = setTimeout(() => done(new Error('timeout')), timeoutMs)
    socket.on('error', (error) => done(error))
    // Answers from elsewhere or to another ID are ignored (RFC 5452: no blind spoofing).
    socket.on('message', (answer, from) => {
      if (answer.length >= 12 && answer.readUInt16BE(0) === id && from.port === server.port && from.address === server.host) done(undefined, answer)
    })
    socket.send(message, server.port, server.host, (error) => {
      if (error) done(error)
    })
  })
}

function tcpExchange(server: DnsServer, message: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({host: server.host, port: server.port})
    let received = Buffer.alloc(0)
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timeout over TCP')))
    socket.on('error', reject)
    socket.on('connect', () => socket.write(Buffer.concat([u16(message.length), message])))
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        socket.end()
        resolve(received.subarray(2, 2 + received.readUInt16BE(0)))
      }
    })
    socket.on('close', () => reject(new Error('connection closed before a full answer')))
  })
}

// --- encoding and decoding ---

function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

function u48(n: number): Buffer {
  const b = Buffer.alloc(6)
  b.writeUIntBE(n, 0, 6)
  return b
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  return Buffer.concat([u16(id), u16(flags), u16(qd), u16(an), u16(ns), u16(ar)])
}

export function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean)
  return Buffer.concat([...labels.flatMap((label) => {
    const bytes = Buffer.from(label, 'ascii')
    if (bytes.length > 63) throw new Error(`DNS label "${label}" is longer than 63 bytes`)
    return [Buffer.from([bytes.length]), bytes]
  }), Buffer.from([0])])
}

function txtData(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8')
  const parts: Buffer[] = []
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255)
    parts.push(Buffer.from([chunk.length]), chunk)
  }

  return Buffer.concat(parts)
}

function resourceRecord(name: string, type: number, klass: number, ttl: number, rdata: Buffer): Buffer {
  return Buffer.concat([encodeName(name), u16(type), u16(klass), u32(ttl), u16(rdata.length), rdata])
}

function readName(message: Buffer, start: number): {name: string; next: number} {
  const labels: string[] = []
  let offset = start
  let next = -1
  for (let jumps = 0; ; ) {
    const length = message[offset]
    if (length === undefined) throw new Error('truncated name')
    if ((length & 0xC0) === 0xC0) {
      if (++jumps > 32) throw new Error('name compression loop')
      if (next < 0) next = offset + 2
      offset = ((length & 0x3F) << 8) | message[offset + 1]
      continue
    }

    if (length === 0) break
    labels.push(message.toString('ascii', offset + 1, offset + 1 + length))
    offset += 1 + length
  }

  return {name: labels.join('.').toLowerCase(), next: next < 0 ? offset + 1 : next}
}

function readRecord(message: Buffer, offset: number): {record: DnsRecord; next: number} {
  const {name, next} = readName(message, offset)
  const type = message.readUInt16BE(next)
  const ttl = message.readUInt32BE(next + 4)
  const length = message.readUInt16BE(next + 8)
  const rdata = next + 10
  let data = ''
  switch (type) {
    case TYPE.A: {
      data = [...message.subarray(rdata, rdata + 4)].join('.')
      break
    }

    case TYPE.AAAA: {
      const words = Array.from({length: 8}, (_, i) => message.readUInt16BE(rdata + i * 2).toString(16))
      data = words.join(':')
      break
    }

    case TYPE.NS:
    case TYPE.CNAME:
    case TYPE.SOA: {
      data = readName(message, rdata).name
      break
    }

    case TYPE.TXT: {
      const parts: string[] = []
      for (let p = rdata; p < rdata + length; p += 1 + message[p]) parts.push(message.toString('utf8', p + 1, p + 1 + message[p]))
      data = parts.join('')
      break
    }

    default:
  }

  return {record: {name, type, ttl, data}, next: rdata + length}
}

function parse(message: Buffer, id: number): DnsResponse {
  if (message.length < 12 || message.readUInt16BE(0) !== id) throw new Error('an answer that does not match the question')
  const flags = message.readUInt16BE(2)
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => message.readUInt16BE(o))
  let offset = 12
  for (let i = 0; i < qd; i++) offset = readName(message, offset).next + 4
  const sections: DnsRecord[][] = [[], [], []]
  for (const [index, count] of [an, ns, ar].entries()) {
    for (let i = 0; i < count; i++) {
      const {record, next} = readRecord(message, offset)
      sections[index].push(record)
      offset = next
    }
  }

  const tsig = ar > 0 ? findTsig(message) : undefined
  return {rcode: flags & 0x0F, authoritative: (flags & 0x0400) !== 0, answers: sections[0], authority: sections[1], additional: sections[2], tsigError: tsig?.error ?? 0}
}
