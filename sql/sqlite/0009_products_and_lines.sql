-- Products and order lines (DESIGN §8), and what the recommender leaves: a list per customer
-- and, per product, its popularity and what is bought with it.

CREATE TABLE products (
    id              INTEGER PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    sku             TEXT NOT NULL,
    name            TEXT NOT NULL,
    price_minor     INTEGER CHECK (price_minor >= 0),
    url             TEXT,
    image_url       TEXT,
    category        TEXT,
    in_stock        INTEGER NOT NULL DEFAULT 1 CHECK (in_stock IN (0, 1)),
    released_at_us  INTEGER,
    created_at_us   INTEGER NOT NULL,
    updated_at_us   INTEGER NOT NULL,
    UNIQUE (merchant_id, sku)
);
-- The product list, newest first.
CREATE INDEX products_by_merchant ON products (merchant_id, id);

-- A line of an order (order_id) or of a purchase (purchase_id), or both once the order is
-- paid. line_key: what makes an imported line the same line on a second import; NULL for
-- lines that came with an order.
CREATE TABLE order_lines (
    id               INTEGER PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    order_id         INTEGER REFERENCES orders (id),
    purchase_id      INTEGER REFERENCES purchases (id),
    product_id       INTEGER NOT NULL REFERENCES products (id),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    line_key         TEXT,
    created_at_us    INTEGER NOT NULL,
    UNIQUE (merchant_id, line_key)
);
-- product_id last: the recommender's read of every line is then the index alone.
CREATE INDEX order_lines_by_purchase ON order_lines (merchant_id, purchase_id, product_id);
CREATE INDEX order_lines_by_order ON order_lines (merchant_id, order_id) WHERE order_id IS NOT NULL;

-- The latest run's recommendations: a JSON array of product keys, best first; NULL for none.
ALTER TABLE customer_scores ADD COLUMN recommended TEXT;

-- The latest run's product lists: rank in the popular list (NULL: not in it), and related
-- as JSON [[product key, similarity], …], best first.
CREATE TABLE product_signals (
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    product_id       INTEGER NOT NULL REFERENCES products (id),
    popularity_rank  INTEGER,
    related          TEXT NOT NULL,
    computed_at_us   INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, product_id)
);
