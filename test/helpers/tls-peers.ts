import {mkdir, writeFile} from 'node:fs/promises'
import {type Server, createServer} from 'node:net'
import {join} from 'node:path'

import {createCaCertificate, createLeafCertificate, generatePrivateKey} from '../../src/services/certificates/x509-builder.js'

/** A port that was free a moment ago (for peers that cannot listen on port 0, like nginx). */
export async function freePort(): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface MintedCerts {
  caPem: string
  certPem: string
  keyPem: string
  caFile: string
  certFile: string
  keyFile: string
  /** Leaf followed by the CA. */
  fullchainFile: string
}

/** A throwaway CA and a leaf for `domains`, written (keys 0600) into `dir`. */
export async function mintCerts(dir: string, domains = ['localhost', '127.0.0.1'], keyType: 'ecdsa' | 'rsa' = 'ecdsa'): Promise<MintedCerts> {
  const now = Date.now()
  const caKey = await generatePrivateKey({type: 'ecdsa', curve: 'P-256'})
  const caPem = createCaCertificate({commonName: 'mfc test CA', keyPem: caKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000 * 30)})
  const keyPem = await generatePrivateKey(keyType === 'rsa' ? {type: 'rsa', size: 2048} : {type: 'ecdsa', curve: 'P-256'})
  const certPem = createLeafCertificate({domains, keyPem, caCertPem: caPem, caKeyPem: caKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000 * 20)})
  await mkdir(dir, {recursive: true})
  const files = {caFile: join(dir, 'ca.pem'), certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), fullchainFile: join(dir, 'fullchain.pem')}
  await writeFile(files.caFile, caPem)
  await writeFile(files.certFile, certPem)
  await writeFile(files.keyFile, keyPem, {mode: 0o600})
  await writeFile(files.fullchainFile, certPem + caPem)
  return {caPem, certPem, keyPem, ...files}
}
