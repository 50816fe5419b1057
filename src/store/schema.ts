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

/** The index tables' extended statistics: table and columns (created in one migration, narrowed in a later one). */
const EXTENDED_STATISTICS: ReadonlyArray<readonly [string, string]> = [
  ['sp_token', 'resource_type, param, code'],
  ['sp_reference', 'resource_type, param, target_type'],
  ['sp_string', 'resource_type, param'],
  ['sp_date', 'resource_type, param'],
  ['sp_number', 'resource_type, param'],
  ['sp_quantity', 'resource_type, param, code'],
  ['sp_uri', 'resource_type, param'],
  ['sp_composite', 'resource_type, param, c1_b'],
];

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
    // Custom search parameters: a version bumped by every SearchParameter write (src/search/tenant-params.ts);
    // reindex jobs and their progress, readable by every worker (src/search/reindex-job.ts).
    `
    CREATE TABLE ${s}.search_param_version (
      id integer PRIMARY KEY CHECK (id = 1),
      version bigint NOT NULL
    );
    INSERT INTO ${s}.search_param_version (id, version) VALUES (1, 0);
    CREATE TABLE ${s}.reindex_job (
      id             text PRIMARY KEY,
      state          text        NOT NULL,
      resource_types text[],
      total          bigint      NOT NULL DEFAULT 0,
      processed      bigint      NOT NULL DEFAULT 0,
      created_at     timestamptz NOT NULL DEFAULT now(),
      started_at     timestamptz,
      updated_at     timestamptz NOT NULL DEFAULT now(),
      finished_at    timestamptz,
      error          text
    );
    `,
    // Composite parameters (src/search/composite-extract.ts): one row per combination of component
    // values taken from the same element; component k's value in ck_a, ck_b, ck_c (text) and
    // ck_lo, ck_hi (numeric; dates as epoch milliseconds).
    `
    CREATE TABLE ${s}.sp_composite (
      rid bigint NOT NULL, resource_type text NOT NULL, param text NOT NULL,
      c1_a text, c1_b text, c1_c text, c1_lo numeric, c1_hi numeric,
      c2_a text, c2_b text, c2_c text, c2_lo numeric, c2_hi numeric,
      c3_a text, c3_b text, c3_c text, c3_lo numeric, c3_hi numeric
    );
    CREATE INDEX sp_composite_idx ON ${s}.sp_composite (resource_type, param, c1_b, c1_a);
    CREATE INDEX sp_composite_rid_idx ON ${s}.sp_composite (rid);
    `,
    // HL7 v2 messages received and sent, raw, with their outcome (src/hl7v2/message-log.ts). A
    // received message is known by MSH-3, MSH-4 and MSH-10: a resend is answered from its row.
    `
    CREATE TABLE ${s}.hl7_message (
      id               bigserial   PRIMARY KEY,
      received_at      timestamptz NOT NULL DEFAULT now(),
      processed_at     timestamptz,
      direction        text        NOT NULL CHECK (direction IN ('in', 'out')),
      sending_app      text        NOT NULL DEFAULT '',
      sending_facility text        NOT NULL DEFAULT '',
      control_id       text,
      message_type     text,
      status           text        NOT NULL,
      ack_code         text,
      error            text,
      raw              text        NOT NULL,
      resources        jsonb,
      ack              text
    );
    CREATE UNIQUE INDEX hl7_message_in_key_idx ON ${s}.hl7_message (sending_app, sending_facility, control_id) WHERE direction = 'in';
    CREATE INDEX hl7_message_received_idx ON ${s}.hl7_message (received_at);
    `,
    // Extended statistics on the index tables: a parameter name mostly belongs to a few resource
    // types and its values to it, so the planner must not multiply their selectivities as if they
    // were independent (row estimates off by 100x+ misplan chained and _has searches, links-sql.ts).
    EXTENDED_STATISTICS.map(([table, columns]) => `CREATE STATISTICS ${s}.${table}_stats ON ${columns} FROM ${s}.${table};`).join('\n'),
    // Transactional outbox (src/subscriptions/outbox.ts): one row per written version, in the writing
    // transaction. tx is the writer's transaction id: the relay reads in (tx, seq) order and only
    // below the oldest running transaction, so a late commit of a lower seq is never skipped.
    `
    CREATE TABLE ${s}.change_event (
      seq           bigserial   PRIMARY KEY,
      tx            xid8        NOT NULL DEFAULT pg_current_xact_id(),
      resource_type text        NOT NULL,
      id            text        NOT NULL,
      version_id    integer     NOT NULL,
      action        text        NOT NULL CHECK (action IN ('create', 'update', 'delete')),
      occurred_at   timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX change_event_tx_seq_idx ON ${s}.change_event (tx, seq);
    CREATE TABLE ${s}.outbox_cursor (
      name       text        PRIMARY KEY,
      tx         xid8        NOT NULL DEFAULT '0',
      seq        bigint      NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO ${s}.outbox_cursor (name) VALUES ('relay');
    `,
    // Subscriptions (src/subscriptions/numbering.ts, delivery.ts): per subscription a counter of
    // matched events (events-since-subscription-start), what was delivered, who created it, the
    // delivery lease and retry state; one row per numbered event, unique per (subscription, change seq).
    `
    CREATE TABLE ${s}.subscription_state (
      subscription_id    text        PRIMARY KEY,
      events_since_start bigint      NOT NULL DEFAULT 0,
      delivered          bigint      NOT NULL DEFAULT 0,
      owner              jsonb,
      failures           integer     NOT NULL DEFAULT 0,
      last_error         text,
      next_attempt_at    timestamptz,
      lease_token        text,
      lease_until        timestamptz,
      updated_at         timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.subscription_event (
      subscription_id text        NOT NULL,
      event_number    bigint      NOT NULL,
      change_seq      bigint      NOT NULL,
      resource_type   text        NOT NULL,
      id              text        NOT NULL,
      version_id      integer     NOT NULL,
      action          text        NOT NULL,
      created_at      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (subscription_id, event_number),
      UNIQUE (subscription_id, change_seq)
    );
    CREATE INDEX subscription_event_resource_idx ON ${s}.subscription_event (subscription_id, resource_type, id, version_id);
    `,
    // SMART-on-FHIR authorization (src/auth/): signing keys, OAuth clients, users, authorization
    // codes, refresh tokens (hashed), revoked access-token ids, used client-assertion ids and EHR
    // launch contexts.
    `
    CREATE TABLE ${s}.auth_key (
      kid text PRIMARY KEY, alg text NOT NULL, private_jwk text NOT NULL, public_jwk text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.auth_client (
      client_id text PRIMARY KEY, name text NOT NULL, kind text NOT NULL, auth_method text NOT NULL,
      secret_hash text, redirect_uris jsonb NOT NULL DEFAULT '[]', scope text NOT NULL,
      jwks jsonb, jwks_uri text, created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.auth_user (
      id text PRIMARY KEY, username text NOT NULL UNIQUE, password_hash text NOT NULL,
      fhir_user text NOT NULL, patient_id text, totp_secret text,
      failed_logins integer NOT NULL DEFAULT 0, locked_until timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.auth_code (
      code_hash text PRIMARY KEY, client_id text NOT NULL, user_id text NOT NULL, redirect_uri text NOT NULL,
      scope text NOT NULL, code_challenge text, patient text, encounter text, nonce text,
      expires_at timestamptz NOT NULL, used_at timestamptz
    );
    CREATE TABLE ${s}.auth_refresh (
      token_hash text PRIMARY KEY, family text NOT NULL, client_id text NOT NULL, user_id text,
      scope text NOT NULL, patient text, encounter text, fhir_user text,
      expires_at timestamptz NOT NULL, rotated_at timestamptz, revoked_at timestamptz
    );
    CREATE INDEX auth_refresh_family_idx ON ${s}.auth_refresh (family);
    CREATE TABLE ${s}.auth_revoked (jti text PRIMARY KEY, expires_at timestamptz NOT NULL);
    CREATE TABLE ${s}.auth_assertion (
      client_id text NOT NULL, jti text NOT NULL, expires_at timestamptz NOT NULL, PRIMARY KEY (client_id, jti)
    );
    CREATE TABLE ${s}.auth_launch (
      id text PRIMARY KEY, patient text, encounter text, expires_at timestamptz NOT NULL
    );
    `,
    // HL7 v2 outbound (src/hl7v2/outbound/): a sent message's destination Endpoint, its dedupe key
    // (endpoint + resource version: a re-run change job never queues twice), the resource it is
    // about and why (NW/CA/XO/A04/A08), delivery attempts, retry time and the sending lease.
    `
    ALTER TABLE ${s}.hl7_message
      ADD COLUMN endpoint text, ADD COLUMN dedupe_key text, ADD COLUMN focus text, ADD COLUMN event text,
      ADD COLUMN attempts integer NOT NULL DEFAULT 0, ADD COLUMN next_attempt_at timestamptz, ADD COLUMN lease_until timestamptz;
    CREATE UNIQUE INDEX hl7_message_out_dedupe_idx ON ${s}.hl7_message (dedupe_key) WHERE direction = 'out';
    CREATE INDEX hl7_message_out_pending_idx ON ${s}.hl7_message (endpoint, id) WHERE direction = 'out' AND status IN ('queued', 'failed');
    CREATE INDEX hl7_message_out_focus_idx ON ${s}.hl7_message (focus, endpoint) WHERE direction = 'out';
    `,
    // Prescriptions workflow (src/workflows/pdf-share.ts): shareable prescription PDF links (the
    // revocation list: revoked_at) and the tenant's generated HMAC key when SHARE_LINK_SECRET is unset.
    `
    CREATE TABLE ${s}.share_link (
      token_id   text        PRIMARY KEY,
      focus      text        NOT NULL,
      binary_id  text        NOT NULL,
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX share_link_focus_idx ON ${s}.share_link (focus);
    CREATE TABLE ${s}.workflow_secret (name text PRIMARY KEY, value text NOT NULL);
    `,
    // Subscriptions, heartbeats (src/subscriptions/heartbeat.ts): when the last notification went
    // out, and the backport heartbeat period of topic-based rest-hook subscriptions.
    `
    ALTER TABLE ${s}.subscription_state ADD COLUMN last_sent_at timestamptz, ADD COLUMN heartbeat_seconds integer;
    `,
    // Subscriptions (src/subscriptions/rest-hook.ts): the matcher's own cursor over change_event, so
    // that subscription events are numbered in commit order; it starts where the relay is now.
    `
    INSERT INTO ${s}.outbox_cursor (name, tx, seq) SELECT 'subscriptions', tx, seq FROM ${s}.outbox_cursor WHERE name = 'relay' ON CONFLICT DO NOTHING;
    `,
    // Subscriptions, websocket channel (src/subscriptions/ws-token.ts): short-lived binding tokens
    // of $get-ws-binding-token (sha-256 of the token only), one use each.
    `
    CREATE TABLE ${s}.subscription_ws_token (
      token_hash      text        PRIMARY KEY,
      subscription_id text        NOT NULL,
      expires_at      timestamptz NOT NULL
    );
    `,
    keyCollation(s),
    plannerStatistics(s),
  ];
}

/**
 * The text columns of B-tree keys that are only ever compared for equality or joined (types,
 * ids, parameter names, codes, systems, reference targets) compare byte-wise (COLLATE "C"). Under
 * a linguistic collation (en_US.UTF-8, and C.UTF-8 before PostgreSQL 17) every comparison goes
 * through strcoll(), and the search index's B-trees are compared ~180 times per HL7 v2 message:
 * ~10% of PostgreSQL's CPU for the write statement (scripts/bench/write-pg.ts). Equality is the same
 * under any deterministic collation. Columns compared to each other change together, so that
 * joins (sp_reference → resource) keep using the indexes. Left as they were: values searched by
 * prefix (sp_string.norm, sp_uri.value: text_pattern_ops is byte-wise already) and text that is
 * lower-cased (display: lower() under "C" folds ASCII only).
 */
function keyCollation(s: string): string {
  const c = (columns: string[]) => columns.map((col) => `ALTER COLUMN ${col} TYPE text COLLATE "C"`).join(', ');
  const base = ['resource_type', 'param'];
  const tables: Array<[string, string[]]> = [
    ['resource', ['resource_type', 'id']],
    ['resource_history', ['resource_type', 'id']],
    ['sp_token', [...base, 'system', 'code']],
    ['sp_string', base],
    ['sp_reference', [...base, 'target_type', 'target_id', 'target_url']],
    ['sp_date', base],
    ['sp_number', base],
    ['sp_quantity', [...base, 'system', 'code']],
    ['sp_uri', base],
    ['sp_composite', [...base, 'c1_a', 'c1_b']],
  ];
  return tables.map(([table, columns]) => `ALTER TABLE ${s}.${table} ${c(columns)};`).join('\n');
}

/**
 * What ANALYZE computes (src/store/statistics.ts runs it while tables grow): no column statistics
 * for text that no query filters on (resource bodies, raw messages), and the index tables'
 * extended statistics without ndistinct, which only estimates GROUP BY sizes; the WHERE-clause
 * estimates the search plans rest on come from dependencies and mcv. Building the three kinds was
 * 80% of ANALYZE's time on sp_token.
 */
function plannerStatistics(s: string): string {
  const noStats = (table: string, columns: string[]) => `ALTER TABLE ${s}.${table} ${columns.map((col) => `ALTER COLUMN ${col} SET STATISTICS 0`).join(', ')};`;
  return [
    noStats('resource', ['content']),
    noStats('resource_history', ['content']),
    noStats('sp_token', ['display']),
    noStats('hl7_message', ['raw', 'ack', 'error', 'resources']),
    ...EXTENDED_STATISTICS.map(([table, columns]) => `DROP STATISTICS ${s}.${table}_stats; CREATE STATISTICS ${s}.${table}_stats (dependencies, mcv) ON ${columns} FROM ${s}.${table};`),
  ].join('\n');
}

export const INDEX_TABLES = ['sp_token', 'sp_string', 'sp_reference', 'sp_date', 'sp_number', 'sp_quantity', 'sp_uri', 'sp_composite'] as const;
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
  sp_composite: ['c1_a', 'c1_b', 'c1_c', 'c1_lo', 'c1_hi', 'c2_a', 'c2_b', 'c2_c', 'c2_lo', 'c2_hi', 'c3_a', 'c3_b', 'c3_c', 'c3_lo', 'c3_hi'],
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
  sp_composite: ['text', 'text', 'text', 'numeric', 'numeric', 'text', 'text', 'text', 'numeric', 'numeric', 'text', 'text', 'text', 'numeric', 'numeric'],
};

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid schema name: ${name}`);
  return `"${name}"`;
}
