import {expect} from 'chai'

import {LETSENCRYPT, accountDirName, dryRunDirectory, issuanceDirectory} from '../../src/services/acme/directories.js'

describe('ACME directory choice', () => {
  const base = {acme_directory: null, acme_staging_directory: null, staging: false}

  it('orders from Let\'s Encrypt, its staging CA on request, or the given directory', () => {
    expect(issuanceDirectory(base)).to.equal(LETSENCRYPT.production)
    expect(issuanceDirectory({...base, staging: true})).to.equal(LETSENCRYPT.staging)
    expect(issuanceDirectory({...base, staging: true, acme_staging_directory: 'https://test.ca/dir'})).to.equal('https://test.ca/dir')
    expect(issuanceDirectory({...base, staging: true, acme_directory: 'https://ca.example/dir'})).to.equal('https://ca.example/dir')
  })

  it('dry-runs production Let\'s Encrypt certificates against staging and other CAs against themselves', () => {
    expect(dryRunDirectory(LETSENCRYPT.production, base)).to.equal(LETSENCRYPT.staging)
    expect(dryRunDirectory(LETSENCRYPT.production, {...base, acme_staging_directory: 'https://test.ca/dir'})).to.equal('https://test.ca/dir')
    expect(dryRunDirectory('https://ca.example/dir', base)).to.equal('https://ca.example/dir')
  })

  it('keeps one readable account directory per directory URL', () => {
    expect(accountDirName(LETSENCRYPT.production)).to.equal('acme-v02.api.letsencrypt.org_directory')
    expect(accountDirName('https://127.0.0.1:14000/dir')).to.equal('127.0.0.1_14000_dir')
    expect(accountDirName('https://127.0.0.1:14000/dir')).not.to.equal(accountDirName('https://127.0.0.1:14001/dir'))
  })
})
