import {promises as fs} from 'node:fs'
import {dirname} from 'node:path'

import {MfcError, errnoCode} from '../../lib/errors.js'
import {writeFileAtomic} from '../../lib/fs-atomic.js'

export interface GeneratedFile {
  path: string
  text: string
  mode: number
}

async function exists(path: string): Promise<boolean> {
  return fs.lstat(path).then(() => true, (error) => {
    if (errnoCode(error) === 'ENOENT') return false
    throw error
  })
}

/**
 * Writes generated files atomically; parents are created 0755 (they hold no secrets).
 * `overwrite: false` refuses (before writing any) when one of the files exists already.
 */
export async function writeGenerated(files: GeneratedFile[], options: {overwrite?: boolean} = {}): Promise<string[]> {
  if (options.overwrite === false) {
    for (const file of files) {
      if (await exists(file.path)) {
        throw new MfcError(`${file.path} exists already; it was left as it is.`, {
          code: 'MFC_OUTPUT_EXISTS',
          suggestions: ['Add --force to replace it (keep a copy first if it holds your own settings), or pass --output with another file.', 'Use --dry-run to print the file instead.'],
        })
      }
    }
  }

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

/** A symlink `path` -> `target`, replacing a previous symlink but never a regular file. */
export async function linkGenerated(path: string, target: string): Promise<'linked' | 'kept-file'> {
  try {
    const stat = await fs.lstat(path).catch((error) => {
      if (errnoCode(error) === 'ENOENT') return undefined
      throw error
    })
    if (stat && !stat.isSymbolicLink()) return 'kept-file'
    await fs.mkdir(dirname(path), {recursive: true, mode: 0o755})
    const temp = `${path}.${process.pid}.tmp`
    await fs.rm(temp, {force: true})
    await fs.symlink(target, temp)
    await fs.rename(temp, path)
    return 'linked'
  } catch (error) {
    throw new MfcError(`Cannot link ${path} to ${target}: ${(error as Error).message}`, {
      code: 'MFC_OUTPUT',
      cause: error,
      suggestions: [`Check the permissions of ${dirname(path)}, or pass --crt with a PEM file you manage yourself.`],
    })
  }
}
