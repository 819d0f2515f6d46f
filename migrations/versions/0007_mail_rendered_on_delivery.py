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
    # The older format has bodies only, and a migration never renders app templates (it must not import app
    # code): refuse while mail queued in the new format still waits, so nothing is lost. Mail already sent
    # keeps its (empty) bodies: it was delivered, the outbox row is only its record.
    bind = op.get_bind()
    waiting = bind.execute(sa.text(
        "SELECT COUNT(*) FROM mail_outbox WHERE template IS NOT NULL AND text_body = '' AND sent_at IS NULL"
    )).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} queued mail(s) are stored unrendered; deliver them first (`ekp mail send`), "
            "then downgrade below 0007")
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_column('context')
        batch_op.drop_column('language')
        batch_op.drop_column('template')
