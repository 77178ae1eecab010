import {expect} from 'chai'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {Agent, request} from 'undici'

import {type TempEnv, tempEnv} from '../helpers/cli.js'
import {freePort} from '../helpers/ports.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** /metrics as Prometheus users meet it: linted by promtool, scraped by a real Prometheus. */
describe('/metrics with promtool and a real Prometheus (HTTPS + token)', function () {
  this.timeout(120_000)
  let temp: TempEnv
  let serve: ServeProcess | undefined
  let prometheus: ChildProcess | undefined
  let prometheusLog = ''
  let dispatcher: Agent

  before(async () => {
    temp = await tempEnv('mfc-prometheus-')
    serve = await startServeProcess(temp.env)
    dispatcher = new Agent({connect: {ca: serve.caPem}})
  })
  after(async () => {
    prometheus?.kill('SIGKILL')
    await dispatcher?.close()
    await serve?.stop()
    await temp?.cleanup()
  })

  const scrape = async () => {
    const response = await request(`${serve!.url('api')}/metrics`, {dispatcher, headers: {authorization: `Bearer ${serve!.token}`}})
    expect(response.statusCode).to.equal(200)
    return response.body.text()
  }

  it('passes `promtool check metrics` with no warning, and has the process and Node.js series', async () => {
    // A request first, so the request counter has series too.
    await request(`${serve!.url('api')}/health`, {dispatcher}).then((r) => r.body.dump())
    const text = await scrape()
    const lint = spawnSync('promtool', ['check', 'metrics'], {input: text, encoding: 'utf8'})
    expect(lint.status, `${lint.stdout}${lint.stderr}`).to.equal(0)
    expect(lint.stdout + lint.stderr).to.equal('')
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'process_max_fds', 'process_start_time_seconds',
      'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_eventloop_lag_p99_seconds', 'mfc_http_requests_total']) {
      expect(text, name).to.match(new RegExp(`^${name}(\\{[^}]*\\})? [0-9.e+-]+$`, 'm'))
    }

    expect(text).not.to.match(/micrometres|millimolar|mmol/)
    const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)![1])
    expect(rss).to.be.above(10 * 1024 * 1024)
    const fds = Number(/^process_open_fds (\S+)$/m.exec(text)![1])
    expect(fds).to.be.above(5)
  })

  it('a real Prometheus scrapes it over HTTPS with the token: target up, series queryable', async () => {
    const port = await freePort()
    const dir = join(temp.dir, 'prometheus')
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, scrape_timeout: 1s}',
      'scrape_configs:',
      '  - job_name: mfc',
      '    scheme: https',
      `    tls_config: {ca_file: ${JSON.stringify(serve!.caFile)}, server_name: localhost}`,
      `    authorization: {credentials: ${JSON.stringify(serve!.token)}}`,
      `    static_configs: [{targets: ["127.0.0.1:${serve!.ports.api}"]}]`,
      '',
    ].join('\n'))
    prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {stdio: ['ignore', 'pipe', 'pipe']})
    prometheus.stdout!.on('data', (chunk) => (prometheusLog += chunk))
    prometheus.stderr!.on('data', (chunk) => (prometheusLog += chunk))
    const api = async (path: string) => {
      const response = await request(`http://127.0.0.1:${port}${path}`).catch(() => undefined)
      return response?.statusCode === 200 ? response.body.json() as Promise<any> : undefined
    }

    const deadline = Date.now() + 60_000
    let target: any
    while (Date.now() < deadline) {
      target = (await api('/api/v1/targets'))?.data?.activeTargets?.[0]
      if (target?.health === 'up') break
      expect(prometheus.exitCode, prometheusLog).to.equal(null)
      await sleep(250)
    }

    expect(target?.health, `${JSON.stringify(target)}\n${prometheusLog}`).to.equal('up')
    expect(target.scrapeUrl).to.equal(`https://127.0.0.1:${serve!.ports.api}/metrics`)
    for (const name of ['up', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds', 'mfc_certificate_expiry_timestamp_seconds']) {
      const result = (await api(`/api/v1/query?query=${encodeURIComponent(`${name}{job="mfc"}`)}`))?.data?.result
      expect(result, name).to.have.length.above(0)
      if (name === 'up') expect(result[0].value[1]).to.equal('1')
    }
  })
})
