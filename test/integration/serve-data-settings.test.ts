import {expect} from 'chai'
import {Agent, fetch} from 'undici'

import {runCli} from '../helpers/cli.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'
import {writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

/**
 * The data keys are ordinary settings: a real `mfc serve` takes them from the file, the
 * environment and its flags, in that order of strength.
 */
describe('serve: data settings through defaults < file < environment < flags', function () {
  this.timeout(60_000)
  let site: TestSite | undefined
  let dispatcher: Agent | undefined
  const serves: ServeProcess[] = []
  before(async () => {
    site = await testSite()
    dispatcher = new Agent({connect: {ca: site.caPem}})
  })
  after(async () => {
    for (const serve of serves) expect(await serve.stop(), serve.output()).to.equal(0)
    await dispatcher?.close()
    await site?.temp.cleanup()
  })

  const status = async (serve: ServeProcess) => {
    const response = await fetch(serve.url('api') + '/simulation/status', {dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`}})
    expect(response.status).to.equal(200)
    return await response.json() as {is_running: boolean}
  }

  it('the environment beats the file, and --no-simulation beats the environment', async () => {
    writeDataSettings(site!, {simulation_autostart: false, rate_limit_per_minute: 0})
    const byEnv = await startServeProcess({...site!.env, MFC_SIMULATION_AUTOSTART: 'true', MFC_SIMULATION_SPEED: '50'})
    serves.push(byEnv)
    expect((await status(byEnv)).is_running, byEnv.output()).to.equal(true)
    expect(await byEnv.stop(), byEnv.output()).to.equal(0)

    const byFlag = await startServeProcess({...site!.env, MFC_SIMULATION_AUTOSTART: 'true'}, {args: ['--no-simulation']})
    serves.push(byFlag)
    expect((await status(byFlag)).is_running, byFlag.output()).to.equal(false)
  })

  it('a bad value from the environment stops serve with exit 3 naming the variable', async () => {
    const result = await runCli(['serve', '--no-http', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0'], {env: {...site!.env, MFC_API_TOKEN: TEST_TOKEN, MFC_STACK_CELLS: '99'}})
    expect(result.code, result.stderr).to.equal(3)
    expect(result.stderr.split('\n')[0]).to.equal('Error: Invalid value "99" for "stack_cells" in environment variable MFC_STACK_CELLS: expected a whole number from 1 to 20.')
  })
})
