import {expect} from 'chai'

import {RequestCounter} from '../../../src/services/data/metrics.js'

describe('data: RequestCounter (per-response route counter)', () => {
  it('counts per method, route pattern and status; unmatched URLs share one label', () => {
    const counter = new RequestCounter()
    for (let i = 0; i < 3; i++) counter.record('GET', '/health', 200)
    counter.record('GET', '/health', 503)
    counter.record('POST', '/health', 404)
    counter.record('GET', undefined, 404)
    counter.record('GET', undefined, 404)
    const sorted = counter.entries().sort((a, b) => `${a.method}${a.route}${a.status}`.localeCompare(`${b.method}${b.route}${b.status}`))
    expect(sorted).to.deep.equal([
      {method: 'GET', route: '/health', status: '200', count: 3},
      {method: 'GET', route: '/health', status: '503', count: 1},
      {method: 'GET', route: 'unmatched', status: '404', count: 2},
      {method: 'POST', route: '/health', status: '404', count: 1},
    ])
  })

  it('starts empty', () => {
    expect(new RequestCounter().entries()).to.deep.equal([])
  })
})
