/**
 * A child process for the store's crash tests: writes one bundle (JSON on stdin) into a
 * FileCertStore and SIGKILLs itself at the named step, or writes versions in a loop until
 * killed from outside (`loop`).
 */
import {readFileSync} from 'node:fs'

import type {CertBundle} from '../../src/services/store/cert-store.js'
import {FileCertStore, type PutStep} from '../../src/services/store/file-cert-store.js'

const [root, name, killAt] = process.argv.slice(2)
const bundles = JSON.parse(readFileSync(0, 'utf8')) as CertBundle[]
const store = new FileCertStore(root, {
  onStep(step: PutStep) {
    if (step === killAt) process.kill(process.pid, 'SIGKILL')
  },
})

if (killAt === 'loop') {
  process.stdout.write('ready\n')
  for (let i = 0; ; i++) await store.put(name, bundles[i % bundles.length])
} else {
  await store.put(name, bundles[0])
}
