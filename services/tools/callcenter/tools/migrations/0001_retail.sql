-- The retail domain served by the tools service (close to tau-bench's retail domain).
-- Money is stored in integer cents; ids are human-readable strings callers can read out.

CREATE TABLE IF NOT EXISTS customers (
    customer_id  text PRIMARY KEY,
    first_name   text NOT NULL,
    last_name    text NOT NULL,
    email        text NOT NULL UNIQUE,
    phone        text NOT NULL,
    address      jsonb NOT NULL,
    zip          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customers_phone_idx ON customers (phone);
CREATE INDEX IF NOT EXISTS customers_name_zip_idx ON customers (lower(last_name), zip);

CREATE TABLE IF NOT EXISTS products (
    product_id   text PRIMARY KEY,
    name         text NOT NULL,
    category     text NOT NULL,
    description  text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS product_variants (
    variant_id   text PRIMARY KEY,
    product_id   text NOT NULL REFERENCES products (product_id),
    options      jsonb NOT NULL DEFAULT '{}'::jsonb,
    price_cents  integer NOT NULL CHECK (price_cents >= 0),
    available    boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS product_variants_product_idx ON product_variants (product_id);

CREATE TABLE IF NOT EXISTS orders (
    order_id          text PRIMARY KEY,
    customer_id       text NOT NULL REFERENCES customers (customer_id),
    status            text NOT NULL
                      CHECK (status IN ('pending', 'processing', 'shipped', 'delivered', 'cancelled')),
    placed_at         timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    shipping_address  jsonb NOT NULL,
    total_cents       integer NOT NULL CHECK (total_cents >= 0),
    cancel_reason     text,
    cancelled_at      timestamptz
);
CREATE INDEX IF NOT EXISTS orders_customer_idx ON orders (customer_id, placed_at DESC);

CREATE TABLE IF NOT EXISTS order_items (
    item_id           text PRIMARY KEY,
    order_id          text NOT NULL REFERENCES orders (order_id),
    variant_id        text NOT NULL REFERENCES product_variants (variant_id),
    product_name      text NOT NULL,
    options           jsonb NOT NULL DEFAULT '{}'::jsonb,
    quantity          integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price_cents  integer NOT NULL CHECK (unit_price_cents >= 0),
    status            text NOT NULL DEFAULT 'ordered'
                      CHECK (status IN ('ordered', 'return_requested', 'exchange_requested'))
);
CREATE INDEX IF NOT EXISTS order_items_order_idx ON order_items (order_id);

CREATE TABLE IF NOT EXISTS payments (
    payment_id    text PRIMARY KEY,
    order_id      text NOT NULL REFERENCES orders (order_id),
    method        text NOT NULL CHECK (method IN ('card', 'paypal', 'gift_card')),
    card_brand    text,
    card_last4    text,
    amount_cents  integer NOT NULL,
    status        text NOT NULL DEFAULT 'captured'
                  CHECK (status IN ('authorized', 'captured', 'refund_pending', 'refunded')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_order_idx ON payments (order_id);

CREATE TABLE IF NOT EXISTS shipments (
    shipment_id         text PRIMARY KEY,
    order_id            text NOT NULL REFERENCES orders (order_id),
    carrier             text NOT NULL,
    tracking_number     text NOT NULL,
    status              text NOT NULL
                        CHECK (status IN ('label_created', 'in_transit', 'out_for_delivery', 'delivered')),
    shipped_at          timestamptz,
    estimated_delivery  date,
    delivered_at        timestamptz,
    last_event          text NOT NULL DEFAULT '',
    last_update_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS shipments_order_idx ON shipments (order_id);

CREATE TABLE IF NOT EXISTS returns (
    return_id        text PRIMARY KEY,
    order_id         text NOT NULL REFERENCES orders (order_id),
    customer_id      text NOT NULL REFERENCES customers (customer_id),
    item_ids         text[] NOT NULL,
    reason           text NOT NULL,
    refund_method    text NOT NULL,
    refund_cents     integer NOT NULL,
    status           text NOT NULL DEFAULT 'requested',
    call_id          text,
    idempotency_key  text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS returns_order_idx ON returns (order_id);

CREATE TABLE IF NOT EXISTS exchanges (
    exchange_id             text PRIMARY KEY,
    order_id                text NOT NULL REFERENCES orders (order_id),
    customer_id             text NOT NULL REFERENCES customers (customer_id),
    items                   jsonb NOT NULL,
    price_difference_cents  integer NOT NULL,
    status                  text NOT NULL DEFAULT 'requested',
    call_id                 text,
    idempotency_key         text UNIQUE,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS exchanges_order_idx ON exchanges (order_id);

CREATE TABLE IF NOT EXISTS callbacks (
    callback_id      text PRIMARY KEY,
    customer_id      text REFERENCES customers (customer_id),
    call_id          text,
    phone            text NOT NULL,
    scheduled_for    timestamptz NOT NULL,
    reason           text NOT NULL,
    status           text NOT NULL DEFAULT 'scheduled',
    idempotency_key  text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Policies and FAQ, searched with PostgreSQL full-text search.
CREATE TABLE IF NOT EXISTS kb_articles (
    article_id  text PRIMARY KEY,
    title       text NOT NULL,
    category    text NOT NULL,
    body        text NOT NULL,
    search      tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', title), 'A')
                    || setweight(to_tsvector('english', category), 'B')
                    || setweight(to_tsvector('english', body), 'C')
                ) STORED
);
CREATE INDEX IF NOT EXISTS kb_articles_search_idx ON kb_articles USING gin (search);

-- One-time verification codes (stored hashed; a code works once, before it expires).
CREATE TABLE IF NOT EXISTS verification_codes (
    id           bigserial PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers (customer_id),
    code_hash    text NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS verification_codes_customer_idx ON verification_codes (customer_id);

-- Every verification attempt, so a call that keeps guessing is stopped.
CREATE TABLE IF NOT EXISTS verification_attempts (
    id            bigserial PRIMARY KEY,
    call_id       text NOT NULL,
    method        text NOT NULL,
    success       boolean NOT NULL,
    customer_id   text,
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS verification_attempts_call_idx ON verification_attempts (call_id);

-- Results of side-effecting tool calls, so a repeated (call_id, tool_call_id) changes nothing.
CREATE TABLE IF NOT EXISTS tool_invocations (
    call_id       text NOT NULL,
    tool_call_id  text NOT NULL,
    tool          text NOT NULL,
    result        jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, tool_call_id)
);
