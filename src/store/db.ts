/**
 * The narrow SQL interface the store is written against. Two engines implement it with one
 * dialect: a PostgreSQL server through pg (DATABASE_URL) and PGlite, PostgreSQL compiled to
 * WebAssembly and run in-process (the embedded default).
 */
export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * Keep the statement prepared on the connection (PostgreSQL server; PGlite ignores it): parsed
   * and planned once per connection, then only bound and run. For the store's own statements,
   * whose text comes from a small fixed set and whose plans do not depend on the values (reads
   * by id, the write statement, locks); never for searches, whose shapes are open-ended. Saved
   * 30% of PostgreSQL's CPU on HL7 v2 ingest, where the write statement's text is several kB.
   */
  prepared?: boolean;
}

/** Options of the store's fixed statements (see QueryOptions.prepared). */
export const PREPARED: QueryOptions = { prepared: true };

export interface SqlClient {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult<T>>;
  /**
   * Inside Database.transaction only: run fn after the transaction's work, just before COMMIT
   * (in registration order; an error rolls everything back). The Writer records a write's
   * Provenance this way, whoever opened the transaction.
   */
  beforeCommit?(fn: () => Promise<void>): void;
}

/** A transaction's before-commit hooks: collected while it runs, run (in order) before COMMIT. */
export class CommitHooks {
  private readonly hooks: Array<() => Promise<void>> = [];
  add(fn: () => Promise<void>): void {
    this.hooks.push(fn);
  }
  async run(): Promise<void> {
    // Hooks may register more hooks (a write made by a hook): run until none is left.
    for (let i = 0; i < this.hooks.length; i++) await this.hooks[i]!();
  }
}

export interface Database extends SqlClient {
  readonly engine: 'postgres' | 'pglite';
  /** Run fn in one database transaction (READ COMMITTED); retried on deadlock/serialization failure. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /**
   * LISTEN on a channel (NOTIFYs arrive after their transaction commits); resolves to an
   * unlisten function. Best effort: callers must also poll.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Run several statements at once (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** SQLSTATEs after which the whole transaction may simply be tried again. */
export const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);
export const MAX_TRANSACTION_ATTEMPTS = 5;

export function sqlState(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}
