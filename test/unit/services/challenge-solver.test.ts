import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {expect} from 'chai'

import {SharedDirResponder} from '../../../src/services/acme/challenge-shared-dir.js'
import {type AcmeIdentifier, type ChallengeSolver, Http01Solver, pickSolver} from '../../../src/services/acme/challenge-solver.js'

/** A DNS-01 solver shape as a plug-in would declare it (only its selection is exercised here). */
const dnsShape: ChallengeSolver = {
  types: ['dns-01'], description: 'dns', handles: (id: AcmeIdentifier) => id.type === 'dns',
  prepare: async () => {}, present: async () => {}, cleanup: async () => {}, close: async () => {},
}

describe('challenge solvers (unit)', () => {
  const offered = [{type: 'http-01', token: 'h'}, {type: 'dns-01', token: 'd'}, {type: 'tls-alpn-01', token: 't'}]

  it('picks the first solver, in the given order, that handles the identifier and whose type is offered', () => {
    const http = new Http01Solver(new SharedDirResponder('/nonexistent'))
    expect(pickSolver([http, dnsShape], {type: 'dns', value: 'a.example'}, offered)?.challenge.type).to.equal('http-01')
    expect(pickSolver([dnsShape, http], {type: 'dns', value: 'a.example'}, offered)?.challenge.type).to.equal('dns-01')
    expect(pickSolver([http, dnsShape], {type: 'dns', value: '*.a.example'}, offered)?.challenge.type).to.equal('dns-01')
    expect(pickSolver([dnsShape, http], {type: 'ip', value: '127.0.0.1'}, offered)?.solver).to.equal(http)
    expect(pickSolver([http], {type: 'dns', value: '*.a.example'}, offered)).to.equal(undefined)
    expect(pickSolver([dnsShape], {type: 'dns', value: 'a.example'}, [{type: 'http-01'}])).to.equal(undefined)
  })

  it('Http01Solver publishes the key authorization under its token and removes it on cleanup', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'maint-solver-'))
    try {
      const solver = new Http01Solver(new SharedDirResponder(dir))
      const challenge = {identifier: {type: 'dns' as const, value: 'a.example'}, type: 'http-01', token: 'tok_1', keyAuthorization: 'tok_1.thumb'}
      await solver.prepare()
      await solver.present(challenge)
      expect(await readFile(join(dir, 'tok_1'), 'utf8')).to.equal('tok_1.thumb')
      await solver.cleanup(challenge)
      await solver.cleanup(challenge)
      await readFile(join(dir, 'tok_1'), 'utf8').then(() => expect.fail('token file still there'), (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'))
      await solver.close()
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})
