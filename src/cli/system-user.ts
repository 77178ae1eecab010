import {spawnSync} from 'node:child_process'
import {userInfo} from 'node:os'

/** The account `setup systemd` runs mfc as when --user is not given: never root. */
export const DEFAULT_SERVICE_USER = 'mfc'

/**
 * The user the units run as: --user, else the current user, except that root gets the
 * dedicated `mfc` account (a network service does not run as root by default).
 */
export function serviceUser(flag: string | undefined): string {
  if (flag) return flag
  const current = userInfo().username
  return current === 'root' ? DEFAULT_SERVICE_USER : current
}

/** True when the account exists (getent: /etc/passwd, LDAP, systemd-userdb alike). */
export function userExists(name: string): boolean {
  return spawnSync('getent', ['passwd', name], {stdio: 'ignore'}).status === 0
}

/** The command that creates the dedicated account, owning the state directory. */
export function useraddLine(name: string, stateDir: string): string {
  return `sudo useradd --system --user-group --home-dir ${stateDir} --shell /usr/sbin/nologin ${name}`
}
