"""back office (issue 17): the admin role's tables — cash collected from parking meters, card registry
uploads — a disabled marker for staff and inspector accounts, and indexes for the dashboards
(benchmarks/dashboards.py)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'meter_cash_collections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('entered_by', sa.Integer(), nullable=True),
        sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id']),
        sa.ForeignKeyConstraint(['entered_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('device_id', 'day', name='uq_meter_cash_day'),
    )
    with op.batch_alter_table('meter_cash_collections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meter_cash_collections_device_id'), ['device_id'], unique=False)
    op.create_table(
        'registry_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('admin_id', sa.Integer(), nullable=True),
        sa.Column('filename', sa.String(length=120), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('added', sa.Integer(), nullable=False),
        sa.Column('updated', sa.Integer(), nullable=False),
        sa.Column('unlinked', sa.Integer(), nullable=False),
        sa.Column('unchanged', sa.Integer(), nullable=False),
        sa.Column('problems', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['admin_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('registry_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_imports_created_at'), ['created_at'], unique=False)
    op.create_index('ix_device_events_device_received', 'device_events', ['device_id', 'received_at'], unique=False)
    op.create_index('ix_subscription_months_paid_on', 'subscription_months', ['paid_on'], unique=False)
    op.create_index('ix_subscriptions_5p1_created_at', 'subscriptions_5p1', ['created_at'], unique=False)
    # PostgreSQL: an index-only scan serves the e-purse dashboard (SQLite ignores INCLUDE: a plain index)
    op.create_index('ix_purse_ledger_at_covering', 'purse_ledger', ['at', 'kind'], unique=False,
                    postgresql_include=['device_id', 'detail', 'amount', 'place'])


def downgrade() -> None:
    op.drop_index('ix_purse_ledger_at_covering', table_name='purse_ledger')
    op.drop_index('ix_subscriptions_5p1_created_at', table_name='subscriptions_5p1')
    op.drop_index('ix_subscription_months_paid_on', table_name='subscription_months')
    op.drop_index('ix_device_events_device_received', table_name='device_events')
    with op.batch_alter_table('registry_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_imports_created_at'))
    op.drop_table('registry_imports')
    with op.batch_alter_table('meter_cash_collections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meter_cash_collections_device_id'))
    op.drop_table('meter_cash_collections')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('disabled_at')
