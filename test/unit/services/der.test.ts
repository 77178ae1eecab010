import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import * as der from '../../../src/services/certificates/der.js'
import {createCaCertificate, createLeafCertificate, generatePrivateKey} from '../../../src/services/certificates/x509-builder.js'

describe('DER encoding', () => {
  it('encodes short and long lengths', () => {
    expect(der.octetString(Buffer.alloc(3)).subarray(0, 2)).to.deep.equal(Buffer.from([0x04, 0x03]))
    expect(der.octetString(Buffer.alloc(200)).subarray(0, 3)).to.deep.equal(Buffer.from([0x04, 0x81, 200]))
    expect(der.octetString(Buffer.alloc(300)).subarray(0, 4)).to.deep.equal(Buffer.from([0x04, 0x82, 0x01, 0x2C]))
  })

  it('encodes object identifiers with multi-byte arcs (X.690 8.19)', () => {
    // 1.2.840.113549.1.1.11 = 06 09 2A 86 48 86 F7 0D 01 01 0B
    expect(der.objectIdentifier('1.2.840.113549.1.1.11').toString('hex')).to.equal('06092a864886f70d01010b')
    expect(der.objectIdentifier('2.5.29.17').toString('hex')).to.equal('0603551d11')
  })

  it('keeps integers positive and minimal', () => {
    expect(der.unsignedInteger(Buffer.from([0x80])).toString('hex')).to.equal('02020080')
    expect(der.unsignedInteger(Buffer.from([0x00, 0x00, 0x7F])).toString('hex')).to.equal('02017f')
  })

  it('drops trailing zero bits of named bit strings (KeyUsage)', () => {
    expect(der.namedBits([0]).toString('hex')).to.equal('03020780') // digitalSignature
    expect(der.namedBits([0, 5, 6]).toString('hex')).to.equal('03020186') // + keyCertSign, cRLSign
  })

  it('uses UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280 4.1.2.5)', () => {
    expect(der.time(new Date('2049-12-31T23:59:59Z')).toString('ascii', 2)).to.equal('491231235959Z')
    expect(der.time(new Date('2050-01-01T00:00:00Z'))[0]).to.equal(0x18)
  })

  it('reads back what it wrote', () => {
    const encoded = der.sequence(der.smallInteger(5), der.octetString(Buffer.alloc(150, 1)))
    const [first, second] = der.children(der.readElement(encoded).content)
    expect(first.content).to.deep.equal(Buffer.from([5]))
    expect(second.content.length).to.equal(150)
  })
})

describe('X.509 builder', function () {
  this.timeout(30_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-x509-'))
  })
  after(() => rm(dir, {force: true, recursive: true}))

  for (const spec of [{type: 'rsa', size: 2048}, {type: 'ecdsa', curve: 'P-384'}] as const) {
    it(`signs a ${spec.type} leaf under a P-256 CA that openssl and Node both verify`, async () => {
      const caKey = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
      const ca = createCaCertificate({commonName: 'unit CA', keyPem: caKey, notBefore: new Date(), notAfter: new Date('2060-01-01T00:00:00Z')})
      const key = await generatePrivateKey(spec)
      const leaf = createLeafCertificate({domains: ['a.test', '192.0.2.7', '2001:db8::42'], keyPem: key, caCertPem: ca, caKeyPem: caKey, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000)})
      const parsed = new X509Certificate(leaf)
      expect(parsed.verify(new X509Certificate(ca).publicKey)).to.equal(true)
      expect(parsed.subjectAltName).to.equal('DNS:a.test, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:42')
      expect(new X509Certificate(ca).validTo).to.contain('2060') // GeneralizedTime parsed
      await writeFile(join(dir, 'ca.pem'), ca)
      await writeFile(join(dir, 'leaf.pem'), leaf)
      expect(execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')], {encoding: 'utf8'})).to.contain(': OK')
      const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'], {encoding: 'utf8'})
      expect(text).to.contain(spec.type === 'rsa' ? 'Digital Signature, Key Encipherment' : 'ASN1 OID: secp384r1')
    })
  }
})
