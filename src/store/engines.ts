/**
 * The two engines behind the Database interface: a PostgreSQL server through a pg Pool, and
 * PGlite (the same PostgreSQL, in-process) persisted under a data directory that we lock so a
 * second process fails clearly instead of corrupting it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Database, QueryOptions, QueryResult, SqlClient } from './db.js';
import { CommitHooks, MAX_TRANSACTION_ATTEMPTS, RETRYABLE_SQLSTATES, sqlState } from './db.js';
import { acquireDirectoryLock, type DirectoryLock } from './dir-lock.js';

/** Retry fn while it fails with a transient SQLSTATE (deadlock, serialization failure). */
async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= MAX_TRANSACTION_ATTEMPTS || !RETRYABLE_SQLSTATES.has(sqlState(error) ?? '')) throw error;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
    }
  }
}

/**
 * Names of prepared statements, by text (node-pg prepares a named statement once per connection).
 * Capped: past the cap, new texts run unnamed, so a bug that prepares open-ended texts costs
 * speed, not the server's memory.
 */
const statementNames = new Map<string, string>();
const MAX_PREPARED = 400;

function pgQuery(sql: string, params: unknown[] | undefined, options: QueryOptions | undefined, prepare: boolean): pg.QueryConfig {
  if (!prepare || !options?.prepared) return { text: sql, values: params };
  let name = statementNames.get(sql);
  if (!name && statementNames.size < MAX_PREPARED) {
    name = `cb_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    statementNames.set(sql, name);
  }
  return { text: sql, values: params, name };
}

export class PostgresDatabase implements Database {
  readonly engine = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(
    private readonly connectionString: string,
    poolSize = 10,
    /** Off behind a proxy that pools by transaction (prepared statements live on one connection). */
    private readonly prepare = true,
  ) {
    this.pool = new pg.Pool({ connectionString, max: poolSize });
    // An idle client's error (server restart) must not crash the process; the pool drops it.
    this.pool.on('error', () => undefined);
  }

  async query<T>(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<T>> {
    const r = await this.pool.query(pgQuery(sql, params, options, this.prepare));
    return { rows: r.rows as T[], rowCount: r.rowCount ?? 0 };
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  /** A dedicated connection (not from the pool, which it would hold forever). */
  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('error', () => undefined); // lost connection: the caller's polling still runs
    client.on('notification', (n) => {
      if (n.channel === channel) onPayload(n.payload ?? '');
    });
    await client.connect();
    await client.query(`LISTEN ${channel}`);
    return async () => {
      await client.end().catch(() => undefined);
    };
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return withRetries(async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        const hooks = new CommitHooks();
        const tx: SqlClient = {
          query: async <R>(sql: string, params?: unknown[], options?: QueryOptions) => {
            const r = await client.query(pgQuery(sql, params, options, this.prepare));
            return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
          },
          beforeCommit: (hook) => hooks.add(hook),
        };
        const result = await fn(tx);
        await hooks.run();
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export class PgliteDatabase implements Database {
  readonly engine = 'pglite' as const;

  private constructor(
    private readonly db: PGlite,
    private readonly lock: DirectoryLock | undefined,
  ) {}

  /** dataDir undefined → a purely in-memory database (tests). */
  static async open(dataDir?: string): Promise<PgliteDatabase> {
    let lock: DirectoryLock | undefined;
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      lock = acquireDirectoryLock(dataDir);
    }
    try {
      const db = dataDir ? new PGlite(join(dataDir, 'pgdata')) : new PGlite();
      await db.waitReady;
      return new PgliteDatabase(db, lock);
    } catch (error) {
      lock?.release();
      throw error;
    }
  }

  async query<T>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
    const r = await this.db.query<T>(sql, params as unknown[]);
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    return this.db.listen(channel, onPayload);
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    // PGlite has one connection; its transaction() queues other queries until this one ends.
    return withRetries(() =>
      this.db.transaction(async (t) => {
        const hooks = new CommitHooks();
        const tx: SqlClient = {
          query: async <R>(sql: string, params?: unknown[]) => {
            const r = await t.query<R>(sql, params as unknown[]);
            return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
          },
          beforeCommit: (hook) => hooks.add(hook),
        };
        const result = await fn(tx);
        await hooks.run();
        return result;
      }),
    );
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      this.lock?.release();
    }
  }
}

export async function openDatabase(options: { databaseUrl?: string; dataDir?: string; poolSize?: number; preparedStatements?: boolean }): Promise<Database> {
  if (options.databaseUrl) return new PostgresDatabase(options.databaseUrl, options.poolSize, options.preparedStatements);
  return PgliteDatabase.open(options.dataDir);
}
