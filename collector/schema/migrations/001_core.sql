-- 001_core: reference data, raw records and the ingest ledger.
--
-- Invariants the constraints enforce (the collector also validates before it
-- writes, so a violation here means a bug, never a lost batch):
-- - impossible values are refused (NPS 11, negative entrants, a ticket served
--   before it was issued, an answer to an item not in the evaluation's
--   questionnaire version, points above the item's maximum);
-- - each record is stored once per (branch, source_id) and kind;
-- - each batch is stored once per (stream_id, sequence).
-- Times are timestamptz; money is bigint minor units.

CREATE TABLE chain (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),   -- one chain per database
    code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone    text NOT NULL            -- IANA name; periods are cut in this zone
);

CREATE TABLE regions (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200)
);

-- Current state of each branch.  Every change is also kept in branch_versions
-- so that history is never overwritten in place.
CREATE TABLE branches (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region_id   int NOT NULL REFERENCES regions(id),
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    active      boolean NOT NULL DEFAULT true,
    version     int NOT NULL DEFAULT 1,
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE TABLE branch_versions (
    branch_id   int NOT NULL REFERENCES branches(id),
    version     int NOT NULL,
    name        text NOT NULL,
    region_id   int NOT NULL REFERENCES regions(id),
    latitude    double precision,
    longitude   double precision,
    active      boolean NOT NULL,
    valid_from  timestamptz NOT NULL DEFAULT now(),
    valid_to    timestamptz,                       -- NULL: current version
    PRIMARY KEY (branch_id, version)
);

CREATE TABLE competitor_outlets (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    brand       text NOT NULL CHECK (length(brand) BETWEEN 1 AND 200),
    region_id   int NOT NULL REFERENCES regions(id),
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    active      boolean NOT NULL DEFAULT true,
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

-- A questionnaire version is immutable once an evaluation refers to it; a
-- change is published as a new version (enforced by the loader and by the
-- trigger below).
CREATE TABLE questionnaires (
    id          serial PRIMARY KEY,
    code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    version     int NOT NULL CHECK (version >= 1),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    content_sha256 text NOT NULL,     -- of the canonical definition, to detect edits
    published_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (code, version)
);

-- critical_rule says what a failed critical item does to the score:
--   'zero_section'  the section scores 0
--   'zero_total'    the whole evaluation scores 0
--   'cap'           the section is capped at cap_percent
CREATE TABLE questionnaire_sections (
    id               serial PRIMARY KEY,
    questionnaire_id int NOT NULL REFERENCES questionnaires(id),
    code             text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    title            text NOT NULL,
    position         int NOT NULL,
    weight           double precision NOT NULL DEFAULT 1 CHECK (weight > 0),
    critical_rule    text NOT NULL DEFAULT 'zero_section'
                     CHECK (critical_rule IN ('zero_section', 'zero_total', 'cap')),
    cap_percent      double precision CHECK (cap_percent BETWEEN 0 AND 100),
    CHECK ((critical_rule = 'cap') = (cap_percent IS NOT NULL)),
    UNIQUE (questionnaire_id, code)
);

-- An item is "failed" when it is critical and earned points < max_points.
-- A bonus item adds earned points only (it never adds to the possible points).
CREATE TABLE questionnaire_items (
    id               serial PRIMARY KEY,
    questionnaire_id int NOT NULL REFERENCES questionnaires(id),
    section_id       int NOT NULL REFERENCES questionnaire_sections(id),
    code             text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.-]{1,32}$'),
    text             text NOT NULL,
    position         int NOT NULL,
    weight           double precision NOT NULL DEFAULT 1 CHECK (weight > 0),
    max_points       double precision NOT NULL CHECK (max_points > 0),
    critical         boolean NOT NULL DEFAULT false,
    bonus            boolean NOT NULL DEFAULT false,
    CHECK (NOT (critical AND bonus)),
    UNIQUE (questionnaire_id, code)
);

-- Agents known to the collector.  An agent belongs to exactly one branch.
CREATE TABLE agents (
    agent_id    text PRIMARY KEY CHECK (agent_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    branch_id   int NOT NULL REFERENCES branches(id),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

-- The ingest ledger: one row per stored batch.  Inserted in the same
-- transaction as the batch's records, so (stream_id, sequence) present <=>
-- the records are stored.  A resent batch finds its row and is acked again.
CREATE TABLE ingest_batches (
    stream_id   text NOT NULL CHECK (stream_id ~ '^[0-9a-f]{32}$'),
    sequence    bigint NOT NULL CHECK (sequence >= 1),
    agent_id    text NOT NULL,
    branch_id   int NOT NULL REFERENCES branches(id),
    received_at timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz NOT NULL,
    records     int NOT NULL CHECK (records >= 0),
    stored      int NOT NULL CHECK (stored >= 0),
    duplicates  int NOT NULL CHECK (duplicates >= 0),
    rejected    int NOT NULL CHECK (rejected >= 0),
    PRIMARY KEY (stream_id, sequence)
);

---------------------------------------------------------------------------
-- Raw records.  branch_id is the sending agent's branch.  Each kind is
-- unique on (branch_id, source_id): the store system's id identifies a
-- record within its branch.
---------------------------------------------------------------------------

CREATE TABLE people_counts (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    interval_start   timestamptz NOT NULL,
    interval_seconds int NOT NULL CHECK (interval_seconds BETWEEN 1 AND 86400),
    passers_by       int NOT NULL CHECK (passers_by >= 0),
    entrants         int NOT NULL CHECK (entrants >= 0),
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (branch_id, source_id)
);

CREATE TABLE receipts (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    at               timestamptz NOT NULL,
    amount_minor     bigint NOT NULL,
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (branch_id, source_id)
);

CREATE TABLE queue_tickets (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    issued_at        timestamptz NOT NULL,
    called_at        timestamptz CHECK (called_at >= issued_at),
    served_at        timestamptz CHECK (served_at >= coalesce(called_at, issued_at)),
    service_point    text NOT NULL CHECK (length(service_point) <= 64),
    received_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (served_at IS NULL OR called_at IS NOT NULL),
    UNIQUE (branch_id, source_id)
);

CREATE TABLE phone_calls (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    ring_start       timestamptz NOT NULL,
    answered         boolean NOT NULL,
    wait_seconds     int NOT NULL CHECK (wait_seconds BETWEEN 0 AND 86400),
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (branch_id, source_id)
);

CREATE TABLE complaints (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    received_at_src  timestamptz NOT NULL,           -- when the complaint was received
    category         text NOT NULL CHECK (length(category) BETWEEN 1 AND 64),
    contact_point    text NOT NULL CHECK (length(contact_point) BETWEEN 1 AND 64),
    channel          text NOT NULL CHECK (length(channel) BETWEEN 1 AND 32),
    resolved_at      timestamptz CHECK (resolved_at >= received_at_src),  -- NULL: open
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (branch_id, source_id)
);

CREATE TABLE survey_responses (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    responded_at     timestamptz NOT NULL,
    nps              smallint CHECK (nps BETWEEN 0 AND 10),       -- NULL: not asked
    csi              double precision CHECK (csi BETWEEN 0 AND 100), -- index of the items, NULL: none
    why              text NOT NULL DEFAULT '' CHECK (length(why) <= 4000),
    segment          text NOT NULL DEFAULT '' CHECK (length(segment) <= 64),
    survey_channel   text NOT NULL DEFAULT '' CHECK (length(survey_channel) <= 32),
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (branch_id, source_id)
);

-- CSI index of a response = mean over its items of (score-1)/(scale_max-1)*100.
CREATE TABLE survey_csi_scores (
    response_id      bigint NOT NULL REFERENCES survey_responses(id) ON DELETE CASCADE,
    item             text NOT NULL CHECK (length(item) BETWEEN 1 AND 64),
    score            smallint NOT NULL,
    scale_max        smallint NOT NULL CHECK (scale_max BETWEEN 2 AND 10),
    CHECK (score BETWEEN 1 AND scale_max),
    PRIMARY KEY (response_id, item)
);

CREATE TABLE customer_changes (
    id               bigserial PRIMARY KEY,
    branch_id        int NOT NULL REFERENCES branches(id),
    source_id        text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    at               timestamptz NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('gained', 'lost')),
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 64),
    segment          text NOT NULL DEFAULT '' CHECK (length(segment) <= 64),
    received_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'gained' OR reason <> ''),
    UNIQUE (branch_id, source_id)
);

-- A mystery-shopper evaluation.  branch_id is the sending agent's branch; the
-- evaluated outlet is either one of the chain's branches or a competitor.
CREATE TABLE evaluations (
    id                   bigserial PRIMARY KEY,
    branch_id            int NOT NULL REFERENCES branches(id),
    source_id            text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 128),
    questionnaire_id     int NOT NULL REFERENCES questionnaires(id),
    channel              text NOT NULL CHECK (channel IN ('visit', 'call', 'online')),
    scenario             text NOT NULL DEFAULT '' CHECK (length(scenario) <= 64),
    shopper_segment      text NOT NULL DEFAULT '' CHECK (length(shopper_segment) <= 64),
    outlet_branch_id     int REFERENCES branches(id),
    competitor_outlet_id int REFERENCES competitor_outlets(id),
    visited_at           timestamptz NOT NULL,
    submitted_at         timestamptz CHECK (submitted_at >= visited_at),
    shopper_ref          text NOT NULL DEFAULT '' CHECK (length(shopper_ref) <= 64),
    received_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((outlet_branch_id IS NULL) <> (competitor_outlet_id IS NULL)),
    UNIQUE (branch_id, source_id),
    UNIQUE (id, questionnaire_id)          -- target of the answers' foreign key
);

-- One answer per item.  The composite foreign keys make "an answer to an item
-- not in the evaluation's questionnaire version" impossible.
CREATE TABLE evaluation_answers (
    evaluation_id    bigint NOT NULL,
    questionnaire_id int NOT NULL,
    item_code        text NOT NULL,
    points           double precision CHECK (points >= 0),   -- NULL: not applicable
    comment          text NOT NULL DEFAULT '' CHECK (length(comment) <= 4000),
    PRIMARY KEY (evaluation_id, item_code),
    FOREIGN KEY (evaluation_id, questionnaire_id)
        REFERENCES evaluations(id, questionnaire_id) ON DELETE CASCADE,
    FOREIGN KEY (questionnaire_id, item_code)
        REFERENCES questionnaire_items(questionnaire_id, code)
);

-- Points may not exceed the item's maximum.  A CHECK cannot look at another
-- table, so a trigger does it.
CREATE FUNCTION evaluation_answers_check_points() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    max_p double precision;
BEGIN
    IF NEW.points IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT max_points INTO max_p FROM questionnaire_items
     WHERE questionnaire_id = NEW.questionnaire_id AND code = NEW.item_code;
    IF NEW.points > max_p THEN
        RAISE EXCEPTION 'answer to item % has % points, more than its maximum %',
            NEW.item_code, NEW.points, max_p
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER evaluation_answers_points
    BEFORE INSERT OR UPDATE ON evaluation_answers
    FOR EACH ROW EXECUTE FUNCTION evaluation_answers_check_points();

-- A questionnaire version that evaluations refer to may not change.
CREATE FUNCTION questionnaire_items_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM evaluations
                WHERE questionnaire_id = OLD.questionnaire_id) THEN
        RAISE EXCEPTION 'questionnaire % is in use by evaluations; publish a new version',
            OLD.questionnaire_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER questionnaire_items_frozen
    BEFORE UPDATE OR DELETE ON questionnaire_items
    FOR EACH ROW EXECUTE FUNCTION questionnaire_items_frozen();
CREATE TRIGGER questionnaire_sections_frozen
    BEFORE UPDATE OR DELETE ON questionnaire_sections
    FOR EACH ROW EXECUTE FUNCTION questionnaire_items_frozen();

CREATE INDEX people_counts_branch_time ON people_counts (branch_id, interval_start);
CREATE INDEX receipts_branch_time ON receipts (branch_id, at);
CREATE INDEX queue_tickets_branch_time ON queue_tickets (branch_id, issued_at);
CREATE INDEX phone_calls_branch_time ON phone_calls (branch_id, ring_start);
CREATE INDEX complaints_branch_time ON complaints (branch_id, received_at_src);
CREATE INDEX survey_responses_branch_time ON survey_responses (branch_id, responded_at);
CREATE INDEX customer_changes_branch_time ON customer_changes (branch_id, at);
CREATE INDEX evaluations_outlet_time ON evaluations (outlet_branch_id, visited_at);
CREATE INDEX evaluations_competitor_time ON evaluations (competitor_outlet_id, visited_at);
