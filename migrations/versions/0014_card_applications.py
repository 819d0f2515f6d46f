"""card applications (issue 16): online applications for a Kołobrzeg card, their timeline, and the notices the
card jobs sent (claimed once per card, kind and date, so many nodes never send one twice)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 16:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'card_applications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('registered_fare', sa.String(length=16), nullable=False),
        sa.Column('first_name', sa.String(length=80), nullable=False),
        sa.Column('last_name', sa.String(length=80), nullable=False),
        sa.Column('service_point', sa.String(length=32), nullable=False),
        sa.Column('entitlement_document', sa.String(length=16), nullable=False),
        sa.Column('entitlement_until', sa.Date(), nullable=True),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('return_reason', sa.String(length=500), nullable=False),
        sa.Column('deposit', sa.Integer(), nullable=False),
        sa.Column('deposit_payment_id', sa.Integer(), nullable=True),
        sa.Column('applied_on', sa.Date(), nullable=True),
        sa.Column('ready_by', sa.Date(), nullable=True),
        sa.Column('collect_by', sa.Date(), nullable=True),
        sa.Column('card_number', sa.String(length=20), nullable=True),
        sa.Column('card_id', sa.Integer(), nullable=True),
        sa.Column('photo', sa.LargeBinary(), nullable=True),
        sa.Column('scan', sa.LargeBinary(), nullable=True),
        sa.Column('scan_type', sa.String(length=32), nullable=False),
        sa.Column('personal_data_deleted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_card_applications_user_id', 'card_applications', ['user_id'])
    op.create_index('ix_card_applications_status', 'card_applications', ['status'])
    op.create_table(
        'card_application_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), sa.ForeignKey('card_applications.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('detail', sa.String(length=500), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_card_application_events_application_id', 'card_application_events', ['application_id'])
    op.create_table(
        'card_notices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('card_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('card_id', 'kind', 'due_on', name='uq_card_notices_once'),
    )


def downgrade() -> None:
    op.drop_table('card_notices')
    op.drop_index('ix_card_application_events_application_id', table_name='card_application_events')
    op.drop_table('card_application_events')
    op.drop_index('ix_card_applications_status', table_name='card_applications')
    op.drop_index('ix_card_applications_user_id', table_name='card_applications')
    op.drop_table('card_applications')
