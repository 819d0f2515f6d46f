"""dashboard roll-ups (issue 17): the back office's per-day aggregates of closed (Warsaw) days, which days
are rolled up (and stale ones to recompute), the roll-up job's high-water marks; recent failures of
scheduled jobs for the health dashboard

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dashboard_rollups',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('metric', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=96), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'metric', 'key'),
    )
    op.create_table(
        'dashboard_rollup_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stale', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )
    op.create_table(
        'dashboard_rollup_marks',
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('source'),
    )
    op.create_table(
        'job_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job', sa.String(length=32), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('error', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('job_failures', schema=None) as batch_op:
        batch_op.create_index('ix_job_failures_at', ['at'], unique=False)
    # the 5+1 dashboard's live parts (months due per day, tickets in force today, charges per day) read these
    # alone on PostgreSQL (index-only scans); SQLite gets plain indexes
    op.create_index('ix_subscription_months_starts_on_covering', 'subscription_months', ['starts_on'],
                    postgresql_include=['state', 'ends_on', 'month_index'])
    op.create_index('ix_payments_created_at_covering', 'payments', ['created_at'],
                    postgresql_include=['purpose', 'status', 'kind'])
    op.create_index('ix_subscriptions_5p1_ended_on', 'subscriptions_5p1', ['ended_on'], postgresql_include=['status'])


def downgrade() -> None:
    op.drop_index('ix_subscriptions_5p1_ended_on', table_name='subscriptions_5p1')
    op.drop_index('ix_payments_created_at_covering', table_name='payments')
    op.drop_index('ix_subscription_months_starts_on_covering', table_name='subscription_months')
    with op.batch_alter_table('job_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_job_failures_at')
    op.drop_table('job_failures')
    op.drop_table('dashboard_rollup_marks')
    op.drop_table('dashboard_rollup_days')
    op.drop_table('dashboard_rollups')
