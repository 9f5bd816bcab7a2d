-- Products and order lines (DESIGN §8), and what the recommender leaves: a list per customer
-- and, per product, its popularity and what is bought with it. (0007 and 0008 are
-- SQLite-only table rebuilds; the numbers stay in step across the two folders.)

CREATE TABLE products (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    sku             TEXT NOT NULL,
    name            TEXT NOT NULL,
    price_minor     BIGINT CHECK (price_minor >= 0),
    url             TEXT,
    image_url       TEXT,
    category        TEXT,
    in_stock        BOOLEAN NOT NULL DEFAULT TRUE,
    released_at_us  BIGINT,
    created_at_us   BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    UNIQUE (merchant_id, sku)
);
-- The product list, newest first.
CREATE INDEX products_by_merchant ON products (merchant_id, id);

-- A line of an order (order_id) or of a purchase (purchase_id), or both once the order is
-- paid. line_key: what makes an imported line the same line on a second import; NULL for
-- lines that came with an order.
CREATE TABLE order_lines (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    order_id         BIGINT REFERENCES orders (id),
    purchase_id      BIGINT REFERENCES purchases (id),
    product_id       BIGINT NOT NULL REFERENCES products (id),
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL CHECK (unit_price_minor >= 0),
    line_key         TEXT,
    created_at_us    BIGINT NOT NULL,
    UNIQUE (merchant_id, line_key)
);
-- id and product_id: the recommender pages through every line in this order, from the
-- index alone.
CREATE INDEX order_lines_by_purchase ON order_lines (merchant_id, purchase_id, id) INCLUDE (product_id);
CREATE INDEX order_lines_by_order ON order_lines (merchant_id, order_id) WHERE order_id IS NOT NULL;

-- The latest run's recommendations: a JSON array of product keys, best first; NULL for none.
ALTER TABLE customer_scores ADD COLUMN recommended TEXT;

-- The latest run's product lists: rank in the popular list (NULL: not in it), and related
-- as JSON [[product key, similarity], …], best first.
CREATE TABLE product_signals (
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    product_id       BIGINT NOT NULL REFERENCES products (id),
    popularity_rank  BIGINT,
    related          TEXT NOT NULL,
    computed_at_us   BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, product_id)
);
