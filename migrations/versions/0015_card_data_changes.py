"""card data changes (issue 16, R-KKM-8): an application may replace a card the holder has (a new card when the
printed data change, or a free change of data that are not printed, made at the desk)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('card_applications') as batch:
        batch.add_column(sa.Column('replaces_card_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('new_card', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('card_applications') as batch:
        batch.drop_column('new_card')
        batch.drop_column('replaces_card_id')
