-- Distribute Lianka's tables on a Citus coordinator. GENERATED from the migrated schema by
-- `python -m lianka.platform.citus` (lianka/platform/citus.py says why each table goes where);
-- tests/integration/test_citus_schema.py fails when it is stale. Run it as the owner, once, after
-- `lianka db upgrade` on the coordinator (see infra/citus/README.md).
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';

-- reference tables: a copy on every worker
SELECT create_reference_table('merchants');
SELECT create_reference_table('alliances');
SELECT create_reference_table('alliance_invites');
SELECT create_reference_table('alliance_partners');
SELECT create_reference_table('members');
SELECT create_reference_table('alliance_recognition');
SELECT create_reference_table('alliance_spokes');
SELECT create_reference_table('alliance_terms');
SELECT create_reference_table('billing_plans');
SELECT create_reference_table('staff_users');

-- local tables: on the coordinator, known to Citus
SELECT citus_add_local_table_to_metadata('alembic_version');
SELECT citus_add_local_table_to_metadata('auth_sessions');
SELECT citus_add_local_table_to_metadata('billing_accounts');
SELECT citus_add_local_table_to_metadata('billing_events');
SELECT citus_add_local_table_to_metadata('delivery_receipts');
SELECT citus_add_local_table_to_metadata('job_runs');
SELECT citus_add_local_table_to_metadata('oidc_identities');
SELECT citus_add_local_table_to_metadata('outbox');
SELECT citus_add_local_table_to_metadata('payout_accounts');
SELECT citus_add_local_table_to_metadata('payouts');
SELECT citus_add_local_table_to_metadata('payout_attempts');
SELECT citus_add_local_table_to_metadata('processed_messages');
SELECT citus_add_local_table_to_metadata('signing_keys');
SELECT citus_add_local_table_to_metadata('sms_replies');

-- distributed by tenant_id, co-located with branches (referenced tables first)
SELECT create_distributed_table('branches', 'tenant_id', colocate_with => 'default');
SELECT create_distributed_table('account_mappings', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('alliance_report_daily', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('alliance_report_flows', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('alliance_report_marks', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('api_clients', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('segments', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('audience_snapshots', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('audience_snapshot_members', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('audit_log', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('campaigns', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('automations', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('automation_firings', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('billing_invoices', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('billing_usage_reports', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('campaign_messages', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('coupon_templates', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('memberships', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('coupons', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('erasure_requests', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('export_log', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('idempotency_keys', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_accounts', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_balances', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_entries', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_lots', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_lot_moves', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_periods', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_postings', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('ledger_snapshots', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('lucky_draws', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('lucky_draw_prizes', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('lucky_draw_entries', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('marketing_settings', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('member_checkins', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('member_imports', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('member_profiles', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('member_rfm', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('member_statements', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('membership_products', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('membership_savings', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('membership_settings', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('membership_terms', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('messaging_providers', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('payment_credentials', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('payment_orders', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('payment_refunds', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('programme_versions', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('sales', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('refunds', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('report_buyers', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('report_daily', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('report_marks', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('report_member_snapshots', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('report_tier_counts', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('revoked_tokens', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('rewards', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('reward_redemptions', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('rule_awards', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('rule_counters', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('sale_lines', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('self_joins', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('settlement_runs', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('settlement_statements', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('staff_memberships', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('tier_changes', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('top_ups', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('webhook_events', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('webhook_subscriptions', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('webhook_deliveries', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('webhook_attempts', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('wechat_grants', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('wechat_openids', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('xmkt_offers', 'tenant_id', colocate_with => 'branches');
SELECT create_distributed_table('xmkt_vouchers', 'tenant_id', colocate_with => 'branches');
COMMIT;

-- the tenant reaches the workers with each transaction's SET LOCAL (row-level security there too)
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = %L',
  current_database(), 'local'); END $$;
