"""Initial schema: candidates, models, jobs, job_spectra.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inchikey", sa.String(length=27), nullable=False),
        sa.Column("inchikey_block", sa.String(length=14), nullable=False),
        sa.Column("smiles", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("formula", sa.Text(), nullable=False),
        sa.Column("monoisotopic_mass", sa.Double(), nullable=False),
        sa.Column("fingerprint_spec", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
        sa.UniqueConstraint("inchikey", name=op.f("uq_candidates_inchikey")),
    )
    op.create_index(op.f("ix_candidates_inchikey_block"), "candidates", ["inchikey_block"])
    op.create_index(op.f("ix_candidates_formula"), "candidates", ["formula"])
    op.create_index(op.f("ix_candidates_monoisotopic_mass"), "candidates", ["monoisotopic_mass"])

    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("fingerprint_spec", sa.Text(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("ppm", sa.Double(), nullable=False),
        sa.Column("n_spectra", sa.Integer(), nullable=False),
        sa.Column("n_done", sa.Integer(), nullable=False),
        sa.Column("n_failed", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("input_name", sa.Text(), nullable=True),
        sa.Column("input_mgf", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(), nullable=False),
        sa.Column("started_at", app.db.base.UTCDateTime(), nullable=True),
        sa.Column("finished_at", app.db.base.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_jobs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"])

    op.create_table(
        "job_spectra",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("spectrum_index", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", app.db.base.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f("ck_job_spectra_status")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_spectra_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_spectra")),
        sa.UniqueConstraint("job_id", "spectrum_index", name=op.f("uq_job_spectra_job_id_spectrum_index")),
    )
    op.create_index("ix_job_spectra_job_id_status", "job_spectra", ["job_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_job_spectra_job_id_status", table_name="job_spectra")
    op.drop_table("job_spectra")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("models")
    op.drop_index(op.f("ix_candidates_monoisotopic_mass"), table_name="candidates")
    op.drop_index(op.f("ix_candidates_formula"), table_name="candidates")
    op.drop_index(op.f("ix_candidates_inchikey_block"), table_name="candidates")
    op.drop_table("candidates")
