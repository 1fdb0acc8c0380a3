-- 014_corrections_fix: a newer version wins also when its content is one
-- seen before (fixes 010's classification; found by
-- tests/integration/test_corrections_kinds.sh).
--
-- What was wrong.  010 called a staged record a duplicate whenever its
-- content digest equalled the stored row's or any history row's, whatever
-- its version, and left the stored version as it was.  Two everyday cases
-- then ended with an older version stored:
--   * a record goes back to an earlier content under a newer version (a
--     complaint reopened: resolved_at empty again, as in version 1; a
--     counter corrected back): version 3 = version 1's content arrived after
--     version 2 and was dropped as a "resend" of version 1, so version 2
--     stayed stored for good;
--   * a newer version with the stored content (the store system bumped
--     updated_at for a change that is not exported) left the stored version
--     at the old number, so a version in between with other content that
--     arrived later replaced it: v1, v3 (= v1's content), v2 ended with v2.
--
-- The rule now (store.c classifies; versions NULL count as lowest):
--   same content as the stored row: duplicate; if its version is newer,
--     the stored row takes that version (bm_version_raise below; content
--     and rollups are unchanged);
--   content of a history row and a version not newer than the stored one:
--     duplicate (a resend or re-export of an older version, as before);
--   otherwise a version at least as new as the stored one supersedes it
--     (also when its content is an older version's), and an older one is
--     kept in the history as late.
-- Without versions nothing changes: the same content as any version seen
-- is a duplicate, and the later arrival of new content wins.

-- Raises the stored version of rows of raw table tbl that a duplicate
-- brought with a newer version.  versions is a JSON array of the
-- collector's staging rows (branch_id, source_id, cur_id = the stored row's
-- id, src_version).  Only raises, never lowers, and touches no other column
-- (no rollup trigger fires on UPDATE).  Returns how many rows changed.
-- Fails when tbl is not a raw record table.  SECURITY DEFINER: the
-- collector may not UPDATE raw rows itself (010).
CREATE FUNCTION bm_version_raise(tbl text, versions jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n int;
BEGIN
    IF versions IS NULL OR jsonb_array_length(versions) = 0 THEN
        RETURN 0;
    END IF;
    IF tbl <> 'evaluations'
       AND NOT EXISTS (SELECT 1 FROM bm_partitioned_tables WHERE table_name = tbl) THEN
        RAISE EXCEPTION 'table "%" is not a record table', tbl;
    END IF;
    -- (branch_id, source_id) first: the partitioned tables' unique index
    -- starts with them; id alone would probe every partition.
    EXECUTE format($q$
        UPDATE %I r SET src_version = u.src_version
          FROM jsonb_to_recordset($1) AS u(branch_id int, source_id text, cur_id bigint,
                                           src_version bigint)
         WHERE r.branch_id = u.branch_id AND r.source_id = u.source_id AND r.id = u.cur_id
           AND u.src_version IS NOT NULL
           AND (r.src_version IS NULL OR r.src_version < u.src_version)$q$, tbl)
    USING versions;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION bm_version_raise(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_version_raise(text, jsonb) TO branchmark_collector;
