"""purse ledger names the staff member of a desk money action (R-TOP-5)

Existing rows (devices, online payments, and desk actions from before this column) keep NULL: who did an
earlier desk action is still in the audit log.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('purse_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_purse_ledger_staff_id'), ['staff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('purse_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purse_ledger_staff_id'))
        batch_op.drop_column('staff_id')
