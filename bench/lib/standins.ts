// Starts the three stand-in services (test/helpers/backends.ts) with a minted CA and leaf,
// prints {"ports":..., "caFile":...} on stdout and runs until SIGTERM.

import {startServices} from '../../test/helpers/backends.js'
import {mintCerts} from '../../test/helpers/tls-peers.js'

// The certificates go into the caller's temp directory (argv[2]), which the caller removes.
const certs = await mintCerts(process.argv[2])
const services = await startServices({cert: certs.certPem + certs.caPem, key: certs.keyPem})
process.stdout.write(JSON.stringify({ports: services.ports, caFile: certs.caFile}) + '\n')
process.on('SIGTERM', () => {
  void services.close().then(() => process.exit(0))
})
