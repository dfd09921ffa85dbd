"""Executions keep their keyword and cluster counts, so that listing them reads no child rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COUNT = "(SELECT count(*) FROM {table} WHERE {table}.execution_id = executions.id)"


def upgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyword_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('cluster_count', sa.Integer(), server_default='0', nullable=False))
    # the executions stored before: counted once, from their rows
    op.execute(f"UPDATE executions SET keyword_count = {COUNT.format(table='keywords')}, "
               f"cluster_count = {COUNT.format(table='clusters')}")


def downgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_column('cluster_count')
        batch_op.drop_column('keyword_count')
