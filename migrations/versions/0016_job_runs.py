"""job runs: how often each scheduled job ran and failed (on any node), for the Prometheus metrics

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 16:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_runs',
        sa.Column('job', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_run_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_success_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.PrimaryKeyConstraint('job'),
    )


def downgrade() -> None:
    op.drop_table('job_runs')
