import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chownSync} from 'node:fs'
import {userInfo} from 'node:os'

import {BIN, ROOT} from './cli.js'

/**
 * A user whose crontab tests may change. As root (CI): a throwaway system user made with
 * useradd, removed with its crontab afterwards, so root's own crontab is never touched.
 * Otherwise: the current user, whose crontab is saved now and restored by `cleanup`.
 */
export interface CronUser {
  name: string
  uid: number
  gid: number
  /** Reads the user's real crontab ('' when none). */
  crontab(): string
  /** Installs text as the user's crontab. */
  setCrontab(text: string): void
  cleanup(): void
}

function crontabArgs(user: string | undefined, ...args: string[]): string[] {
  return user ? ['-u', user, ...args] : args
}

export function createCronUser(home: string): CronUser {
  return (process.getuid?.() === 0 && throwawayUser(home)) || currentUser()
}

/** undefined when useradd is missing or the new user cannot run mfc from this checkout (e.g. under /root). */
function throwawayUser(home: string): CronUser | undefined {
  const name = `mfct${randomBytes(3).toString('hex')}`
  if (spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', name]).status !== 0) return undefined
  const uid = Number(execFileSync('id', ['-u', name]).toString().trim())
  const gid = Number(execFileSync('id', ['-g', name]).toString().trim())
  if (spawnSync(process.execPath, [BIN, '--version'], {uid, gid, cwd: ROOT}).status !== 0) {
    spawnSync('userdel', [name])
    return undefined
  }

  chownSync(home, uid, gid)
  return {
    name, uid, gid,
    crontab: () => read(name),
    setCrontab: (text) => write(name, text),
    cleanup() {
      spawnSync('crontab', crontabArgs(name, '-r'))
      spawnSync('userdel', [name])
    },
  }
}

function currentUser(): CronUser {
  const saved = read(undefined)
  return {
    // USER is unset in many CI shells; the account database always knows the name.
    name: userInfo().username,
    uid: process.getuid!(),
    gid: process.getgid!(),
    crontab: () => read(undefined),
    setCrontab: (text) => write(undefined, text),
    cleanup() {
      if (saved === '') spawnSync('crontab', ['-r'])
      else write(undefined, saved)
    },
  }
}

function read(user: string | undefined): string {
  const result = spawnSync('crontab', crontabArgs(user, '-l'), {encoding: 'utf8'})
  if (result.status === 0) return result.stdout
  if (/no crontab/i.test(result.stderr)) return ''
  throw new Error(`crontab -l failed: ${result.stderr}`)
}

function write(user: string | undefined, text: string): void {
  const result = spawnSync('crontab', crontabArgs(user, '-'), {input: text, encoding: 'utf8'})
  if (result.status !== 0) throw new Error(`crontab - failed: ${result.stderr}`)
}
