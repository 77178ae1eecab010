import {expect} from 'chai'
import {spawn} from 'node:child_process'

import type {Locker} from '../../src/services/storage/locker.js'
import {ROOT} from '../helpers/cli.js'

/** A fresh locker per test, the argv that makes test/helpers/lock-holder.ts use the same place. */
export interface LockerFactory {
  make(): Promise<{locker: Locker; holderArgs: string[]}>
  dispose?(): Promise<void>
}

const code = (promise: Promise<unknown>) => promise.then(() => 'acquired', (error: Error & {code?: string}) => error.code ?? error.message)

/**
 * The Locker contract (src/services/storage/locker.ts), one suite for every adapter: exclusive,
 * fail-fast with MFC_LOCKED, idempotent release, and a holder killed with SIGKILL loses the lock
 * without anyone's help.
 */
export function lockerContract(label: string, factory: LockerFactory): void {
  describe(`Locker contract: ${label}`, function () {
    this.timeout(60_000)
    let locker: Locker
    let holderArgs: string[]
    beforeEach(async () => {
      ({locker, holderArgs} = await factory.make())
    })
    afterEach(async () => factory.dispose?.())

    it('is exclusive, fails fast with MFC_LOCKED, and is free again after an idempotent release', async () => {
      const held = await locker.acquire('renewal', 'test one')
      expect(await code(locker.acquire('renewal', 'test two'))).to.equal('MFC_LOCKED')
      const other = await locker.acquire('another', 'test three')
      await other.release()
      await held.release()
      await held.release()
      const again = await locker.acquire('renewal', 'test four')
      await again.release()
    })

    it('lets exactly one of many concurrent contenders win', async () => {
      const results = await Promise.allSettled(Array.from({length: 6}, (_, i) => locker.acquire('renewal', `contender ${i}`)))
      const won = results.filter((r) => r.status === 'fulfilled')
      expect(won).to.have.length(1)
      for (const r of results) if (r.status === 'rejected') expect((r.reason as {code: string}).code).to.equal('MFC_LOCKED')
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<Locker['acquire']>>>).value.release()
    })

    it('a holder killed with SIGKILL loses the lock: another process then acquires it', async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', `${ROOT}/test/helpers/lock-holder.ts`, ...holderArgs], {cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit']})
      const exited = new Promise((resolve) => child.on('close', resolve))
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve())
          child.on('close', () => reject(new Error('the lock holder exited before holding the lock')))
        })
        expect(await code(locker.acquire('renewal', 'while held'))).to.equal('MFC_LOCKED')
      } finally {
        child.kill('SIGKILL')
        await exited
      }

      // Retried for a while so a loaded machine cannot fail the test; what is asserted is that
      // the lock comes free by itself, with nobody removing anything.
      let outcome = ''
      for (let attempt = 0; attempt < 50 && outcome !== 'acquired'; attempt++) {
        const result = locker.acquire('renewal', 'after the kill')
        outcome = await code(result)
        if (outcome === 'acquired') await (await result).release()
        else await new Promise((resolve) => setTimeout(resolve, 200))
      }

      expect(outcome).to.equal('acquired')
    })
  })
}
