import {promises as fs} from 'node:fs'
import {dirname} from 'node:path'

import {MfcError} from '../../lib/errors.js'
import {writeFileAtomic} from '../../lib/fs-atomic.js'

export interface GeneratedFile {
  path: string
  text: string
  mode: number
}

/** Writes generated files atomically; parents are created 0755 (they hold no secrets). */
export async function writeGenerated(files: GeneratedFile[]): Promise<string[]> {
  for (const file of files) {
    try {
      await fs.mkdir(dirname(file.path), {recursive: true, mode: 0o755})
      await writeFileAtomic(file.path, file.text, file.mode)
    } catch (error) {
      throw new MfcError(`Cannot write ${file.path}: ${(error as Error).message}`, {
        code: 'MFC_OUTPUT',
        cause: error,
        suggestions: [`Check the permissions of ${dirname(file.path)}, run as root, or pass --output with a directory you own.`, 'Use --dry-run to print the files instead.'],
      })
    }
  }

  return files.map((f) => f.path)
}
