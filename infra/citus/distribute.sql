-- Distribute Lianka's tables on a Citus coordinator (idempotent).
SET citus.propagate_set_commands = 'local';
ALTER DATABASE CURRENT SET citus.propagate_set_commands = 'local';

DO $$
DECLARE t record;
BEGIN
  -- the tenant registry and other small global tables: copied to every worker
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'r'
             AND c.relname IN ('merchants', 'alembic_version')
             AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
  LOOP
    EXECUTE format('SELECT create_reference_table(%L)', t.relname);
  END LOOP;
  -- tenant tables: co-located by tenant_id
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
           WHERE n.nspname = 'public' AND c.relkind = 'r'
             AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
             AND c.relname NOT IN ('outbox', 'processed_messages')
  LOOP
    EXECUTE format('SELECT create_distributed_table(%L, %L, colocate_with => %L)',
                   t.relname, 'tenant_id', 'branches');
  END LOOP;
  -- alliance tables: co-located by alliance_id
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'alliance_id' AND NOT a.attisdropped
           WHERE n.nspname = 'public' AND c.relkind = 'r'
             AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
  LOOP
    EXECUTE format('SELECT create_distributed_table(%L, %L)', t.relname, 'alliance_id');
  END LOOP;
END $$;
