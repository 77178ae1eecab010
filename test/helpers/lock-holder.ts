/**
 * A child process for the lock tests: takes the "renewal" lock with a FileLocker (`file DIR`)
 * or a PgLocker (`pg URL`), prints "held", and keeps it until killed.
 */
import {FileLocker, type Locker} from '../../src/services/storage/locker.js'
import {PgLocker} from '../../src/services/storage/pg-locker.js'
import {openPostgres} from '../../src/services/storage/postgres.js'

const [kind, where] = process.argv.slice(2)
const locker: Locker = kind === 'pg' ? new PgLocker(await openPostgres({url: where})) : new FileLocker(where)
await locker.acquire('renewal', 'lock-holder test')
process.stdout.write('held\n')
setInterval(() => {}, 60_000)
