"""An uploaded investigation's contracts, one row each, kept with it (written and read in batches).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the key (investigation, position) is the order batches are read in: no other index is needed
    op.create_table(
        'contracts',
        sa.Column('investigation_id', sa.String(length=64), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('contract_id', sa.Text(), nullable=False),
        sa.Column('agency', sa.Text(), nullable=False),
        sa.Column('supplier', sa.Text(), nullable=False),
        sa.Column('item', sa.Text(), nullable=False),
        sa.Column('category', sa.Text(), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('date', sa.Date(), nullable=False),
        sa.Column('quantity', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['investigation_id'], ['investigations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('investigation_id', 'position')
    )


def downgrade() -> None:
    op.drop_table('contracts')
