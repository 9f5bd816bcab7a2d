-- Post-purchase feedback (DESIGN §8): a request per purchase asked about, the customer's
-- answer to it (one, which they may change while the link is valid) and the complaint a low
-- answer opens.

CREATE TABLE feedback_requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    purchase_id     BIGINT NOT NULL REFERENCES purchases (id),
    kind            TEXT NOT NULL CHECK (kind IN ('csat', 'nps')), -- the scale asked on
    due_at_us       BIGINT NOT NULL,
    created_at_us   BIGINT NOT NULL,
    UNIQUE (merchant_id, purchase_id)
);
CREATE INDEX feedback_requests_by_customer ON feedback_requests (merchant_id, customer_id, due_at_us);

CREATE TABLE feedback_answers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    request_id      BIGINT NOT NULL UNIQUE REFERENCES feedback_requests (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    kind            TEXT NOT NULL CHECK (kind IN ('csat', 'nps')),
    score           BIGINT NOT NULL CHECK (score BETWEEN 0 AND 10),
    comment         TEXT,
    answered_at_us  BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL
);
CREATE INDEX feedback_answers_by_time ON feedback_answers (merchant_id, answered_at_us);

CREATE TABLE complaints (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    answer_id       BIGINT NOT NULL UNIQUE REFERENCES feedback_answers (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'resolved')),
    note            TEXT,
    resolved_by     TEXT,
    resolved_at_us  BIGINT,
    created_at_us   BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL
);
CREATE INDEX complaints_by_status ON complaints (merchant_id, status, id);
CREATE INDEX complaints_by_customer ON complaints (merchant_id, customer_id, status);
