"""mail outbox: a mail given up is marked failed (when and why), for staff to see (`ekp mail failed`)

Mail was dropped silently after 12 attempts (about 5 hours); now it is retried for EKP_MAIL_RETRY_HOURS and
then marked failed. Existing rows keep NULL: mail that had reached 12 attempts is retried again until the
window ends.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 14:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_column('failed_at')
