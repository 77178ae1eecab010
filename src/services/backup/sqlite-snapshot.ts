/**
 * A consistent copy of the history database while writers may be active: SQLite's online
 * backup API (through better-sqlite3, loaded only here and only when a database exists), not
 * a file copy that could catch a half-applied WAL.
 */
export async function snapshotSqlite(source: string, destination: string): Promise<void> {
  const {default: Database} = await import('better-sqlite3')
  const db = new Database(source, {readonly: true, fileMustExist: true})
  try {
    await db.backup(destination)
  } finally {
    db.close()
  }
}
