"""ticket revocation reason: why a ticket was revoked, named in the inspector's verdict (R-TKT-4)

Tickets revoked before this revision keep a NULL reason, read as "other".

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_reason', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('revoked_reason')
