-- SMS opt-outs (STOP and the other carrier keywords), per customer number and business number:
-- carriers apply an opt-out to the sender it was sent to. START/UNSTOP deletes the row.
CREATE TABLE IF NOT EXISTS sms_opt_outs (
    customer_number text NOT NULL,
    business_number text NOT NULL,
    keyword         text NOT NULL,
    opted_out_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_number, business_number)
);
