// Starts the three stand-in services (test/helpers/backends.ts) with a minted CA and leaf,
// prints {"ports":..., "caFile":...} on stdout and runs until SIGTERM.
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {startServices} from '../../test/helpers/backends.js'
import {mintCerts} from '../../test/helpers/tls-peers.js'

const dir = mkdtempSync(join(tmpdir(), 'mfc-bench-'))
const certs = await mintCerts(dir)
const services = await startServices({cert: certs.certPem + certs.caPem, key: certs.keyPem})
process.stdout.write(JSON.stringify({ports: services.ports, caFile: certs.caFile}) + '\n')
process.on('SIGTERM', () => {
  void services.close().then(() => process.exit(0))
})
