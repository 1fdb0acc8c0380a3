-- 003_security: enrolled agent keys, group roles with least privilege, and
-- row-level security so that a regional or branch user sees only its part.
--
-- Threat model and operations: docs/security.md.  Summary of what this
-- migration enforces in the database (the collector enforces the rest):
-- - agent_keys is the allow-list of CURVE public keys the collector's ZAP
--   handler accepts; each key belongs to one agent and one branch, and the
--   collector takes the branch of stored data from the key, never from the
--   message;
-- - NOLOGIN group roles: branchmark_collector (ingest only),
--   branchmark_hq (read everything), branchmark_regional and
--   branchmark_branch (read their scope only, through RLS policies),
--   branchmark_reviewer (read everything; the evaluation workflow in 004
--   grants it what it may change).  Login roles are members of exactly one
--   group (`branchmark user add`) and have at most one access_scopes row;
-- - the rollup trigger functions run as their owner (SECURITY DEFINER with
--   a fixed search_path), so the collector needs no privilege on the
--   rollup and score tables at all.
-- Roles are cluster-wide: they are created only when missing, so a second
-- database in the same cluster migrates too.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['branchmark_collector', 'branchmark_hq', 'branchmark_regional',
                             'branchmark_branch', 'branchmark_reviewer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

-- The allow-list.  At most one live (not revoked) key per agent; a revoked
-- row stays as the record of what was revoked and when.
CREATE TABLE agent_keys (
    public_key_z85 text PRIMARY KEY CHECK (public_key_z85 ~ '^[0-9A-Za-z.:+=^!/*?&<>()\[\]{}@%$#-]{40}$'),
    agent_id       text NOT NULL CHECK (agent_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    branch_id      int NOT NULL REFERENCES branches(id),
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE UNIQUE INDEX agent_keys_one_live ON agent_keys (agent_id) WHERE revoked_at IS NULL;

-- Whom a regional or branch login may see: exactly one of region or branch.
-- HQ, reviewer and collector logins have no row (they are not scoped).
CREATE TABLE access_scopes (
    role_name  name PRIMARY KEY,
    region_id  int REFERENCES regions(id),
    branch_id  int REFERENCES branches(id),
    CHECK ((region_id IS NULL) <> (branch_id IS NULL))
);

-- A batch's content digest (SHA-256 of the batch's encoded records), so that
-- a (stream, sequence) reused for different content is told apart from a
-- legitimate resend.  NULL for batches stored before this migration.
ALTER TABLE ingest_batches ADD COLUMN content_sha256 bytea
    CHECK (content_sha256 IS NULL OR length(content_sha256) = 32);

-- The branch ids the given role may see (its access_scopes row).  SECURITY
-- DEFINER: scoped roles cannot read access_scopes themselves.  The caller
-- passes current_user, which in a policy is the querying role.
CREATE FUNCTION bm_scope_branch_ids(who name) RETURNS SETOF int
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT b.id FROM access_scopes s JOIN branches b
        ON b.id = s.branch_id OR b.region_id = s.region_id
     WHERE s.role_name = who
$$;
REVOKE ALL ON FUNCTION bm_scope_branch_ids(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_scope_branch_ids(name)
    TO branchmark_regional, branchmark_branch, branchmark_hq, branchmark_reviewer;

-- Trigger functions write the rollups as their owner.
ALTER FUNCTION bm_rollup_people_counts() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_receipts() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_queue_tickets() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_phone_calls() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_complaints() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_survey_responses() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_customer_changes() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION bm_rollup_evaluation_answers() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION evaluation_answers_check_points() SECURITY DEFINER SET search_path = public, pg_temp;
-- Only triggers call them.
REVOKE ALL ON FUNCTION bm_rollups_rebuild() FROM PUBLIC;
REVOKE ALL ON FUNCTION bm_score_evaluations(bigint[]) FROM PUBLIC;

---------------------------------------------------------------------------
-- Privileges
---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO branchmark_collector, branchmark_hq, branchmark_regional,
    branchmark_branch, branchmark_reviewer;

-- The collector: reads the reference data and the allow-list, writes raw
-- records, the ledger and the agent bindings.  Nothing else.
GRANT SELECT ON chain, branches, competitor_outlets, questionnaires, questionnaire_sections,
    questionnaire_items, agent_keys TO branchmark_collector;
GRANT SELECT, INSERT ON people_counts, receipts, queue_tickets, phone_calls, complaints,
    survey_responses, survey_csi_scores, customer_changes, evaluations, evaluation_answers
    TO branchmark_collector;
GRANT SELECT, INSERT, UPDATE ON ingest_batches, agents TO branchmark_collector;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO branchmark_collector;

-- Readers: everything but the security tables (HQ may list agent keys).
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')
                AND c.relname NOT IN ('access_scopes', 'agent_keys', 'schema_migrations')
                AND c.relname NOT LIKE 'bm_full_%' LOOP
        EXECUTE format('GRANT SELECT ON %I TO branchmark_hq, branchmark_reviewer, '
                       'branchmark_regional, branchmark_branch', t);
    END LOOP;
END $$;
GRANT SELECT ON agent_keys TO branchmark_hq;

---------------------------------------------------------------------------
-- Row-level security
---------------------------------------------------------------------------
-- Tables with a branch: HQ, reviewer and collector see all rows; regional
-- and branch users the rows of their scope.  The owner (the admin who
-- migrates) is not subject to RLS.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['people_counts', 'receipts', 'queue_tickets', 'phone_calls',
            'complaints', 'survey_responses', 'customer_changes', 'evaluations',
            'ingest_batches', 'agents', 'rollup_traffic', 'rollup_sales', 'rollup_queue',
            'rollup_calls', 'rollup_complaints', 'rollup_complaint_causes', 'rollup_surveys',
            'rollup_customers', 'rollup_lost_reasons', 'rollup_hist'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY all_rows ON %I TO branchmark_collector, branchmark_hq, '
                       'branchmark_reviewer USING (true) WITH CHECK (true)', t);
        EXECUTE format('CREATE POLICY scoped_read ON %I FOR SELECT TO branchmark_regional, '
                       'branchmark_branch USING (branch_id IN '
                       '(SELECT bm_scope_branch_ids(current_user)))', t);
    END LOOP;
END $$;

-- Branches: a scoped user knows only its own (another region's branch is
-- "unknown" to it).
ALTER TABLE branches ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON branches TO branchmark_collector, branchmark_hq, branchmark_reviewer
    USING (true);
CREATE POLICY scoped_read ON branches FOR SELECT TO branchmark_regional, branchmark_branch
    USING (id IN (SELECT bm_scope_branch_ids(current_user)));

-- Scores: competitor outlets are visible to all readers (benchmarking
-- against them is the point); branch outlets by scope.
ALTER TABLE evaluation_scores ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_scores ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON evaluation_scores TO branchmark_collector, branchmark_hq,
    branchmark_reviewer USING (true);
CREATE POLICY scoped_read ON evaluation_scores FOR SELECT TO branchmark_regional,
    branchmark_branch USING (outlet_kind = 'competitor'
                             OR outlet_id IN (SELECT bm_scope_branch_ids(current_user)));
CREATE POLICY all_rows ON rollup_scores TO branchmark_collector, branchmark_hq,
    branchmark_reviewer USING (true);
CREATE POLICY scoped_read ON rollup_scores FOR SELECT TO branchmark_regional,
    branchmark_branch USING (outlet_kind = 'competitor'
                             OR outlet_id IN (SELECT bm_scope_branch_ids(current_user)));

-- Children follow their parent's visibility (the subquery is itself under
-- the parent's policy).
ALTER TABLE survey_csi_scores ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON survey_csi_scores TO branchmark_collector, branchmark_hq,
    branchmark_reviewer USING (true) WITH CHECK (true);
CREATE POLICY scoped_read ON survey_csi_scores FOR SELECT TO branchmark_regional,
    branchmark_branch USING (response_id IN (SELECT id FROM survey_responses));
ALTER TABLE evaluation_answers ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON evaluation_answers TO branchmark_collector, branchmark_hq,
    branchmark_reviewer USING (true) WITH CHECK (true);
CREATE POLICY scoped_read ON evaluation_answers FOR SELECT TO branchmark_regional,
    branchmark_branch USING (evaluation_id IN (SELECT id FROM evaluations));
ALTER TABLE evaluation_section_scores ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON evaluation_section_scores TO branchmark_collector, branchmark_hq,
    branchmark_reviewer USING (true);
CREATE POLICY scoped_read ON evaluation_section_scores FOR SELECT TO branchmark_regional,
    branchmark_branch USING (evaluation_id IN (SELECT evaluation_id FROM evaluation_scores));

---------------------------------------------------------------------------
-- Administration (called by `branchmark user ...` as an admin role with
-- CREATEROLE; parameters only, the names are quoted here with %I)
---------------------------------------------------------------------------

-- Creates login role who with the given SCRAM verifier (never a clear
-- password), makes it a member of grp, and records its scope.
CREATE FUNCTION bm_user_add(who name, verifier text, grp text, region_code text,
                            branch_code text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    reg int;
    br int;
BEGIN
    IF grp NOT IN ('branchmark_collector', 'branchmark_hq', 'branchmark_regional',
                   'branchmark_branch', 'branchmark_reviewer') THEN
        RAISE EXCEPTION 'role group "%" is not a branchmark group', grp;
    END IF;
    IF region_code IS NOT NULL THEN
        SELECT id INTO reg FROM regions WHERE code = region_code;
        IF reg IS NULL THEN
            RAISE EXCEPTION 'unknown region "%"', region_code;
        END IF;
    END IF;
    IF branch_code IS NOT NULL THEN
        SELECT id INTO br FROM branches WHERE code = branch_code;
        IF br IS NULL THEN
            RAISE EXCEPTION 'unknown branch "%"', branch_code;
        END IF;
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', who, verifier, grp);
    IF reg IS NOT NULL OR br IS NOT NULL THEN
        INSERT INTO access_scopes (role_name, region_id, branch_id) VALUES (who, reg, br);
    END IF;
END $$;
REVOKE ALL ON FUNCTION bm_user_add(name, text, text, text, text) FROM PUBLIC;

-- Drops a login role that bm_user_add made (a member of a branchmark
-- group); refuses any other role.
CREATE FUNCTION bm_user_remove(who name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                 JOIN pg_roles u ON u.oid = m.member
                    WHERE u.rolname = who AND g.rolname LIKE 'branchmark\_%') THEN
        RAISE EXCEPTION 'role "%" is not a branchmark user', who;
    END IF;
    DELETE FROM access_scopes WHERE role_name = who;
    EXECUTE format('DROP ROLE %I', who);
END $$;
REVOKE ALL ON FUNCTION bm_user_remove(name) FROM PUBLIC;
