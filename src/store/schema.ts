/**
 * The per-tenant PostgreSQL schema. Every table lives in the tenant's own schema, so that one
 * process can serve several tenants without any table name assuming a global schema.
 *
 * - resource: the current version of every resource (deleted ones kept as tombstones).
 * - resource_history: superseded versions only. A create writes one row; an update moves the
 *   previous row here. The full history of a resource is resource ∪ resource_history.
 * - sp_*: search index rows keyed by the resource's surrogate key (rid); rewritten on every write,
 *   in the same transaction.
 */

/** Each migration is applied once per tenant schema, in order, recorded in schema_migrations. */
export function migrations(schema: string): string[] {
  const s = quoteIdent(schema);
  return [
    `
    CREATE TABLE ${s}.resource (
      rid           bigserial PRIMARY KEY,
      resource_type text        NOT NULL,
      id            text        NOT NULL,
      version_id    integer     NOT NULL,
      last_updated  timestamptz NOT NULL,
      deleted       boolean     NOT NULL DEFAULT false,
      content       text,
      UNIQUE (resource_type, id)
    );
    CREATE INDEX resource_type_updated_idx ON ${s}.resource (resource_type, last_updated, rid) WHERE NOT deleted;
    CREATE TABLE ${s}.resource_history (
      resource_type text        NOT NULL,
      id            text        NOT NULL,
      version_id    integer     NOT NULL,
      last_updated  timestamptz NOT NULL,
      deleted       boolean     NOT NULL,
      content       text,
      PRIMARY KEY (resource_type, id, version_id)
    );
    CREATE INDEX resource_history_updated_idx ON ${s}.resource_history (last_updated);
    CREATE INDEX resource_history_type_updated_idx ON ${s}.resource_history (resource_type, last_updated);
    CREATE INDEX resource_updated_all_idx ON ${s}.resource (last_updated);

    CREATE TABLE ${s}.sp_token (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      system text, code text, display text
    );
    CREATE INDEX sp_token_code_idx ON ${s}.sp_token (resource_type, param, code, system);
    CREATE INDEX sp_token_rid_idx ON ${s}.sp_token (rid);

    CREATE TABLE ${s}.sp_string (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      norm text NOT NULL, exact text NOT NULL
    );
    CREATE INDEX sp_string_norm_idx ON ${s}.sp_string (resource_type, param, norm text_pattern_ops);
    CREATE INDEX sp_string_rid_idx ON ${s}.sp_string (rid);

    CREATE TABLE ${s}.sp_reference (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      target_type text, target_id text, target_version text, target_url text
    );
    CREATE INDEX sp_reference_target_idx ON ${s}.sp_reference (resource_type, param, target_id, target_type);
    CREATE INDEX sp_reference_reverse_idx ON ${s}.sp_reference (target_type, target_id);
    CREATE INDEX sp_reference_url_idx ON ${s}.sp_reference (resource_type, param, target_url) WHERE target_url IS NOT NULL;
    CREATE INDEX sp_reference_rid_idx ON ${s}.sp_reference (rid);

    CREATE TABLE ${s}.sp_date (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      lo timestamptz NOT NULL, hi timestamptz NOT NULL
    );
    CREATE INDEX sp_date_lo_idx ON ${s}.sp_date (resource_type, param, lo);
    CREATE INDEX sp_date_hi_idx ON ${s}.sp_date (resource_type, param, hi);
    CREATE INDEX sp_date_rid_idx ON ${s}.sp_date (rid);

    CREATE TABLE ${s}.sp_number (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      lo numeric NOT NULL, hi numeric NOT NULL
    );
    CREATE INDEX sp_number_idx ON ${s}.sp_number (resource_type, param, lo, hi);
    CREATE INDEX sp_number_rid_idx ON ${s}.sp_number (rid);

    CREATE TABLE ${s}.sp_quantity (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      system text, code text, unit text, lo numeric NOT NULL, hi numeric NOT NULL
    );
    CREATE INDEX sp_quantity_idx ON ${s}.sp_quantity (resource_type, param, code, lo);
    CREATE INDEX sp_quantity_rid_idx ON ${s}.sp_quantity (rid);

    CREATE TABLE ${s}.sp_uri (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      value text NOT NULL
    );
    CREATE INDEX sp_uri_idx ON ${s}.sp_uri (resource_type, param, value text_pattern_ops);
    CREATE INDEX sp_uri_rid_idx ON ${s}.sp_uri (rid);
    `,
  ];
}

export const INDEX_TABLES = ['sp_token', 'sp_string', 'sp_reference', 'sp_date', 'sp_number', 'sp_quantity', 'sp_uri'] as const;
export type IndexTable = (typeof INDEX_TABLES)[number];

/** Column names of each index table after (rid, resource_type, param). */
export const INDEX_COLUMNS: Record<IndexTable, readonly string[]> = {
  sp_token: ['system', 'code', 'display'],
  sp_string: ['norm', 'exact'],
  sp_reference: ['target_type', 'target_id', 'target_version', 'target_url'],
  sp_date: ['lo', 'hi'],
  sp_number: ['lo', 'hi'],
  sp_quantity: ['system', 'code', 'unit', 'lo', 'hi'],
  sp_uri: ['value'],
};

/** PostgreSQL type of each index column, for unnest() casts in batched inserts. */
export const INDEX_COLUMN_TYPES: Record<IndexTable, readonly string[]> = {
  sp_token: ['text', 'text', 'text'],
  sp_string: ['text', 'text'],
  sp_reference: ['text', 'text', 'text', 'text'],
  sp_date: ['timestamptz', 'timestamptz'],
  sp_number: ['numeric', 'numeric'],
  sp_quantity: ['text', 'text', 'text', 'numeric', 'numeric'],
  sp_uri: ['text'],
};

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid schema name: ${name}`);
  return `"${name}"`;
}
