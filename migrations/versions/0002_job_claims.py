"""Claims on job spectra: the worker annotating a pending spectrum, and since when (servers sharing a database).

Revision ID: 0002_job_claims
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.base

revision = "0002_job_claims"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_spectra", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column("job_spectra", sa.Column("claimed_at", app.db.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_spectra") as batch:  # SQLite drops columns by rebuilding the table
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
