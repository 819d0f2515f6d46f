"""demo purse cards: the only cards the device simulators may act on

Existing cards are real (demo = false); `ekp demo load` marks the demo cards it issues.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('purse_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('demo', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('purse_cards', schema=None) as batch_op:
        batch_op.drop_column('demo')
