import {expect} from 'chai'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {resolveConfig, saveSettings} from '../../../src/lib/config.js'
import {ConfigError, EXIT} from '../../../src/lib/errors.js'

describe('config resolution', () => {
  let dir: string
  let env: NodeJS.ProcessEnv

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-config-'))
    env = {HOME: dir, MFC_CONFIG_DIR: join(dir, 'etc'), MFC_STATE_DIR: join(dir, 'state')}
  })
  afterEach(() => rm(dir, {force: true, recursive: true}))

  const writeConfig = async (content: unknown) => {
    const file = join(dir, 'ssl-config.json')
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content))
    env.MFC_SSL_CONFIG = file
    return file
  }

  it('an explicit config file that does not exist is an error naming it (exit 3), from --config and MFC_SSL_CONFIG', () => {
    const missing = join(dir, 'nope', 'ssl-config.json')
    for (const options of [{configFile: missing}, {env: {...env, MFC_SSL_CONFIG: missing}}]) {
      try {
        resolveConfig({env, isRoot: false, ...options})
        expect.fail('resolved without its config file')
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError)
        expect((error as ConfigError).exitCode).to.equal(EXIT.CONFIG)
        expect((error as ConfigError).code).to.equal('MFC_CONFIG_NOT_FOUND')
        expect((error as Error).message).to.include(missing).and.to.include('not found')
      }
    }

    // ssl init creates it; the default location may simply be absent.
    expect(resolveConfig({env, isRoot: false, configFile: missing, mayCreateFile: true}).file.exists).to.equal(false)
    expect(resolveConfig({env, isRoot: false}).file.exists).to.equal(false)
  })

  it('lenient (stop, status): a broken file or environment value is a warning, and the state directory still counts', async () => {
    const file = await writeConfig('{,')
    const config = resolveConfig({env: {...env, MFC_HTTPS_API_PORT: 'eighty'}, isRoot: false, lenient: true})
    expect(config.warnings[0]).to.include(file).and.to.include('not valid JSON')
    expect(config.paths.pidFile).to.equal(join(dir, 'state', 'mfc.pid'))
    expect(config.settings.https_port_api).to.equal(8443)
    expect(() => resolveConfig({env, isRoot: false})).to.throw(ConfigError)
    const missing = resolveConfig({env, isRoot: false, configFile: join(dir, 'gone.json'), lenient: true})
    expect(missing.warnings[0]).to.include('not found')
  })

  it('uses defaults with no file, no environment and no flags', () => {
    const config = resolveConfig({env, isRoot: false})
    expect(config.settings.https_port_api).to.equal(8443)
    expect(config.settings.https_port_frontend).to.equal(8444)
    expect(config.settings.wss_port_streaming).to.equal(8445)
    expect(config.settings.domain).to.equal('localhost')
    expect(config.settings.use_letsencrypt).to.equal(false)
    expect(config.settings.cert_file).to.equal(join(dir, 'state', 'certs', 'localhost', 'live', 'fullchain.pem'))
    expect(config.file.exists).to.equal(false)
    expect(Object.isFrozen(config.settings)).to.equal(true)
  })

  it('applies defaults < file < environment < flags', async () => {
    await writeConfig({domain: 'file.example', https_port_api: 9001, https_port_frontend: 9002, wss_port_streaming: 9003})
    env.MFC_HTTPS_FRONTEND_PORT = '9102'
    env.MFC_WSS_STREAMING_PORT = '9103'
    const config = resolveConfig({env, isRoot: false, overrides: {wss_port_streaming: 9203}})
    expect(config.settings.https_port_api).to.equal(9001)
    expect(config.sources.https_port_api).to.equal('file')
    expect(config.settings.https_port_frontend).to.equal(9102)
    expect(config.sources.https_port_frontend).to.equal('env')
    expect(config.settings.wss_port_streaming).to.equal(9203)
    expect(config.sources.wss_port_streaming).to.equal('flag')
    expect(config.settings.domain).to.equal('file.example')
  })

  it('loads a file written by the Python system, keys and order as it saved them', async () => {
    await writeConfig({
      cert_file: '/etc/letsencrypt/live/mfc.example.org/fullchain.pem', key_file: '/etc/letsencrypt/live/mfc.example.org/privkey.pem',
      ca_file: null, use_letsencrypt: true, domain: 'mfc.example.org', email: 'admin@example.org', staging: false, ssl_version: 'TLSv1_2',
      ciphers: 'ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS', verify_mode: 'CERT_NONE', enable_hsts: true,
      hsts_max_age: 31_536_000, enable_csp: true, https_port_api: 8443, https_port_frontend: 8444, wss_port_streaming: 8445, auto_renew: true, renewal_days_before: 30,
    })
    const config = resolveConfig({env, isRoot: false})
    expect(config.warnings).to.deep.equal([])
    expect(config.settings.use_letsencrypt).to.equal(true)
    expect(config.settings.domains).to.deep.equal(['mfc.example.org'])
    expect(config.settings.cert_file).to.equal('/etc/letsencrypt/live/mfc.example.org/fullchain.pem')
  })

  it('loads a full dump written by mfc 0.1 (every key, defaults included) without warnings', async () => {
    const dump = JSON.parse(await readFile(new URL('../../fixtures/config/mfc-0.1-full-dump.json', import.meta.url), 'utf8')) as Record<string, unknown>
    await writeConfig(dump)
    const config = resolveConfig({env, isRoot: false})
    expect(config.warnings).to.deep.equal([])
    for (const [key, value] of Object.entries(dump)) expect(config.settings[key as keyof typeof config.settings], key).to.deep.equal(value)
  })

  it('writes only the changes into a new file: no defaults copied in, no empty values', async () => {
    const file = join(dir, 'new', 'ssl-config.json')
    env.MFC_SSL_CONFIG = file
    await saveSettings(resolveConfig({env, isRoot: false, mayCreateFile: true}), {domain: 'a.example', domains: ['a.example'], cert_file: '/x/fullchain.pem', email: '', ca_file: null, use_letsencrypt: true})
    expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal({cert_file: '/x/fullchain.pem', use_letsencrypt: true, domain: 'a.example'})
  })

  it('honours every environment variable of the guide', async () => {
    Object.assign(env, {
      MFC_SSL_DOMAIN: 'a.example,b.example', MFC_SSL_EMAIL: 'ops@a.example', MFC_SSL_USE_LETSENCRYPT: 'yes',
      MFC_HTTPS_API_PORT: '1443', MFC_HTTPS_FRONTEND_PORT: '1444', MFC_WSS_STREAMING_PORT: '1445',
      MFC_API_TOKEN: 'tok', MFC_SESSION_SECRET: 's1', MFC_CSRF_SECRET: 's2', MFC_JWT_SECRET: 's3', MFC_DEBUG: '1',
      MFC_ACME_EAB_KID: 'kid-1', MFC_ACME_EAB_HMAC_KEY: 'aG1hYw', PGPASSWORD: 'pgpw', MFC_STORAGE_KEY: 'k32', MFC_MQTT_PASSWORD: 'broker-pass',
      MFC_STORAGE_URL: 'postgres://mfc@db.example:5432/mfc',
    })
    const config = resolveConfig({env, isRoot: false})
    expect(config.settings.domain).to.equal('a.example')
    expect(config.settings.domains).to.deep.equal(['a.example', 'b.example'])
    expect(config.settings.email).to.equal('ops@a.example')
    expect(config.settings.use_letsencrypt).to.equal(true)
    expect([config.settings.https_port_api, config.settings.https_port_frontend, config.settings.wss_port_streaming]).to.deep.equal([1443, 1444, 1445])
    expect(config.secrets).to.deep.equal({apiToken: 'tok', sessionSecret: 's1', csrfSecret: 's2', jwtSecret: 's3', acmeEabKid: 'kid-1', acmeEabHmacKey: 'aG1hYw', storagePassword: 'pgpw', storageKey: 'k32', mqttPassword: 'broker-pass'})
    expect(config.settings.storage).to.equal('postgres://mfc@db.example:5432/mfc')
    expect(config.debug).to.equal(true)
  })

  it('warns about unknown keys and keeps the rest of the file', async () => {
    const file = await writeConfig({domain: 'kept.example', colour: 'blue'})
    const config = resolveConfig({env, isRoot: false})
    expect(config.settings.domain).to.equal('kept.example')
    expect(config.warnings).to.have.length(1)
    expect(config.warnings[0]).to.contain('"colour"').and.contain(file)
  })

  const failures: [string, () => Promise<void>, RegExp][] = [
    ['a non-numeric port in the environment', async () => {
      env.MFC_HTTPS_API_PORT = 'abc'
    }, /"abc" for "https_port_api" in environment variable MFC_HTTPS_API_PORT/],
    ['a port out of range in the file', async () => {
      await writeConfig({https_port_frontend: 70_000})
    }, /70000 for "https_port_frontend" in .*ssl-config\.json/],
    ['a string where the file needs a boolean', async () => {
      await writeConfig({enable_hsts: 'yes'})
    }, /"yes" for "enable_hsts" in .*ssl-config\.json: expected true or false/],
    ['malformed JSON', async () => {
      await writeConfig('{"domain": "x",')
    }, /ssl-config\.json is not valid JSON/],
    ['a JSON array', async () => {
      await writeConfig('[1, 2]')
    }, /must hold a JSON object, not an array/],
    ['an invalid domain', async () => {
      env.MFC_SSL_DOMAIN = 'bad_domain!'
    }, /"bad_domain!" for "domain"/],
    ['a bad boolean in the environment', async () => {
      env.MFC_SSL_USE_LETSENCRYPT = 'maybe'
    }, /"maybe" for "use_letsencrypt" in environment variable MFC_SSL_USE_LETSENCRYPT/],
  ]
  for (const [what, arrange, message] of failures) {
    it(`rejects ${what} with a config error naming the key and where it came from`, async () => {
      await arrange()
      let caught: unknown
      try {
        resolveConfig({env, isRoot: false})
      } catch (error) {
        caught = error
      }

      expect(caught).to.be.instanceOf(ConfigError)
      expect((caught as ConfigError).message).to.match(message)
      expect((caught as ConfigError).exitCode).to.equal(EXIT.CONFIG)
      expect((caught as ConfigError).suggestions).to.have.length.greaterThan(0)
    })
  }

  it('uses /etc/mfc and /var/lib/mfc for root, XDG directories otherwise', () => {
    const root = resolveConfig({env: {HOME: '/root'}, isRoot: true})
    expect(root.paths.sslConfigFile).to.equal('/etc/mfc/ssl-config.json')
    expect(root.paths.stateDir).to.equal('/var/lib/mfc')
    const user = resolveConfig({env: {HOME: '/home/u', XDG_STATE_HOME: '/home/u/st'}, isRoot: false})
    expect(user.paths.configDir).to.equal('/home/u/.config/mfc')
    expect(user.paths.stateDir).to.equal('/home/u/st/mfc')
  })

  it('saves changes without making environment values permanent, keeping unknown keys', async () => {
    const file = await writeConfig({domain: 'keep.example', future_key: {a: 1}})
    env.MFC_HTTPS_API_PORT = '9999'
    const config = resolveConfig({env, isRoot: false})
    await saveSettings(config, {cert_file: '/x/fullchain.pem'})
    const saved = JSON.parse(await readFile(file, 'utf8'))
    expect(saved.cert_file).to.equal('/x/fullchain.pem')
    expect(saved.domain).to.equal('keep.example')
    expect(saved.future_key).to.deep.equal({a: 1})
    expect(saved).not.to.have.property('https_port_api')
  })
})
