"""mail rendered on delivery: outbox rows may carry template, language and context instead of bodies

Existing rows keep their rendered subject and bodies (template stays NULL), which is still a valid
row of the new format: nothing to convert.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 01:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column('context', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    # Rows still unrendered are rendered first, so the older format (bodies only) loses nothing.
    from web.mail import render_pending_rows

    render_pending_rows(op.get_bind())
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_column('context')
        batch_op.drop_column('language')
        batch_op.drop_column('template')
