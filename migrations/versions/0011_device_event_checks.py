"""device events: what each event said (R-VAL-7), and flags for staff with the card and the device's time (R-VAL-8)

Existing rows keep NULL in the new columns: an event stored before its content was recorded is answered from its
stored response on a repeat, as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 13:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('device_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('flag', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))
        batch_op.add_column(sa.Column('card_number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('event_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_device_events_flagged', ['received_at'], unique=False,
                              sqlite_where=sa.text('flag IS NOT NULL'), postgresql_where=sa.text('flag IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('device_events', schema=None) as batch_op:
        batch_op.drop_index('ix_device_events_flagged')
        batch_op.drop_column('event_at')
        batch_op.drop_column('card_number')
        batch_op.drop_column('flag')
        batch_op.drop_column('request_digest')
