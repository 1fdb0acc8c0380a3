-- 007_scope: lets the query tool tell a person whose access scope is limited
-- (a regional manager, a branch) that "chain" figures are computed over the
-- branches they may see.  Row-level security filters the rollups before any
-- total is formed, so for such a person the chain line equals their scope;
-- the reports say so instead of presenting it as the whole chain.
--
-- Owns: bm_scope_limited().

-- True when the given role has an access_scopes row.  SECURITY DEFINER
-- because scoped roles cannot read access_scopes; the caller passes
-- current_user (as for bm_scope_branch_ids in 003).
CREATE FUNCTION bm_scope_limited(who name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM access_scopes WHERE role_name = who)
$$;
REVOKE ALL ON FUNCTION bm_scope_limited(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_scope_limited(name)
    TO branchmark_regional, branchmark_branch, branchmark_hq, branchmark_reviewer;
