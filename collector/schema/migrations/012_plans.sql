-- 012_plans: what `branchmark plan` writes into visit_plans (004) besides
-- outlet, day, channel and shopper: the time band of the visit, whether it
-- is scheduled (a fixed day) or a surprise (the shopper picks a day within
-- a window, so not even the plan fixes it), and the plan run it belongs to.
-- docs/workflow.md, "Visit planning".
--
-- Visibility does not change: 004 revoked every privilege on visit_plans
-- from branchmark_branch and branchmark_regional, and columns added here
-- inherit the table-level grants (HQ and reviewers read, HQ writes).

ALTER TABLE visit_plans
    ADD COLUMN time_band   text NOT NULL DEFAULT 'any'
        CHECK (time_band IN ('any', 'morning', 'midday', 'evening')),
    ADD COLUMN visit_kind  text NOT NULL DEFAULT 'scheduled'
        CHECK (visit_kind IN ('scheduled', 'surprise')),
    -- surprise: the visit happens on planned_on .. planned_on + window_days
    ADD COLUMN window_days int NOT NULL DEFAULT 0 CHECK (window_days BETWEEN 0 AND 31),
    ADD COLUMN plan_run    text NOT NULL DEFAULT '' CHECK (length(plan_run) <= 64),
    ADD COLUMN created_by  name NOT NULL DEFAULT session_user;

CREATE INDEX visit_plans_outlet_day ON visit_plans (outlet_kind, outlet_id, planned_on);
