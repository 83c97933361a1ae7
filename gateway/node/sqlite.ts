// The gateway store's SQL driver on Node: @photostructure/sqlite (node:sqlite's API, SQLite prebuilt for
// each platform inside the npm tarball, so `npm ci` compiles nothing; better-sqlite3 compiled from source
// for about two minutes on machines that cannot download its prebuilt binaries).
import { DatabaseSync, type StatementSyncInstance } from '@photostructure/sqlite';
import type { SqlDriver, SqlValue } from '../sql-store.js';

export function openSqlite(file: string): { driver: SqlDriver; close(): void } {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL');
  // An acknowledged REST write survives power loss: fsync the WAL at every commit (SQLite's FULL).
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA secure_delete = ON'); // deleted ACL rows are zeroed, not left in free pages
  const cache = new Map<string, StatementSyncInstance>();
  const stmt = (sql: string): StatementSyncInstance => {
    let s = cache.get(sql);
    if (!s) cache.set(sql, (s = db.prepare(sql)));
    return s;
  };
  return {
    driver: {
      all: (sql, params) => stmt(sql).all(...params) as Record<string, SqlValue>[],
      run: (sql, params) => void stmt(sql).run(...params),
      transaction: (fn) => inTransaction(db, fn),
      lazyTransaction: (fn) => {
        if (db.isTransaction) return fn();
        // WAL + NORMAL: the commit is written but not fsynced; the next FULL commit syncs it too
        db.exec('PRAGMA synchronous = NORMAL');
        try {
          return inTransaction(db, fn);
        } finally {
          db.exec('PRAGMA synchronous = FULL');
        }
      },
    },
    close: () => db.close(),
  };
}

/** node:sqlite has no transaction helper: BEGIN IMMEDIATE … COMMIT, rolled back if `fn` throws (nested calls join). */
function inTransaction<T>(db: InstanceType<typeof DatabaseSync>, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec('BEGIN IMMEDIATE');
  try {
    const r = fn();
    db.exec('COMMIT');
    return r;
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw e;
  }
}
