-- Memory search and deduplication (issue 11).
--
-- Search terms are made by PostgreSQL itself, in a generated column, so every writer (the API,
-- the memory worker, the MaiBot import) and every existing row gets them without code of its own:
--   * Chinese/Japanese text has no spaces: each run of CJK characters becomes its character
--     bigrams ("喜欢吃火锅" → 喜欢 欢吃 吃火 火锅); a one-character run is kept as that character.
--   * Everything else: lower-cased ASCII letter/digit words, a plural/third-person "s" stripped
--     from words longer than three letters ("cats" → "cat", but not "glass").
-- src/domain/memory/searchTerms.ts is the same function in TypeScript (queries and ranking use
-- it; test/integration/memorySearch.test.ts checks that both agree).
-- Title and tags are searched with the content.
CREATE FUNCTION maihive_memory_terms(body text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT coalesce(array_agg(DISTINCT t), '{}') FROM (
    SELECT CASE WHEN length(r[1]) = 1 THEN r[1] ELSE substr(r[1], i, 2) END AS t
      FROM regexp_matches(lower(body), '[㐀-䶿一-鿿豈-﫿]+', 'g') AS r,
           generate_series(1, greatest(length(r[1]) - 1, 1)) AS i
    UNION ALL
    SELECT CASE WHEN length(w[1]) > 3 AND w[1] ~ '[^s]s$' THEN left(w[1], -1) ELSE w[1] END
      FROM regexp_matches(lower(body), '[a-z0-9]+', 'g') AS w
  ) terms
$fn$;

-- The searched text of a memory as lexemes prefixed with its tenant ("acme/火锅"): every tenant
-- has posting lists of its own in one plain GIN index, so a search reads only its tenant's
-- postings and intersects no tenant key (a GIN led by tenant_id with btree_gin had to walk the
-- whole tenant's postings on every search: 12 ms at 100k memories, see README § Benchmarks).
-- array_to_string is only STABLE in general (element output functions), but for text[] it is
-- immutable: hence this wrapper.
CREATE FUNCTION maihive_memory_vector(tenant text, title text, content text, tags text[]) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT array_to_tsvector(ARRAY(
    SELECT tenant || '/' || t
      FROM unnest(maihive_memory_terms(coalesce(title, '') || ' ' || content || ' ' || array_to_string(tags, ' '))) t))
$fn$;

-- "Says the same": content compared without case, whitespace or punctuation (ASCII and the
-- usual full-width Chinese marks). Storing such a memory again in the same scope strengthens the
-- existing row instead of adding a copy (src/db/repositories/memories.ts).
CREATE FUNCTION maihive_memory_key(body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT md5(regexp_replace(lower(body), '[[:space:][:punct:]，。！？、；：“”‘’（）《》【】…—～·]+', '', 'g'))
$fn$;

ALTER TABLE memory_chest
  ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (maihive_memory_vector(tenant_id, title, content, tags)) STORED,
  ADD COLUMN content_key text GENERATED ALWAYS AS (maihive_memory_key(content)) STORED;

CREATE INDEX memory_chest_search ON memory_chest USING gin (search_vector);

CREATE INDEX memory_chest_by_key ON memory_chest (tenant_id, agent_id, scope, content_key);

-- Expired memories are purged by the tenant (see purgeExpiredMemories).
CREATE INDEX memory_chest_expiry ON memory_chest (tenant_id, expires_at) WHERE expires_at IS NOT NULL;
