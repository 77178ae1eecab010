import {expect} from 'chai'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {resolveConfig} from '../../../src/lib/config.js'
import {DEFAULT_DATA_SETTINGS, dataSettings} from '../../../src/services/data/data-settings.js'

describe('data settings (ssl-config.json keys)', () => {
  let dir: string
  let file: string
  let env: NodeJS.ProcessEnv
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-data-settings-'))
    file = join(dir, 'ssl-config.json')
    env = {HOME: dir, MFC_CONFIG_DIR: dir, MFC_STATE_DIR: join(dir, 'state'), MFC_SSL_CONFIG: file}
  })
  afterEach(() => rm(dir, {force: true, recursive: true}))
  const resolved = async (raw: Record<string, unknown>, overrides = {}) => {
    await writeFile(file, JSON.stringify(raw))
    return dataSettings(resolveConfig({env, isRoot: false, overrides}))
  }

  it('defaults to the original retention of 30 days and a live default simulation', async () => {
    expect(await resolved({domain: 'localhost'})).to.deep.equal(DEFAULT_DATA_SETTINGS)
    expect(DEFAULT_DATA_SETTINGS).to.include({data_retention_days: 30, simulation_autostart: true, stack_cells: 5})
  })

  it('reads valid values and names the key and file of a bad one', async () => {
    expect(await resolved({data_retention_days: 7, simulation_speed: 0.5, data_follow_dir: '/data'})).to.include({data_retention_days: 7, simulation_speed: 0.5, data_follow_dir: '/data'})
    await resolved({stack_cells: 21}).then(() => expect.fail('accepted'), (error: Error) => expect(error.message).to.equal(`Invalid value 21 for "stack_cells" in ${file}: expected a whole number from 1 to 20.`))
    await resolved({simulation_autostart: 'yes'}).then(() => expect.fail('accepted'), (error: Error) => expect(error.message).to.match(/simulation_autostart/))
    await resolved({simulation_speed: 0}).then(() => expect.fail('accepted'), (error: Error) => expect(error.message).to.match(/"simulation_speed".*from 0.001 to 100000/))
  })

  it('go through the normal precedence: defaults < file < environment < flags', async () => {
    env.MFC_SIMULATION_SPEED = '2.5'
    env.MFC_SIMULATION_AUTOSTART = 'off'
    env.MFC_STACK_CELLS = '8'
    const settings = await resolved({simulation_speed: 0.5, stack_cells: 3, data_retention_days: 9}, {stack_cells: 12})
    expect(settings).to.include({data_retention_days: 9, simulation_speed: 2.5, simulation_autostart: false, stack_cells: 12, ingest_max_batch: 10_000})
    env.MFC_DATA_RETENTION_DAYS = '-1'
    await resolved({}).then(() => expect.fail('accepted'), (error: Error) => expect(error.message).to.equal('Invalid value "-1" for "data_retention_days" in environment variable MFC_DATA_RETENTION_DAYS: expected a whole number from 0 to 36500.'))
  })
})
