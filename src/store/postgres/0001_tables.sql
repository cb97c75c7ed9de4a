-- wenda's tables in PostgreSQL (migration 1). Applied by wenda at start-up
-- (sqlx's migrator, under its advisory lock, so replicas starting together
-- apply it once).

-- Documents: the original text (citations index into it) and what was
-- derived from it. A document's passages are the rows of wenda_passages
-- that name it, in chunk order.
CREATE TABLE wenda_documents (
    id           text PRIMARY KEY,
    source       text NOT NULL,
    title        text NOT NULL,
    language     text NOT NULL,
    published    text,
    url          text,
    metadata     jsonb NOT NULL DEFAULT '{}',
    body         text NOT NULL,
    content_hash text NOT NULL,
    origin       text NOT NULL CHECK (origin IN ('corpus', 'api'))
);

-- Passages with their vectors (f32, little-endian: 4 bytes per dimension).
-- Offsets are in characters (Unicode code points).
CREATE TABLE wenda_passages (
    id              bigint PRIMARY KEY,
    doc_id          text NOT NULL REFERENCES wenda_documents (id) ON DELETE CASCADE,
    chunk_index     integer NOT NULL,
    body            text NOT NULL,
    char_start      bigint NOT NULL,
    char_end        bigint NOT NULL,
    language        text NOT NULL,
    tokens          integer NOT NULL,
    sentences       jsonb NOT NULL,
    clean_start     bigint NOT NULL,
    clean_sentences jsonb NOT NULL,
    vector          bytea NOT NULL
);
CREATE INDEX wenda_passages_doc_id ON wenda_passages (doc_id, chunk_index);

-- Passage ids, unique across every replica.
CREATE SEQUENCE wenda_passage_ids;

-- What the index was built with (model and chunker fingerprint).
CREATE TABLE wenda_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The change log: one row per committed write, numbered without gaps in
-- commit order (writes hold one advisory lock from their first statement to
-- their commit). Replicas apply it to their in-memory index.
CREATE TABLE wenda_changes (
    seq          bigint PRIMARY KEY,
    committed_at timestamptz NOT NULL DEFAULT now(),
    -- Documents put or deleted by the write.
    documents    text[] NOT NULL,
    -- The write dropped every passage first (a rebuild).
    cleared      boolean NOT NULL DEFAULT false
);
