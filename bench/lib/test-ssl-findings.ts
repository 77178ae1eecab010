// Prints the markdown findings table: which finding each tool reports, and their verdicts.
import {readFileSync} from 'node:fs'

import type {ProbeReport} from '../../src/services/probe/probe.js'
import {type TestsslFinding, compareFindings} from '../../test/helpers/testssl.js'

const [mfcFile, testsslFile] = process.argv.slice(2)
const mfc = JSON.parse(readFileSync(mfcFile, 'utf8')) as ProbeReport
const testssl = JSON.parse(readFileSync(testsslFile, 'utf8')) as TestsslFinding[]
const show = (v: boolean | null) => (v === null ? 'not reported' : v ? 'yes' : 'no')
console.log('| Finding (target: API) | mfc test-ssl | testssl.sh |')
console.log('|---|---|---|')
for (const row of compareFindings(mfc.targets[0], testssl)) console.log(`| ${row.finding} | ${show(row.mfc)} | ${show(row.testssl)} |`)
