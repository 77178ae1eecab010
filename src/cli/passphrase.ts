import {readFile} from 'node:fs/promises'

import {UsageError, fileProblem} from '../lib/errors.js'

/** Reads a passphrase file: its first line, without the newline an editor adds. */
export async function readPassphrase(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new UsageError(`The passphrase file ${fileProblem(file, error).replace(/^Cannot read /, '')}.`, {code: 'MFC_USAGE', cause: error, suggestions: [`Check the path and permissions of ${file}.`]})
  }

  const passphrase = text.split(/\r?\n/)[0]
  if (passphrase.length < 8) throw new UsageError(`The passphrase in ${file} is shorter than 8 characters.`, {code: 'MFC_USAGE', suggestions: ['Use a longer passphrase, e.g. `openssl rand -base64 32 > ' + file + '`.']})
  return passphrase
}
