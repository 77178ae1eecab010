/**
 * A child process for PgCertStore's crash test: writes the bundles (JSON on stdin) into the
 * store at URL in a loop, printing "ready" first and "put" after each write, until it is killed.
 */
import {readFileSync} from 'node:fs'

import type {CertBundle} from '../../src/services/store/cert-store.js'
import {KeySealer} from '../../src/services/storage/key-sealer.js'
import {PgCertStore} from '../../src/services/storage/pg-cert-store.js'
import {openPostgres} from '../../src/services/storage/postgres.js'

const [url, keyBase64, cacheDir, name] = process.argv.slice(2)
const bundles = JSON.parse(readFileSync(0, 'utf8')) as CertBundle[]
const store = new PgCertStore(await openPostgres({url}), KeySealer.fromText(keyBase64, 'test'), cacheDir)
process.stdout.write('ready\n')
for (let i = 0; ; i++) {
  await store.put(name, bundles[i % bundles.length])
  process.stdout.write('put\n')
}
