-- pgbench script: the PostgreSQL baseline for bench/events.lua, Lago's write path: 100 events
-- per transaction, each with a unique (organization, subscription, transaction id) and JSON
-- properties.
INSERT INTO events (org_id, external_subscription_id, transaction_id, code, timestamp, properties, created_at)
SELECT 1, 's' || (random() * 999)::int, gen_random_uuid()::text, 'tokens', now(),
       jsonb_build_object('tokens', (random() * 4000)::int, 'model', 'large', 'kind', 'output'), now()
FROM generate_series(1, 100);
