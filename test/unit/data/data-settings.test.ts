import {expect} from 'chai'

import {DEFAULT_DATA_SETTINGS, dataSettings} from '../../../src/services/data/data-settings.js'

const file = (raw: Record<string, unknown>) => ({file: {path: '/etc/mfc/ssl-config.json', exists: true, raw}})

describe('data settings (ssl-config.json keys)', () => {
  it('defaults to the original retention of 30 days and a live default simulation', () => {
    expect(dataSettings(file({domain: 'localhost'}))).to.deep.equal(DEFAULT_DATA_SETTINGS)
    expect(DEFAULT_DATA_SETTINGS).to.include({data_retention_days: 30, simulation_autostart: true, stack_cells: 5})
  })

  it('reads valid values and names the key and file of a bad one', () => {
    expect(dataSettings(file({data_retention_days: 7, simulation_speed: 0.5, data_follow_dir: '/data'}))).to.include({data_retention_days: 7, simulation_speed: 0.5, data_follow_dir: '/data'})
    expect(() => dataSettings(file({stack_cells: 21}))).to.throw('Invalid value 21 for "stack_cells" in /etc/mfc/ssl-config.json: expected a whole number from 1 to 20.')
    expect(() => dataSettings(file({simulation_autostart: 'yes'}))).to.throw(/simulation_autostart/)
    expect(() => dataSettings(file({simulation_speed: 0}))).to.throw(/simulation_speed/)
  })
})
