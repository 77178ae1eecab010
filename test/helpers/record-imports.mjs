// Registers a module-resolution hook that appends every resolved URL to $MFC_TEST_IMPORT_LOG.
// Used to prove which modules a command really loads.
import {register} from 'node:module'

register('./record-imports-hooks.mjs', import.meta.url, {data: {log: process.env.MFC_TEST_IMPORT_LOG}})
