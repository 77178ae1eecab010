/**
 * Entry of the SQLite history's writer thread (node:worker_threads). The code lives in
 * history.ts, the one module that loads better-sqlite3; this file only starts it.
 */
import {serveWrites} from './history.js'

await serveWrites()
