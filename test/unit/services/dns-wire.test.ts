import {randomBytes} from 'node:crypto'
import {type Socket, createSocket} from 'node:dgram'
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {expect} from 'chai'

import {readRfc2136Credentials} from '../../../src/services/acme/solver-rfc2136.js'
import {type TsigKey, signTsig, update} from '../../../src/services/acme/dns-wire.js'

/**
 * A server that answers every UPDATE the way an attacker on the path would: NOERROR, either
 * unsigned or signed with a key it guessed. A signed update must not accept either answer.
 * (Updates that BIND accepts and signs are covered by test/integration/acme-dns01.test.ts.)
 */
async function forger(sign?: TsigKey): Promise<{port: number; socket: Socket}> {
  const socket = createSocket('udp4')
  socket.on('message', (message, from) => {
    const id = message.readUInt16BE(0)
    // The question (zone) section echoed back, no records, QR + opcode UPDATE + NOERROR.
    let end = 12
    while (message[end] !== 0) end += 1 + message[end]
    const answer = Buffer.concat([message.subarray(0, 12), message.subarray(12, end + 5)])
    answer.writeUInt16BE(0xA800, 2)
    answer.writeUInt16BE(1, 4)
    for (const offset of [6, 8, 10]) answer.writeUInt16BE(0, offset)
    socket.send(sign ? signTsig(answer, id, sign, Math.floor(Date.now() / 1000)).message : answer, from.port, from.address)
  })
  await new Promise<void>((resolve) => {
    socket.bind(0, '127.0.0.1', () => resolve())
  })
  return {port: socket.address().port, socket}
}

describe('DNS wire: RFC 2136 updates trust only answers signed with the key (TSIG, RFC 8945)', () => {
  const key: TsigKey = {name: 'mfc-key.', algorithm: 'HMAC-SHA256', secret: randomBytes(32)}
  const change = {add: [{name: '_acme-challenge.mfc.example', value: 'v', ttl: 60}]}
  const sockets: Socket[] = []
  after(() => {
    for (const socket of sockets) socket.close()
  })

  it('refuses an unsigned NOERROR', async () => {
    const {port, socket} = await forger()
    sockets.push(socket)
    const error = await update({host: '127.0.0.1', port}, 'mfc.example', change, key, {attempts: 1}).then(() => undefined, (e: Error) => e)
    expect(error?.message).to.equal(`the answer from 127.0.0.1:${port} is not signed (TSIG), so it cannot be trusted`)
  })

  it('refuses a NOERROR signed with another secret, and the message never holds a secret', async () => {
    const {port, socket} = await forger({...key, secret: randomBytes(32)})
    sockets.push(socket)
    const error = await update({host: '127.0.0.1', port}, 'mfc.example', change, key, {attempts: 1}).then(() => undefined, (e: Error) => e)
    expect(error?.message).to.equal(`the TSIG signature of the answer from 127.0.0.1:${port} does not verify with key mfc-key.`)
    expect(error?.message).not.to.contain(key.secret.toString('base64'))
  })
})

describe('certbot-dns-rfc2136 credentials files', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-rfc2136-'))
  })
  afterEach(() => rm(dir, {force: true, recursive: true}))

  const write = async (text: string, mode = 0o600) => {
    const file = join(dir, 'creds.ini')
    await writeFile(file, text)
    await chmod(file, mode)
    return file
  }

  it('reads certbot\'s keys, with HMAC-MD5 and port 53 as certbot\'s defaults', async () => {
    const file = await write('# comment\ndns_rfc2136_server = 192.0.2.1\ndns_rfc2136_name = "k."\ndns_rfc2136_secret = c2VjcmV0\n')
    const creds = await readRfc2136Credentials(file)
    expect(creds.server).to.deep.equal({host: '192.0.2.1', port: 53})
    expect(creds.key.name).to.equal('k.')
    expect(creds.key.algorithm).to.equal('HMAC-MD5')
    expect(creds.key.secret.toString()).to.equal('secret')
  })

  for (const [what, text, message] of [
    ['a missing secret', 'dns_rfc2136_server = 192.0.2.1\ndns_rfc2136_name = k.\n', /dns_rfc2136_secret in .* is missing/],
    ['an unknown algorithm', 'dns_rfc2136_server = 192.0.2.1\ndns_rfc2136_name = k.\ndns_rfc2136_secret = c2VjcmV0\ndns_rfc2136_algorithm = HMAC-SHA3\n', /dns_rfc2136_algorithm in .* must be one of HMAC-MD5/],
    ['a bad port', 'dns_rfc2136_server = 192.0.2.1\ndns_rfc2136_port = 99999\ndns_rfc2136_name = k.\ndns_rfc2136_secret = c2VjcmV0\n', /dns_rfc2136_port in .* is not a port/],
    ['a secret that is not base64', 'dns_rfc2136_server = 192.0.2.1\ndns_rfc2136_name = k.\ndns_rfc2136_secret = not base64!\n', /dns_rfc2136_secret in .* is not base64/],
  ] as const) {
    it(`names the key for ${what}, never the secret`, async () => {
      const error = await readRfc2136Credentials(await write(text)).then(() => undefined, (e: Error & {code: string}) => e)
      expect(error?.code).to.equal('MFC_DNS_CREDENTIALS')
      expect(error?.message).to.match(message).and.not.contain('c2VjcmV0')
    })
  }

  it('refuses a file readable by its group, with the chmod to run', async () => {
    const file = await write('dns_rfc2136_server = 192.0.2.1\n', 0o640)
    const error = await readRfc2136Credentials(file).then(() => undefined, (e: Error & {suggestions: string[]}) => e)
    expect(error?.message).to.contain('readable by its group (mode 640)')
    expect(error?.suggestions).to.deep.equal([`Run: chmod 600 ${file}`])
  })
})
