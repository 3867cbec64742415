"""Checkpoints of unfinished candidate imports (resumable ``msvae candidates import``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidate_imports",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("entries_done", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("updated_at", app.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_candidate_imports")),
    )


def downgrade() -> None:
    op.drop_table("candidate_imports")
