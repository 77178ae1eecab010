import {expect} from 'chai'

import {pgToolError} from '../../../src/services/backup/pg-dump.js'

const target = {url: 'postgres://mfc@db.example:5432/mfc', password: 's3cret-pw'}

describe('pg_dump / pg_restore errors', () => {
  it('a server newer than pg_dump: names both versions and the client package to install', () => {
    // pg_dump 15's own words (src/bin/pg_dump/pg_dump.c: "aborting because of server version mismatch").
    const stderr = 'pg_dump: error: aborting because of server version mismatch\npg_dump: detail: server version: 16.4 (Debian 16.4-1.pgdg120+1); pg_dump version: 15.18 (Debian 15.18-0+deb12u1)\n'
    const error = pgToolError('pg_dump', {code: 1, stderr, missing: false}, target)
    expect(error.code).to.equal('MFC_PG_TOOLS')
    expect(error.exitCode).to.equal(4)
    expect(error.message).to.equal('pg_dump 15.18 cannot dump the PostgreSQL 16.4 server at postgres://mfc@db.example:5432/mfc (a dump needs a pg_dump at least as new as the server).')
    expect(error.suggestions[0]).to.include('postgresql-client-16')
  })

  it('any other failure keeps the tool\'s last lines, with the password redacted', () => {
    const stderr = 'pg_dump: error: connection to server at "db.example" failed: FATAL:  password authentication failed for user "mfc" (tried s3cret-pw)\n'
    const error = pgToolError('pg_dump', {code: 1, stderr, missing: false}, target)
    expect(error.code).to.equal('MFC_BACKUP_IO')
    expect(error.message).to.include('password authentication failed').and.not.include('s3cret-pw')
    expect(error.suggestions[0]).to.include('storage_password_file')
  })
})
