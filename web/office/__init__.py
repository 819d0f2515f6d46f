"""The operator's back office (issue 17): `/office` for the admin role. `controllers` (HTTP), `queries`
(read-only dashboards and lists, SQL aggregates on both databases), `service` (what an admin changes, through
the other areas' public service functions; every action in the audit log)."""
