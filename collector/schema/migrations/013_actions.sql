-- 013_actions: action plans, their trail, and the outbox of signed webhook
-- notifications (docs/actions.md).
--
-- Owns: actions and action_events (the trail, modelled on 004's
-- evaluation_reviews), the state changes as SECURITY DEFINER functions
-- bm_action_open / bm_action_set, the group role branchmark_notifier, the
-- outbox (notifications), the webhook endpoints per scope, one delivery row
-- per (notification, endpoint) and the delivery log (webhook_attempts).
--
-- Invariants:
-- - an action changes only through bm_action_open / bm_action_set, which
--   check the caller's scope (HQ: all; regional: its region; branch: its
--   branch) and the allowed transitions, and write one action_events row
--   per change with session_user as the actor, in the same transaction;
-- - open -> in_progress -> done | dropped (open -> done | dropped directly
--   too, in_progress -> open back); done and dropped are final;
-- - a notification is created once per key (UNIQUE), together with its
--   deliveries (one per matching endpoint) in one transaction; a delivery
--   attempt is COMMITTED to webhook_attempts BEFORE the request is sent, so
--   a sender killed at any point retries it (same idempotency key) instead
--   of losing it, and a delivery is 'delivered' only after a 2xx answer.
--
-- Relies on 003 (group roles, access_scopes, bm_scope_branch_ids) and 004
-- (the trail's shape).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'branchmark_notifier') THEN
        CREATE ROLE branchmark_notifier NOLOGIN;
    END IF;
END $$;
-- The notifier computes alerts and follow-ups over the whole chain: it
-- reads what HQ reads (every policy TO branchmark_hq applies to members).
GRANT branchmark_hq TO branchmark_notifier;

---------------------------------------------------------------------------
-- Actions and their trail
---------------------------------------------------------------------------

CREATE TABLE actions (
    id                 bigserial PRIMARY KEY,
    branch_id          int NOT NULL REFERENCES branches(id),
    metric             text NOT NULL CHECK (metric ~ '^[a-z0-9_]{1,32}$'),
    section            text CHECK (section ~ '^[A-Za-z0-9_.-]{1,32}$'),
    contact_point      text CHECK (length(contact_point) BETWEEN 1 AND 64),
    complaint_category text CHECK (length(complaint_category) BETWEEN 1 AND 64),
    source             text NOT NULL DEFAULT 'manual'
                            CHECK (source IN ('alert', 'scorecard', 'competitor_gap', 'manual')),
    source_ref         text NOT NULL DEFAULT '' CHECK (length(source_ref) <= 200),
    what               text NOT NULL CHECK (length(what) BETWEEN 1 AND 2000),
    owner_role         text NOT NULL CHECK (owner_role IN ('branch', 'regional')),
    due_date           date NOT NULL,
    target             text NOT NULL DEFAULT '' CHECK (length(target) <= 200),
    period_kind        text NOT NULL DEFAULT 'month' CHECK (period_kind IN ('week', 'month', 'quarter')),
    status             text NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'in_progress', 'done', 'dropped')),
    opened_by          name NOT NULL,
    opened_at          timestamptz NOT NULL DEFAULT now(),
    closed_at          timestamptz,
    -- The day from which the action is in effect (follow-up splits before
    -- and after at its period); set when done.
    effective_date     date,
    CHECK ((status IN ('done', 'dropped')) = (closed_at IS NOT NULL)),
    CHECK ((status = 'done') = (effective_date IS NOT NULL))
);
CREATE INDEX actions_branch ON actions (branch_id, status);
CREATE INDEX actions_active_due ON actions (due_date) WHERE status IN ('open', 'in_progress');

CREATE TABLE action_events (
    id          bigserial PRIMARY KEY,
    action_id   bigint NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
    old_status  text,                       -- NULL: the opening
    new_status  text NOT NULL,
    actor       name NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    change      text NOT NULL DEFAULT '' CHECK (length(change) <= 2000),  -- fields changed
    comment     text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000)
);
CREATE INDEX action_events_action ON action_events (action_id, id);

-- Actions follow their branch's visibility; the trail follows its action.
ALTER TABLE actions ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON actions TO branchmark_hq, branchmark_reviewer USING (true);
CREATE POLICY scoped_read ON actions FOR SELECT TO branchmark_regional, branchmark_branch
    USING (branch_id IN (SELECT bm_scope_branch_ids(current_user)));
ALTER TABLE action_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON action_events TO branchmark_hq, branchmark_reviewer USING (true);
CREATE POLICY scoped_read ON action_events FOR SELECT TO branchmark_regional, branchmark_branch
    USING (action_id IN (SELECT id FROM actions));
GRANT SELECT ON actions, action_events TO branchmark_hq, branchmark_reviewer,
    branchmark_regional, branchmark_branch;

-- 'hq', 'regional', 'branch' or NULL: the group of the caller that decides
-- what it may do with actions.  (A role in several groups gets the widest.)
CREATE FUNCTION bm_action_caller_kind() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN pg_has_role(session_user, 'branchmark_hq', 'MEMBER') THEN 'hq'
                WHEN pg_has_role(session_user, 'branchmark_regional', 'MEMBER') THEN 'regional'
                WHEN pg_has_role(session_user, 'branchmark_branch', 'MEMBER') THEN 'branch'
           END
$$;

-- Whether the caller's access scope holds branch br (HQ: every branch).
CREATE FUNCTION bm_action_in_scope(br int) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT pg_has_role(session_user, 'branchmark_hq', 'MEMBER')
        OR br IN (SELECT bm_scope_branch_ids(session_user))
$$;

-- Opens an action on the branch with code branch_code.  HQ anywhere, a
-- regional manager in its region; branch roles cannot open actions (they
-- are given them).  Returns the new id.
CREATE FUNCTION bm_action_open(branch_code text, metric_name text, section_code text,
                               contact text, category text, src text, src_ref text,
                               todo text, owner text, due date, target_text text,
                               kind text, note text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    br int;
    who text := bm_action_caller_kind();
    new_id bigint;
BEGIN
    SELECT id INTO br FROM branches WHERE code = branch_code;
    IF br IS NULL OR NOT bm_action_in_scope(br) THEN
        -- Another region's branch is unknown to a scoped caller (as in 003).
        RAISE EXCEPTION 'unknown branch "%"', branch_code USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF who IS NULL OR who NOT IN ('hq', 'regional') THEN
        RAISE EXCEPTION 'permission denied: only HQ or the branch''s regional manager opens actions'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO actions (branch_id, metric, section, contact_point, complaint_category, source,
                         source_ref, what, owner_role, due_date, target, period_kind, opened_by)
    VALUES (br, metric_name, section_code, contact, category, coalesce(src, 'manual'),
            coalesce(src_ref, ''), todo, owner, due, coalesce(target_text, ''),
            coalesce(kind, 'month'), session_user)
    RETURNING id INTO new_id;
    INSERT INTO action_events (action_id, old_status, new_status, actor, comment)
    VALUES (new_id, NULL, 'open', session_user, coalesce(note, ''));
    RETURN new_id;
END $$;

-- Changes an action: its status (NULL: unchanged), due date, target, owner
-- role, and/or adds a comment; one trail row per call.  effective: the day
-- a 'done' action took effect (NULL: today in the chain's time zone; never
-- in the future).  Branch roles may move their branch's actions to
-- in_progress or done and comment; dropping, re-opening and changing the
-- due date, target or owner are for HQ and the regional manager.
CREATE FUNCTION bm_action_set(act bigint, new_status text, note text, due date,
                              target_text text, owner text, effective date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a actions;
    who text := bm_action_caller_kind();
    today date := (now() AT TIME ZONE bm_chain_timezone())::date;
    st text;
    changes text[] := '{}';
BEGIN
    SELECT * INTO a FROM actions WHERE id = act FOR UPDATE;
    IF NOT FOUND OR NOT bm_action_in_scope(a.branch_id) THEN
        RAISE EXCEPTION 'action % does not exist', act USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF who IS NULL THEN
        RAISE EXCEPTION 'permission denied: actions are changed by HQ, regional or branch roles'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    st := coalesce(new_status, a.status);
    IF a.status IN ('done', 'dropped') THEN
        RAISE EXCEPTION 'action % is %; it cannot be changed any more', act, a.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF st NOT IN ('open', 'in_progress', 'done', 'dropped') THEN
        RAISE EXCEPTION 'unknown action status "%" (open, in_progress, done, dropped)', st
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF who = 'branch' AND (st IN ('open', 'dropped') AND st <> a.status
                           OR due IS NOT NULL OR target_text IS NOT NULL OR owner IS NOT NULL) THEN
        RAISE EXCEPTION 'permission denied: a branch may start, finish or comment an action; '
                        'dropping, re-opening, due date, target and owner are for HQ or the regional manager'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF effective IS NOT NULL AND st <> 'done' THEN
        RAISE EXCEPTION 'an effective date is given only when an action is done'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF effective > today THEN
        RAISE EXCEPTION 'effective date % is in the future', effective
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF st = a.status AND due IS NULL AND target_text IS NULL AND owner IS NULL
       AND coalesce(note, '') = '' THEN
        RAISE EXCEPTION 'nothing to change: give a new status, a field or a comment'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF due IS NOT NULL AND due IS DISTINCT FROM a.due_date THEN
        changes := changes || format('due %s -> %s', a.due_date, due);
    END IF;
    IF target_text IS NOT NULL AND target_text IS DISTINCT FROM a.target THEN
        changes := changes || format('target "%s" -> "%s"', a.target, target_text);
    END IF;
    IF owner IS NOT NULL AND owner IS DISTINCT FROM a.owner_role THEN
        changes := changes || format('owner %s -> %s', a.owner_role, owner);
    END IF;
    IF st = 'done' THEN
        changes := changes || format('effective %s', coalesce(effective, today));
    END IF;
    UPDATE actions
       SET status = st,
           due_date = coalesce(due, due_date),
           target = coalesce(target_text, target),
           owner_role = coalesce(owner, owner_role),
           closed_at = CASE WHEN st IN ('done', 'dropped') THEN now() END,
           effective_date = CASE WHEN st = 'done' THEN coalesce(effective, today) END
     WHERE id = act;
    INSERT INTO action_events (action_id, old_status, new_status, actor, change, comment)
    VALUES (act, a.status, st, session_user, array_to_string(changes, '; '), coalesce(note, ''));
    RETURN a.status;
END $$;

REVOKE ALL ON FUNCTION bm_action_caller_kind() FROM PUBLIC;
REVOKE ALL ON FUNCTION bm_action_in_scope(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION bm_action_open(text, text, text, text, text, text, text, text, text, date,
                                      text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION bm_action_set(bigint, text, text, date, text, text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_action_caller_kind(), bm_action_in_scope(int)
    TO branchmark_hq, branchmark_regional, branchmark_branch;
GRANT EXECUTE ON FUNCTION bm_action_open(text, text, text, text, text, text, text, text, text, date,
                                         text, text, text) TO branchmark_hq, branchmark_regional;
GRANT EXECUTE ON FUNCTION bm_action_set(bigint, text, text, date, text, text, date)
    TO branchmark_hq, branchmark_regional, branchmark_branch;

---------------------------------------------------------------------------
-- Webhooks: endpoints per scope, the outbox, deliveries and their log
---------------------------------------------------------------------------

-- region_id NULL: an HQ endpoint (every notification of the chain); else
-- only notifications about branches of that region.
CREATE TABLE webhook_endpoints (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    url         text NOT NULL CHECK (url ~ '^https?://[^[:space:]]+$' AND length(url) <= 1000),
    secret      text NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
    region_id   int REFERENCES regions(id),
    kinds       text[] NOT NULL DEFAULT '{alert,action_overdue,action_followup}'
                     CHECK (kinds <@ '{alert,action_overdue,action_followup}'::text[]
                            AND cardinality(kinds) >= 1),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The outbox.  body is the exact JSON text sent (and signed), fixed at
-- creation, so every retry carries the same bytes and the same signature.
CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('alert', 'action_overdue', 'action_followup')),
    key         text NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 200),
    branch_id   int REFERENCES branches(id),
    body        text NOT NULL CHECK (length(body) <= 65536),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    endpoint_id     int NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    idempotency_key text NOT NULL UNIQUE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_status     int,
    last_error      text NOT NULL DEFAULT '',
    UNIQUE (notification_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

-- The delivery log: one row per attempt, inserted (and committed) before
-- the request leaves; finished_at NULL = the sender died during it.
CREATE TABLE webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt      int NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    http_status  int,
    error        text NOT NULL DEFAULT '' CHECK (length(error) <= 1000),
    UNIQUE (delivery_id, attempt)
);

-- Creates notification `key` (once: NULL when it exists already) with a
-- delivery for every active endpoint whose scope holds the branch (HQ
-- endpoints: all) and that takes this kind.
CREATE FUNCTION bm_notification_add(nkind text, nkey text, branch_code text, nbody text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    br int;
    reg int;
    nid bigint;
BEGIN
    SELECT id, region_id INTO br, reg FROM branches WHERE code = branch_code;
    INSERT INTO notifications (kind, key, branch_id, body) VALUES (nkind, nkey, br, nbody)
        ON CONFLICT (key) DO NOTHING RETURNING id INTO nid;
    IF nid IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (notification_id, endpoint_id, idempotency_key)
    SELECT nid, e.id, format('bm-%s-%s', nid, e.id) FROM webhook_endpoints e
     WHERE e.active AND nkind = ANY (e.kinds) AND (e.region_id IS NULL OR e.region_id = reg);
    RETURN nid;
END $$;
REVOKE ALL ON FUNCTION bm_notification_add(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_notification_add(text, text, text, text) TO branchmark_notifier;

-- Adds (or replaces the URL, secret, scope and kinds of) an endpoint; HQ.
CREATE FUNCTION bm_webhook_set(ename text, eurl text, esecret text, region_code text,
                               ekinds text[]) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    reg int;
    eid int;
BEGIN
    IF region_code IS NOT NULL THEN
        SELECT id INTO reg FROM regions WHERE code = region_code;
        IF reg IS NULL THEN
            RAISE EXCEPTION 'unknown region "%"', region_code USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    INSERT INTO webhook_endpoints (name, url, secret, region_id, kinds)
    VALUES (ename, eurl, esecret, reg,
            coalesce(ekinds, '{alert,action_overdue,action_followup}'))
    ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret,
        region_id = EXCLUDED.region_id, kinds = EXCLUDED.kinds, active = true
    RETURNING id INTO eid;
    RETURN eid;
END $$;
REVOKE ALL ON FUNCTION bm_webhook_set(text, text, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_webhook_set(text, text, text, text, text[]) TO branchmark_hq;

-- HQ reads the configuration but not the secrets; the notifier reads and
-- writes what delivering needs.  (003's blanket grant ran before these
-- tables existed, so scoped roles get nothing here.)
GRANT SELECT (id, name, url, region_id, kinds, active, created_at) ON webhook_endpoints
    TO branchmark_hq;
GRANT SELECT ON notifications, webhook_deliveries, webhook_attempts TO branchmark_hq;
GRANT SELECT ON webhook_endpoints TO branchmark_notifier;
GRANT SELECT, UPDATE ON webhook_deliveries TO branchmark_notifier;
GRANT SELECT, INSERT, UPDATE ON webhook_attempts TO branchmark_notifier;
GRANT USAGE ON SEQUENCE webhook_attempts_id_seq TO branchmark_notifier;
