import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {chmod, chown, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir, userInfo} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {freePort} from './ports.js'

const run = promisify(execFile)

/** A real BIND9 `named` serving one zone on a random loopback port (UDP and TCP). */
export interface BindServer {
  port: number
  /** host:port, for --dns-server and Resolver.setServers. */
  address: string
  logs(): string
  /** Stops named and removes its directory; idempotent. */
  stop(): Promise<void>
}

/**
 * Starts `named -g` for `zone` with the given records (zone-file lines after SOA/NS, e.g.
 * `here IN A 127.0.0.1`, `@ IN CAA 0 issue "letsencrypt.org"`), and waits until it answers.
 * As root it runs as user `bind` (Debian's), which must be able to read its directory.
 */
export async function startBind(zone: string, records: string[]): Promise<BindServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-bind-'))
  const port = await freePort()
  await writeFile(join(dir, 'named.conf'), `options { directory "${dir}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; };
  recursion no; pid-file "${dir}/named.pid"; dnssec-validation no; };
zone "${zone}" { type master; file "${dir}/db.zone"; };
`)
  await writeFile(join(dir, 'db.zone'), [`$TTL 60`, `@ IN SOA ns.${zone}. admin.${zone}. 1 60 60 600 60`, `@ IN NS ns.${zone}.`, `ns IN A 127.0.0.1`, ...records, ''].join('\n'))
  const root = userInfo().uid === 0
  if (root) {
    const {stdout} = await run('id', ['-u', 'bind'])
    const {stdout: gid} = await run('id', ['-g', 'bind'])
    for (const f of [dir, join(dir, 'named.conf'), join(dir, 'db.zone')]) await chown(f, Number(stdout), Number(gid))
    await chmod(dir, 0o700)
  }

  let output = ''
  const child: ChildProcess = spawn('named', ['-g', '-c', join(dir, 'named.conf'), ...(root ? ['-u', 'bind'] : [])], {stdio: ['ignore', 'pipe', 'pipe']})
  child.stdout!.on('data', (c) => {
    output += c
  })
  child.stderr!.on('data', (c) => {
    output += c
  })
  let stopped = false
  const handle: BindServer = {
    port, address: `127.0.0.1:${port}`, logs: () => output.slice(-4000),
    async stop() {
      if (stopped) return
      stopped = true
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(killer)
      }

      await rm(dir, {force: true, recursive: true})
    },
  }
  for (let i = 0; i < 100; i++) {
    const answer = await run('dig', ['+short', '+time=1', '+tries=1', '-p', String(port), '@127.0.0.1', `ns.${zone}`, 'A']).catch(() => ({stdout: ''}))
    if (answer.stdout.trim() === '127.0.0.1') return handle
    if (child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  await handle.stop()
  throw new Error(`named did not come up:\n${output}`)
}
