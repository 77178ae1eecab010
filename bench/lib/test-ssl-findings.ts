// Prints the markdown findings table: which finding each tool reports, and their verdicts.
// Arguments: mfc's --json report of the three services, testssl's JSON for the API, for the streamer.
import {readFileSync} from 'node:fs'

import type {ProbeReport} from '../../src/services/probe/probe.js'
import {type ComparisonRow, type TestsslFinding, compareFindings} from '../../test/helpers/testssl.js'

const [mfcFile, apiFile, streamerFile] = process.argv.slice(2)
const mfc = JSON.parse(readFileSync(mfcFile, 'utf8')) as ProbeReport
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as TestsslFinding[]
const show = (v: boolean | null) => (v === null ? 'not reported' : v ? 'yes' : 'no')
const api = compareFindings(mfc.targets[0], read(apiFile))
const streamer = compareFindings(mfc.targets[2], read(streamerFile))
// The streamer's WSS upgrade is the one row only the streamer target has.
const rows: ComparisonRow[] = api.map((row) => (row.finding === 'WebSocket upgrade (WSS)' ? streamer.find((r) => r.finding === row.finding)! : row))
console.log('| Finding (API target; WSS: streamer) | mfc test-ssl | testssl.sh |')
console.log('|---|---|---|')
for (const row of rows) console.log(`| ${row.finding} | ${show(row.mfc)} | ${show(row.testssl)} |`)
