// better-sqlite3 as the gateway store's SQL driver (Node adapter).
import Database from 'better-sqlite3';
import type { SqlDriver, SqlValue } from '../sql-store.js';

export function openSqlite(file: string): { driver: SqlDriver; close(): void } {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('secure_delete = ON'); // deleted ACL rows are zeroed, not left in free pages
  const cache = new Map<string, Database.Statement>();
  const stmt = (sql: string): Database.Statement => {
    let s = cache.get(sql);
    if (!s) cache.set(sql, (s = db.prepare(sql)));
    return s;
  };
  return {
    driver: {
      all: (sql, params) => stmt(sql).all(...params) as Record<string, SqlValue>[],
      run: (sql, params) => void stmt(sql).run(...params),
      transaction: (fn) => db.transaction(fn)(),
    },
    close: () => db.close(),
  };
}
