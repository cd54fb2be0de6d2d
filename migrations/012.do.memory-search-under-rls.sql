-- Memory search that can use its index under row-level security (issue 11).
--
-- The application role reads memory_chest under RLS. PostgreSQL evaluates a query's own conditions
-- after the policies' unless they are LEAKPROOF (they could otherwise leak rows the policy hides,
-- e.g. through an error), and only a condition it may evaluate first can be an index condition.
-- The built-in tsvector match `@@` (ts_match_vq) is not marked leakproof, so under RLS the GIN
-- index of migration 008 was never used: every search scanned the tenant's memories (EXPLAIN
-- ANALYZE at 100k memories in the tenant, 1M in all: 100-300 ms; see README § Benchmarks).
--
-- `@@~` is the same match (the same C function, ts_match_vq) declared LEAKPROOF, with a GIN
-- operator class of its own built from tsvector_ops' support functions, so the index answers it
-- under RLS; the policies still filter every row the index returns (a search for another tenant's
-- lexemes finds nothing: lexemes carry their tenant, and the rows are not visible anyway).
-- ts_match_vq raises no error that depends on the row it looks at, which is what leakproof means.
--
-- Declaring a function LEAKPROOF and creating an operator class need a superuser. When the
-- migration runs as another role, `@@~` is created without LEAKPROOF and the index is left as it
-- was: searches stay correct and isolated but scan the tenant's memories (README § Memory).
DO $migration$
DECLARE
  super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
  IF super THEN
    CREATE FUNCTION maihive_ts_match(tsvector, tsquery) RETURNS boolean
      LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'ts_match_vq';
  ELSE
    CREATE FUNCTION maihive_ts_match(tsvector, tsquery) RETURNS boolean
      LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE AS 'ts_match_vq';
    RAISE WARNING 'migration 012 ran as % (not a superuser): memory search cannot use its GIN index under row-level security; re-run it as a superuser for indexed search', current_user;
  END IF;

  CREATE OPERATOR @@~ (
    FUNCTION = maihive_ts_match, LEFTARG = tsvector, RIGHTARG = tsquery,
    RESTRICT = tsmatchsel, JOIN = tsmatchjoinsel
  );

  IF super THEN
    CREATE OPERATOR CLASS maihive_tsvector_ops FOR TYPE tsvector USING gin AS
      OPERATOR 1 @@~ (tsvector, tsquery),
      FUNCTION 1 gin_cmp_tslexeme(text, text),
      FUNCTION 2 gin_extract_tsvector(tsvector, internal, internal),
      FUNCTION 3 gin_extract_tsquery(tsvector, internal, int2, internal, internal, internal, internal),
      FUNCTION 4 gin_tsquery_consistent(internal, int2, tsvector, int4, internal, internal, internal, internal),
      FUNCTION 5 gin_cmp_prefix(text, text, int2, internal),
      FUNCTION 6 gin_tsquery_triconsistent(internal, int2, tsvector, int4, internal, internal, internal),
      STORAGE text;
    DROP INDEX memory_chest_search;
    -- A small pending list: every search reads the whole list of entries not yet merged into the
    -- index (default 4 MB, thousands of rows' lexemes after a burst of stores); 256 kB keeps that
    -- read short while stores still write in batches.
    CREATE INDEX memory_chest_search ON memory_chest
      USING gin (search_vector maihive_tsvector_ops) WITH (gin_pending_list_limit = 256);
  END IF;
END
$migration$;

-- Leave room on every page for a row's next version: counting an access rewrites the row, and
-- with room on its page that is a HOT update (no new index entries, GIN's included, since no
-- indexed value changes). Applies to pages written from now on.
ALTER TABLE memory_chest SET (fillfactor = 85);

-- A search plans each term's probe with the term itself: with the statistics of 10,000 lexemes
-- (default 1,000) the planner tells a rare term from a common one and reads a rare term's
-- postings from the GIN index alone instead of ANDing them with a scan of the tenant's btree.
ALTER TABLE memory_chest ALTER COLUMN search_vector SET STATISTICS 1000;
