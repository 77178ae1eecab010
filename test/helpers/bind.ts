import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmod, chown, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {freePort} from './ports.js'

const run = promisify(execFile)

/** A running BIND9 (named) on a free loopback port, primary for `zone`, accepting TSIG updates. */
export interface Bind {
  port: number
  zone: string
  keyName: string
  /** base64, as tsig-keygen prints it. */
  secret: string
  algorithm: 'hmac-sha256'
  dir: string
  /** The TXT values at `name`, asked of this server (dig +short). */
  txt(name: string): Promise<string[]>
  /** Runs nsupdate with the key against this server; `commands` without "server" and "send". */
  nsupdate(commands: string[]): Promise<void>
  /** named's log so far (-g: to stderr), e.g. "adding an RR at '_acme-challenge...' TXT". */
  logs(): string
  stop(): Promise<void>
}

/**
 * Starts named (-g, as user bind) for zone `mfc.example` (SOA, NS ns.mfc.example., ns, @ and *
 * A 127.0.0.1) with `allow-update { key "mfc-key."; }`, the recipe of TEST-INFRA.md. Callers
 * must stop() in an after() hook.
 */
export async function startBind(zone = 'mfc.example'): Promise<Bind> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-bind-'))
  const port = await freePort()
  const keyName = 'mfc-key.'
  const secret = randomBytes(32).toString('base64')
  await writeFile(join(dir, 'named.conf'), `options { directory "${dir}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; }; recursion no; pid-file "${dir}/named.pid"; dnssec-validation no; notify no; };
key "${keyName}" { algorithm hmac-sha256; secret "${secret}"; };
controls { };
zone "${zone}" { type master; file "${dir}/db.${zone}"; allow-update { key "${keyName}"; }; };
`)
  await writeFile(join(dir, `db.${zone}`), `$TTL 60
@ IN SOA ns.${zone}. hostmaster.${zone}. (1 60 60 600 60)
@ IN NS ns.${zone}.
ns IN A 127.0.0.1
@ IN A 127.0.0.1
* IN A 127.0.0.1
`)
  const {stdout: uid} = await run('id', ['-u', 'bind'])
  const {stdout: gid} = await run('id', ['-g', 'bind'])
  for (const file of ['', 'named.conf', `db.${zone}`]) await chown(join(dir, file), Number(uid), Number(gid))
  await chmod(dir, 0o755)
  let output = ''
  const child: ChildProcess = spawn('named', ['-g', '-c', join(dir, 'named.conf'), '-u', 'bind'], {stdio: ['ignore', 'pipe', 'pipe']})
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output = (output + chunk).slice(-200_000)
  })
  const dig = async (...args: string[]) => (await run('dig', ['@127.0.0.1', '-p', String(port), '+time=1', '+tries=1', ...args])).stdout
  let stopped = false
  const handle: Bind = {
    port, zone, keyName, secret, algorithm: 'hmac-sha256', dir,
    async txt(name) {
      const out = await dig('+short', name, 'TXT')
      return out.split('\n').filter(Boolean).map((line) => line.replaceAll('"', ''))
    },
    async nsupdate(commands) {
      await new Promise<void>((resolve, reject) => {
        const proc = spawn('nsupdate', ['-y', `hmac-sha256:${keyName}:${secret}`], {stdio: ['pipe', 'pipe', 'pipe']})
        let err = ''
        proc.stderr.on('data', (chunk) => {
          err += chunk
        })
        proc.on('close', (code) => code === 0 ? resolve() : reject(new Error(`nsupdate exit ${code}: ${err}`)))
        proc.stdin.end([`server 127.0.0.1 ${port}`, ...commands, 'send', ''].join('\n'))
      })
    },
    logs: () => output,
    async stop() {
      if (stopped) return
      stopped = true
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
          child.once('exit', () => {
            clearTimeout(timer)
            resolve()
          })
          child.kill('SIGTERM')
        })
      }

      await rm(dir, {force: true, recursive: true})
    },
  }
  for (let i = 0; ; i++) {
    const ok = await dig('+short', zone, 'SOA').then((out) => out.includes(`ns.${zone}.`), () => false)
    if (ok) break
    if (i > 100 || child.exitCode !== null) {
      await handle.stop()
      throw new Error(`named did not come up on port ${port}:\n${output.slice(-4000)}`)
    }

    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  return handle
}
