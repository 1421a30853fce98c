-- pgbench script: the PostgreSQL baseline for bench/customers.lua. One durable transaction
-- per customer, with the same unique indexes Tally keeps (external id per organization,
-- lago_id) and the same columns written.
INSERT INTO customers (org_id, lago_id, sequential_id, external_id, name, currency, timezone,
                       country, email, created_at, updated_at)
VALUES (1, gen_random_uuid(), nextval('customer_seq'), gen_random_uuid()::text, 'Bench customer',
        'EUR', 'Europe/Paris', 'FR', 'bench@example.com', now(), now());
