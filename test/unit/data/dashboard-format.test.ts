import {expect} from 'chai'

import {formatSi as pageFormat} from '../../../src/dashboard/format.js'
import {formatSi as serverFormat} from '../../../src/services/data/alerts.js'

describe('one SI formatting for the dashboard and the alert messages', () => {
  it('formats the same on both sides, with the real value (30.1 μW, not 0.000)', () => {
    const cases: [number, string][] = [[3.01e-5, 'W'], [0.00201, 'W'], [2.5, 'W'], [1500, 'W'], [0.7, 'V'], [0, 'W'], [25.04, 'mM'], [7.1, 'pH'], [200, 's'], [-3e-7, 'W']]
    for (const [value, unit] of cases) expect(pageFormat(value, unit), `${value} ${unit}`).to.equal(serverFormat(value, unit))
    expect(pageFormat(3.01e-5, 'W')).to.equal('30.1 μW')
  })
})
