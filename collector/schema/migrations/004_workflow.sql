-- 004_workflow: the evaluation workflow (docs/workflow.md).
--
-- Owns: review states of evaluations and their log, the answer-change log,
-- appeals, programme settings (thresholds, appeal window, retention, staff
-- consent), outlet opening hours, visit plans, evidence rows, the fraud and
-- quality flags, the retention job and the grants that keep shopper identity
-- and visit plans away from branch and regional roles.
--
-- Invariant: rollup_scores holds exactly the contributions of APPROVED
-- evaluations.  bm_score_rollup_rows (002) is redefined to see approved
-- evaluations only, so 002's re-scoring (answers inserted, corrections)
-- subtracts and adds only approved contributions; a status change into or
-- out of 'approved' adds or subtracts the evaluation's whole contribution in
-- the same transaction (trigger below); bm_full_rollup_scores filters the
-- same way, so bm_rollups_check() and bm_rollups_rebuild() stay exact.
--
-- Evaluations stored before this migration counted in every score: they are
-- marked approved.  New ones arrive 'received' and count once approved.
--
-- Every action that changes state is a SECURITY DEFINER function whose
-- EXECUTE is granted only to the roles allowed to do it (reviewer/hq, branch,
-- hq); the branchmark tool calls them as the caller's own role.

-- Relies on 003_security: the group roles, access_scopes and row-level
-- security on evaluations and their children.

---------------------------------------------------------------------------
-- Programme settings: one row per questionnaire code, '*' = the defaults.
-- A questionnaire's row, when present, replaces the defaults as a whole.
---------------------------------------------------------------------------

CREATE TABLE programme_settings (
    questionnaire_code  text PRIMARY KEY CHECK (questionnaire_code = '*'
                              OR questionnaire_code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    appeal_days         int NOT NULL DEFAULT 14 CHECK (appeal_days BETWEEN 0 AND 365),
    high_total_percent  numeric NOT NULL DEFAULT 95 CHECK (high_total_percent BETWEEN 0 AND 100),
    outlier_points      numeric NOT NULL DEFAULT 25 CHECK (outlier_points > 0),
    outlier_min_others  int NOT NULL DEFAULT 3 CHECK (outlier_min_others >= 1),
    lockout_days        int NOT NULL DEFAULT 30 CHECK (lockout_days BETWEEN 0 AND 3650),
    late_report_hours   int NOT NULL DEFAULT 48 CHECK (late_report_hours BETWEEN 1 AND 8760),
    retention_days      int NOT NULL DEFAULT 365 CHECK (retention_days BETWEEN 1 AND 36500),
    staff_consent       boolean NOT NULL DEFAULT false
);
INSERT INTO programme_settings (questionnaire_code) VALUES ('*');

-- The settings in force for a questionnaire (by id).
CREATE FUNCTION bm_settings(qid int) RETURNS programme_settings
LANGUAGE sql STABLE AS $$
    SELECT s.* FROM programme_settings s
     WHERE s.questionnaire_code = (SELECT code FROM questionnaires WHERE id = qid)
        OR s.questionnaire_code = '*'
     ORDER BY s.questionnaire_code = '*' LIMIT 1
$$;

---------------------------------------------------------------------------
-- Review state, staff reference
---------------------------------------------------------------------------

-- Existing rows get 'approved' (they already count), new ones 'received'.
ALTER TABLE evaluations
    ADD COLUMN review_status text NOT NULL DEFAULT 'approved'
        CHECK (review_status IN ('received', 'approved', 'on_hold', 'rejected', 'voided')),
    ADD COLUMN staff_ref text CHECK (length(staff_ref) BETWEEN 1 AND 64);
ALTER TABLE evaluations ALTER COLUMN review_status SET DEFAULT 'received';
CREATE INDEX evaluations_review_status ON evaluations (review_status)
    WHERE review_status IN ('received', 'on_hold');

-- Employee-identifying data only with recorded consent; never for a
-- competitor's outlet (competitive visits store no personal data).
CREATE FUNCTION bm_evaluations_check_staff() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.staff_ref IS NOT NULL THEN
        IF NEW.competitor_outlet_id IS NOT NULL THEN
            RAISE EXCEPTION 'evaluation %: a competitor outlet''s evaluation cannot carry staff_ref',
                NEW.source_id USING ERRCODE = 'check_violation';
        END IF;
        IF NOT (bm_settings(NEW.questionnaire_id)).staff_consent THEN
            RAISE EXCEPTION 'evaluation %: staff_ref needs recorded staff consent for its programme',
                NEW.source_id USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER evaluations_staff BEFORE INSERT OR UPDATE OF staff_ref ON evaluations
    FOR EACH ROW EXECUTE FUNCTION bm_evaluations_check_staff();

CREATE TABLE evaluation_reviews (
    id            bigserial PRIMARY KEY,
    evaluation_id bigint NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    old_status    text NOT NULL,
    new_status    text NOT NULL,
    reviewer      name NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    comment       text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000)
);
CREATE INDEX evaluation_reviews_evaluation ON evaluation_reviews (evaluation_id, at);

-- Every change of an answer, with the value it replaced.  The first row of
-- an item holds the shopper's original answer.
CREATE TABLE evaluation_answer_changes (
    id            bigserial PRIMARY KEY,
    evaluation_id bigint NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    item_code     text NOT NULL,
    old_points    double precision,       -- NULL: was not applicable
    new_points    double precision,       -- NULL: now not applicable
    changed_by    name NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    appeal_id     bigint                  -- set when an upheld appeal made it
);
CREATE INDEX evaluation_answer_changes_evaluation ON evaluation_answer_changes (evaluation_id);

-- Raw evidence of a visit (photo, recording, receipt scan): a reference and
-- a note; deleted by the retention job.
CREATE TABLE evaluation_evidence (
    id            bigserial PRIMARY KEY,
    evaluation_id bigint NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('photo', 'audio', 'receipt', 'note', 'other')),
    uri           text NOT NULL DEFAULT '' CHECK (length(uri) <= 2000),
    note          text NOT NULL DEFAULT '' CHECK (length(note) <= 4000),
    added_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluation_evidence_evaluation ON evaluation_evidence (evaluation_id);

---------------------------------------------------------------------------
-- Only approved evaluations count
---------------------------------------------------------------------------

-- The 002 definition, for any status: the contribution an evaluation has
-- (or would have) once approved.
CREATE FUNCTION bm_score_rollup_rows_any(ids bigint[], tz text)
RETURNS TABLE (outlet_kind text, outlet_id int, period_kind text, period_start date,
               channel text, segment text, section text,
               n bigint, score_sum numeric, score_sumsq numeric)
LANGUAGE sql STABLE AS $$
    SELECT e.outlet_kind, e.outlet_id, p.period_kind, p.period_start, e.channel,
           e.segment, x.section, count(*), sum(x.score), sum(x.score ^ 2)
      FROM evaluation_scores e
      CROSS JOIN LATERAL bm_periods(e.visited_at, tz) p
      CROSS JOIN LATERAL (
            SELECT '' AS section, e.overall AS score WHERE e.overall IS NOT NULL
            UNION ALL
            SELECT ss.section_code, ss.score FROM evaluation_section_scores ss
             WHERE ss.evaluation_id = e.evaluation_id AND ss.score IS NOT NULL) x
     WHERE e.evaluation_id = ANY (ids)
     GROUP BY 1, 2, 3, 4, 5, 6, 7
$$;

CREATE OR REPLACE FUNCTION bm_score_rollup_rows(ids bigint[], tz text)
RETURNS TABLE (outlet_kind text, outlet_id int, period_kind text, period_start date,
               channel text, segment text, section text,
               n bigint, score_sum numeric, score_sumsq numeric)
LANGUAGE sql STABLE AS $$
    SELECT * FROM bm_score_rollup_rows_any(
        ARRAY(SELECT id FROM evaluations
               WHERE id = ANY (ids) AND review_status = 'approved' ORDER BY id), tz)
$$;

CREATE OR REPLACE VIEW bm_full_rollup_scores (outlet_kind, outlet_id, period_kind, period_start, channel, segment, section, n, score_sum, score_sumsq) AS
WITH ids AS (SELECT array_agg(id) AS a FROM evaluations WHERE review_status = 'approved'),
     ov AS (SELECT o.* FROM ids, bm_overall_scores(ids.a) o),
     se AS (SELECT s.* FROM ids, bm_section_scores(ids.a) s),
     x AS (SELECT ov.evaluation_id, '' AS section, ov.overall AS score FROM ov
            WHERE ov.overall IS NOT NULL
           UNION ALL
           SELECT se.evaluation_id, se.section_code, se.score FROM se
            WHERE se.score IS NOT NULL)
SELECT CASE WHEN e.outlet_branch_id IS NOT NULL THEN 'branch' ELSE 'competitor' END,
       coalesce(e.outlet_branch_id, e.competitor_outlet_id), p.period_kind, p.period_start,
       e.channel, e.shopper_segment, x.section, count(*), sum(x.score), sum(x.score ^ 2)
  FROM x JOIN evaluations e ON e.id = x.evaluation_id,
       bm_periods(e.visited_at, bm_chain_timezone()) p
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- Adds (sign > 0) or takes out (sign < 0) the whole contribution of the
-- given evaluations, whatever their status.
CREATE FUNCTION bm_score_apply(ids bigint[], sign int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tz text := bm_chain_timezone();
BEGIN
    IF sign > 0 THEN
        INSERT INTO rollup_scores AS r
        SELECT * FROM bm_score_rollup_rows_any(ids, tz)
         ORDER BY 1, 2, 3, 4, 5, 6, 7
            ON CONFLICT (outlet_kind, outlet_id, period_kind, period_start, channel, segment, section)
            DO UPDATE SET n = r.n + EXCLUDED.n, score_sum = r.score_sum + EXCLUDED.score_sum,
                          score_sumsq = r.score_sumsq + EXCLUDED.score_sumsq;
    ELSE
        UPDATE rollup_scores r
           SET n = r.n - o.n, score_sum = r.score_sum - o.score_sum,
               score_sumsq = r.score_sumsq - o.score_sumsq
          FROM bm_score_rollup_rows_any(ids, tz) o
         WHERE r.outlet_kind = o.outlet_kind AND r.outlet_id = o.outlet_id
           AND r.period_kind = o.period_kind AND r.period_start = o.period_start
           AND r.channel = o.channel AND r.segment = o.segment AND r.section = o.section;
        DELETE FROM rollup_scores WHERE n = 0;
    END IF;
END $$;
REVOKE EXECUTE ON FUNCTION bm_score_apply(bigint[], int) FROM PUBLIC;

CREATE FUNCTION bm_evaluations_status_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF (OLD.review_status = 'approved') AND NOT (NEW.review_status = 'approved') THEN
        PERFORM bm_score_apply(ARRAY[NEW.id], -1);
    ELSIF NOT (OLD.review_status = 'approved') AND (NEW.review_status = 'approved') THEN
        PERFORM bm_score_apply(ARRAY[NEW.id], 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER evaluations_status AFTER UPDATE OF review_status ON evaluations
    FOR EACH ROW WHEN (OLD.review_status IS DISTINCT FROM NEW.review_status)
    EXECUTE FUNCTION bm_evaluations_status_changed();

-- A changed answer re-scores its evaluation (002's re-scoring takes the old
-- contribution out and adds the new one if approved).
CREATE FUNCTION bm_evaluation_answers_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM bm_score_evaluations(ARRAY[NEW.evaluation_id]);
    RETURN NULL;
END $$;

CREATE TRIGGER evaluation_answers_rescore AFTER UPDATE OF points ON evaluation_answers
    FOR EACH ROW WHEN (OLD.points IS DISTINCT FROM NEW.points)
    EXECUTE FUNCTION bm_evaluation_answers_changed();

---------------------------------------------------------------------------
-- Reference data for the flags; visit plans
---------------------------------------------------------------------------

-- Opening hours per ISO weekday (1 = Monday) in the chain's time zone.  An
-- outlet without any row has no known hours (no flag); a weekday without a
-- row is a closed day.  closes <= opens is not allowed (no overnight hours).
CREATE TABLE outlet_opening_hours (
    outlet_kind text NOT NULL CHECK (outlet_kind IN ('branch', 'competitor')),
    outlet_id   int NOT NULL,
    weekday     smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens       time NOT NULL,
    closes      time NOT NULL,
    CHECK (closes > opens),
    PRIMARY KEY (outlet_kind, outlet_id, weekday, opens)
);

-- Planned visits (the schedule staff must not know).
CREATE TABLE visit_plans (
    id           bigserial PRIMARY KEY,
    outlet_kind  text NOT NULL CHECK (outlet_kind IN ('branch', 'competitor')),
    outlet_id    int NOT NULL,
    planned_on   date NOT NULL,
    channel      text NOT NULL DEFAULT 'visit' CHECK (channel IN ('visit', 'call', 'online')),
    shopper_ref  text NOT NULL CHECK (length(shopper_ref) BETWEEN 1 AND 64),
    created_at   timestamptz NOT NULL DEFAULT now()
);

---------------------------------------------------------------------------
-- Fraud and quality flags, computed when read (so they always reflect the
-- current settings, hours and other evaluations)
---------------------------------------------------------------------------

CREATE FUNCTION bm_evaluation_flags(ids bigint[])
RETURNS TABLE (evaluation_id bigint, flag text, reason text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH e AS (
        SELECT v.id, v.shopper_ref, v.channel, v.visited_at, v.submitted_at, v.questionnaire_id,
               CASE WHEN v.outlet_branch_id IS NOT NULL THEN 'branch' ELSE 'competitor' END AS ok,
               coalesce(v.outlet_branch_id, v.competitor_outlet_id) AS oid,
               s.overall, st.*
          FROM evaluations v LEFT JOIN evaluation_scores s ON s.evaluation_id = v.id
         CROSS JOIN LATERAL bm_settings(v.questionnaire_id) st
         WHERE v.id = ANY (ids))
    SELECT e.id, 'high_total',
           format('total %s%% is at or above %s%%', round(e.overall, 1), e.high_total_percent)
      FROM e WHERE e.overall >= e.high_total_percent
    UNION ALL
    SELECT e.id, 'outlier',
           format('total %s%% is %s points from the mean %s%% of %s other shoppers at this outlet in %s',
                  round(e.overall, 1), round(abs(e.overall - o.mean), 1), round(o.mean, 1), o.n,
                  to_char(e.visited_at AT TIME ZONE bm_chain_timezone(), 'YYYY-MM'))
      FROM e CROSS JOIN LATERAL (
            SELECT avg(s2.overall) AS mean, count(*) AS n
              FROM evaluations v2 JOIN evaluation_scores s2 ON s2.evaluation_id = v2.id
             WHERE s2.outlet_kind = e.ok AND s2.outlet_id = e.oid AND v2.id <> e.id
               AND v2.shopper_ref <> e.shopper_ref
               AND v2.review_status NOT IN ('rejected', 'voided')
               AND s2.overall IS NOT NULL
               AND date_trunc('month', v2.visited_at AT TIME ZONE bm_chain_timezone())
                 = date_trunc('month', e.visited_at AT TIME ZONE bm_chain_timezone())) o
     WHERE e.overall IS NOT NULL AND o.n >= e.outlier_min_others
       AND abs(e.overall - o.mean) >= e.outlier_points
    UNION ALL
    SELECT e.id, 'outside_hours',
           format('visit at %s local time (%s) is outside the opening hours',
                  to_char(e.visited_at AT TIME ZONE bm_chain_timezone(), 'HH24:MI'),
                  trim(to_char(e.visited_at AT TIME ZONE bm_chain_timezone(), 'Day')))
      FROM e
     WHERE e.channel = 'visit'
       AND EXISTS (SELECT 1 FROM outlet_opening_hours h
                    WHERE h.outlet_kind = e.ok AND h.outlet_id = e.oid)
       AND NOT EXISTS (
            SELECT 1 FROM outlet_opening_hours h
             WHERE h.outlet_kind = e.ok AND h.outlet_id = e.oid
               AND h.weekday = extract(isodow FROM e.visited_at AT TIME ZONE bm_chain_timezone())
               AND (e.visited_at AT TIME ZONE bm_chain_timezone())::time >= h.opens
               AND (e.visited_at AT TIME ZONE bm_chain_timezone())::time < h.closes)
    UNION ALL
    SELECT e.id, 'lockout',
           format('same shopper visited this outlet %s days before (lock-out %s days)',
                  round((extract(epoch FROM e.visited_at - p.prev) / 86400)::numeric, 1),
                  e.lockout_days)
      FROM e CROSS JOIN LATERAL (
            SELECT max(v2.visited_at) AS prev FROM evaluations v2
             WHERE v2.id <> e.id AND v2.shopper_ref = e.shopper_ref
               AND coalesce(v2.outlet_branch_id, v2.competitor_outlet_id) = e.oid
               AND (v2.outlet_branch_id IS NOT NULL) = (e.ok = 'branch')
               AND v2.visited_at <= e.visited_at
               AND v2.visited_at > e.visited_at - make_interval(days => e.lockout_days)) p
     WHERE e.shopper_ref <> '' AND p.prev IS NOT NULL
    UNION ALL
    SELECT e.id, 'late_report',
           format('report filed %s h after the visit (limit %s h)',
                  round((extract(epoch FROM e.submitted_at - e.visited_at) / 3600)::numeric, 1),
                  e.late_report_hours)
      FROM e
     WHERE e.submitted_at > e.visited_at + make_interval(hours => e.late_report_hours)
$$;

---------------------------------------------------------------------------
-- Review actions
---------------------------------------------------------------------------

-- Sets the review status of one evaluation (approved, on_hold, rejected)
-- and logs it.  Only from received or on_hold: an approved or rejected
-- evaluation changes only through an appeal.
CREATE FUNCTION bm_review_set(eval bigint, status text, note text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cur text;
BEGIN
    IF status NOT IN ('approved', 'on_hold', 'rejected') THEN
        RAISE EXCEPTION 'unknown review status "%" (approved, on_hold, rejected)', status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT review_status INTO cur FROM evaluations WHERE id = eval FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'evaluation % does not exist', eval USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cur NOT IN ('received', 'on_hold') THEN
        RAISE EXCEPTION 'evaluation % is %; only received or on_hold evaluations can be reviewed (changes after approval go through an appeal)',
            eval, cur USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE evaluations SET review_status = status WHERE id = eval;
    INSERT INTO evaluation_reviews (evaluation_id, old_status, new_status, reviewer, comment)
    VALUES (eval, cur, status, session_user, coalesce(note, ''));
    RETURN cur;
END $$;

-- Approves every received evaluation that has no flag.  Returns how many.
CREATE FUNCTION bm_review_approve_unflagged(note text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ids bigint[];
    flagged bigint[];
    i bigint;
BEGIN
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO ids FROM evaluations
     WHERE review_status = 'received';
    flagged := ARRAY(SELECT DISTINCT f.evaluation_id FROM bm_evaluation_flags(ids) f);
    ids := ARRAY(SELECT x FROM unnest(ids) x WHERE x <> ALL (flagged) ORDER BY x);
    FOREACH i IN ARRAY ids LOOP
        PERFORM bm_review_set(i, 'approved', note);
    END LOOP;
    RETURN cardinality(ids);
END $$;

-- Changes one answer (points, or NULL = not applicable), logging the value
-- it replaces; the evaluation is re-scored by the trigger above.
CREATE FUNCTION bm_review_correct(eval bigint, item text, new_points double precision,
                                  why text, appeal bigint DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    st text;
    qid int;
    old_p double precision;
    had boolean;
BEGIN
    IF coalesce(length(why), 0) = 0 THEN
        RAISE EXCEPTION 'a correction needs a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT review_status, questionnaire_id INTO st, qid FROM evaluations WHERE id = eval FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'evaluation % does not exist', eval USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF st IN ('rejected', 'voided') THEN
        RAISE EXCEPTION 'evaluation % is %; it cannot be corrected', eval, st
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM questionnaire_items WHERE questionnaire_id = qid AND code = item) THEN
        RAISE EXCEPTION 'evaluation %: item "%" is not in its questionnaire', eval, item
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT points, true INTO old_p, had FROM evaluation_answers
     WHERE evaluation_id = eval AND item_code = item FOR UPDATE;
    IF had THEN
        IF old_p IS NOT DISTINCT FROM new_points THEN
            RAISE EXCEPTION 'evaluation %: item % already has this answer', eval, item
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE evaluation_answers SET points = new_points
         WHERE evaluation_id = eval AND item_code = item;
    ELSE
        -- An item the shopper left out counted as not applicable.
        INSERT INTO evaluation_answers (evaluation_id, questionnaire_id, item_code, points)
        VALUES (eval, qid, item, new_points);
    END IF;
    INSERT INTO evaluation_answer_changes (evaluation_id, item_code, old_points, new_points,
                                           changed_by, reason, appeal_id)
    VALUES (eval, item, old_p, new_points, session_user, why, appeal);
END $$;

---------------------------------------------------------------------------
-- Appeals
---------------------------------------------------------------------------

CREATE TABLE appeals (
    id             bigserial PRIMARY KEY,
    evaluation_id  bigint NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    items          text[] NOT NULL CHECK (cardinality(items) BETWEEN 1 AND 100),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 4000),
    filed_by       name NOT NULL,
    filed_at       timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'upheld', 'dismissed')),
    outcome        text CHECK (outcome IN ('corrected', 'voided')),
    answered_by    name,
    answered_at    timestamptz,
    answer_comment text NOT NULL DEFAULT '' CHECK (length(answer_comment) <= 4000),
    CHECK ((status = 'open') = (answered_at IS NULL)),
    CHECK ((status = 'upheld') = (outcome IS NOT NULL))
);
CREATE UNIQUE INDEX appeals_one_open ON appeals (evaluation_id) WHERE status = 'open';

-- When the evaluation was (last) approved.
CREATE FUNCTION bm_approved_at(eval bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT max(at) FROM evaluation_reviews WHERE evaluation_id = eval AND new_status = 'approved'
$$;

-- Files an appeal on an approved evaluation of a branch in the caller's
-- scope (access_scopes), within the programme's appeal window.
CREATE FUNCTION bm_appeal_file(eval bigint, appeal_items text[], why text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ev evaluations;
    approved timestamptz;
    days int;
    bad text;
    new_id bigint;
BEGIN
    SELECT * INTO ev FROM evaluations WHERE id = eval FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'evaluation % does not exist', eval USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ev.outlet_branch_id IS NULL THEN
        RAISE EXCEPTION 'evaluation % is of a competitor outlet; it cannot be appealed', eval
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_has_role(session_user, 'branchmark_hq', 'MEMBER')
       AND NOT EXISTS (SELECT 1 FROM access_scopes a JOIN pg_roles r ON r.rolname = a.role_name
                        WHERE a.branch_id = ev.outlet_branch_id
                          AND pg_has_role(session_user, r.oid, 'MEMBER')) THEN
        RAISE EXCEPTION 'evaluation % is not of a branch in your scope', eval
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF ev.review_status <> 'approved' THEN
        RAISE EXCEPTION 'evaluation % is %; only approved evaluations can be appealed',
            eval, ev.review_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x INTO bad FROM unnest(appeal_items) x
     WHERE NOT EXISTS (SELECT 1 FROM questionnaire_items i
                        WHERE i.questionnaire_id = ev.questionnaire_id AND i.code = x) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'evaluation %: item "%" is not in its questionnaire', eval, bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    approved := coalesce(bm_approved_at(eval), ev.received_at);
    days := (bm_settings(ev.questionnaire_id)).appeal_days;
    IF approved IS NOT NULL AND now() > approved + make_interval(days => days) THEN
        RAISE EXCEPTION 'appeal window of % days closed on %', days,
            to_char((approved + make_interval(days => days)) AT TIME ZONE bm_chain_timezone(),
                    'YYYY-MM-DD')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM appeals WHERE evaluation_id = eval AND status = 'open') THEN
        RAISE EXCEPTION 'evaluation % already has an open appeal', eval
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO appeals (evaluation_id, items, reason, filed_by)
    VALUES (eval, appeal_items, why, session_user) RETURNING id INTO new_id;
    RETURN new_id;
END $$;

-- Answers an open appeal.  Upheld: either corrections ("ITEM=POINTS" or
-- "ITEM=na") applied to the evaluation, or the evaluation is voided (it
-- stops counting).  Dismissed: nothing changes but the appeal.
CREATE FUNCTION bm_appeal_answer(appeal bigint, uphold boolean, do_void boolean,
                                 corrections text[], note text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ap appeals;
    c text;
    item text;
    val text;
    pts double precision;
    st text;
BEGIN
    SELECT * INTO ap FROM appeals WHERE id = appeal FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'appeal % does not exist', appeal USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ap.status <> 'open' THEN
        RAISE EXCEPTION 'appeal % was already answered (%)', appeal, ap.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(length(note), 0) = 0 THEN
        RAISE EXCEPTION 'an answer to an appeal needs a comment' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF uphold AND do_void = (coalesce(cardinality(corrections), 0) > 0) THEN
        RAISE EXCEPTION 'an upheld appeal needs either corrections or --void'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT uphold AND (do_void OR coalesce(cardinality(corrections), 0) > 0) THEN
        RAISE EXCEPTION 'a dismissed appeal changes nothing: no corrections, no --void'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF uphold AND do_void THEN
        SELECT review_status INTO st FROM evaluations WHERE id = ap.evaluation_id FOR UPDATE;
        UPDATE evaluations SET review_status = 'voided' WHERE id = ap.evaluation_id;
        INSERT INTO evaluation_reviews (evaluation_id, old_status, new_status, reviewer, comment)
        VALUES (ap.evaluation_id, st, 'voided', session_user,
                format('appeal %s upheld: %s', appeal, note));
    ELSIF uphold THEN
        FOREACH c IN ARRAY corrections LOOP
            item := split_part(c, '=', 1);
            val := split_part(c, '=', 2);
            IF item = '' OR val = '' OR position('=' IN c) = 0 THEN
                RAISE EXCEPTION 'correction "%" is not ITEM=POINTS or ITEM=na', c
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF lower(val) = 'na' THEN
                pts := NULL;
            ELSIF val ~ '^[0-9]+(\.[0-9]+)?$' THEN
                pts := val::double precision;
            ELSE
                RAISE EXCEPTION 'correction "%": "%" is not a number of points or na', c, val
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            PERFORM bm_review_correct(ap.evaluation_id, item, pts,
                                      format('appeal %s upheld: %s', appeal, note), appeal);
        END LOOP;
    END IF;
    UPDATE appeals
       SET status = CASE WHEN uphold THEN 'upheld' ELSE 'dismissed' END,
           outcome = CASE WHEN NOT uphold THEN NULL WHEN do_void THEN 'voided' ELSE 'corrected' END,
           answered_by = session_user, answered_at = now(), answer_comment = note
     WHERE id = appeal;
END $$;

---------------------------------------------------------------------------
-- Retention: open text and evidence older than the programme's period go;
-- scores, answers' points and the logs' figures stay.
---------------------------------------------------------------------------

CREATE FUNCTION bm_retention_run()
RETURNS TABLE (what text, n_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n bigint;
    global_days int := (SELECT retention_days FROM programme_settings WHERE questionnaire_code = '*');
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS bm_expired (id bigint PRIMARY KEY) ON COMMIT DROP;
    DELETE FROM bm_expired;
    INSERT INTO bm_expired
    SELECT e.id FROM evaluations e
     WHERE e.visited_at < now() - make_interval(days => (bm_settings(e.questionnaire_id)).retention_days);

    what := 'evaluation_answers.comment';
    UPDATE evaluation_answers a SET comment = ''
      FROM bm_expired x WHERE a.evaluation_id = x.id AND a.comment <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    n_rows := n;
    RETURN NEXT;

    what := 'evaluation_evidence';
    DELETE FROM evaluation_evidence v USING bm_expired x WHERE v.evaluation_id = x.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    n_rows := n;
    RETURN NEXT;

    what := 'evaluations.staff_ref';
    UPDATE evaluations e SET staff_ref = NULL
      FROM bm_expired x WHERE e.id = x.id AND e.staff_ref IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    n_rows := n;
    RETURN NEXT;

    what := 'survey_responses.why';
    UPDATE survey_responses SET why = ''
     WHERE why <> '' AND responded_at < now() - make_interval(days => global_days);
    GET DIAGNOSTICS n = ROW_COUNT;
    n_rows := n;
    RETURN NEXT;

    what := 'visit_plans';
    DELETE FROM visit_plans WHERE planned_on < (now() - make_interval(days => global_days))::date;
    GET DIAGNOSTICS n = ROW_COUNT;
    n_rows := n;
    RETURN NEXT;
END $$;

---------------------------------------------------------------------------
-- Grants.  Branch and regional roles never read shopper identity, staff
-- references or visit plans; reviewers and HQ review; HQ answers appeals.
---------------------------------------------------------------------------

REVOKE SELECT ON evaluations FROM branchmark_branch, branchmark_regional;
GRANT SELECT (id, branch_id, source_id, questionnaire_id, channel, scenario, shopper_segment,
              outlet_branch_id, competitor_outlet_id, visited_at, submitted_at, received_at,
              review_status)
    ON evaluations TO branchmark_branch, branchmark_regional;
REVOKE ALL ON visit_plans FROM branchmark_branch, branchmark_regional;
REVOKE ALL ON evaluation_evidence FROM branchmark_branch, branchmark_regional;
GRANT SELECT ON evaluations, evaluation_answers, evaluation_reviews, evaluation_answer_changes,
                evaluation_evidence, appeals, programme_settings, outlet_opening_hours, visit_plans
    TO branchmark_hq, branchmark_reviewer;
GRANT SELECT ON evaluation_reviews, evaluation_answer_changes, appeals, programme_settings,
                outlet_opening_hours
    TO branchmark_branch, branchmark_regional;
GRANT INSERT, UPDATE, DELETE ON programme_settings, outlet_opening_hours, visit_plans,
                                evaluation_evidence TO branchmark_hq;
GRANT SELECT, INSERT ON evaluation_evidence TO branchmark_reviewer;
GRANT USAGE ON SEQUENCE evaluation_evidence_id_seq, visit_plans_id_seq TO branchmark_hq;
GRANT USAGE ON SEQUENCE evaluation_evidence_id_seq TO branchmark_reviewer;

REVOKE EXECUTE ON FUNCTION bm_evaluation_flags(bigint[]), bm_review_set(bigint, text, text),
    bm_review_approve_unflagged(text),
    bm_review_correct(bigint, text, double precision, text, bigint),
    bm_appeal_file(bigint, text[], text), bm_appeal_answer(bigint, boolean, boolean, text[], text),
    bm_retention_run() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm_evaluation_flags(bigint[]), bm_review_set(bigint, text, text),
    bm_review_approve_unflagged(text),
    bm_review_correct(bigint, text, double precision, text, bigint)
    TO branchmark_reviewer, branchmark_hq;
GRANT EXECUTE ON FUNCTION bm_appeal_file(bigint, text[], text) TO branchmark_branch, branchmark_hq;
-- The logs follow their evaluation's visibility (003's policies on
-- evaluations decide which rows a scoped role sees).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['evaluation_reviews', 'evaluation_answer_changes', 'appeals'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY all_rows ON %I TO branchmark_hq, branchmark_reviewer '
                       'USING (true)', t);
        EXECUTE format('CREATE POLICY scoped_read ON %I FOR SELECT TO branchmark_regional, '
                       'branchmark_branch USING (evaluation_id IN (SELECT id FROM evaluations))', t);
    END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION bm_appeal_answer(bigint, boolean, boolean, text[], text),
    bm_retention_run() TO branchmark_hq;
