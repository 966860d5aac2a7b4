"""Initial state schema: pools, forecasts, decisions, actions, models, calibration, backtests.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 11:09:56.241029
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model's column types: a revision must not change when models do.
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trace", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "running",
                "succeeded",
                "failed",
                name="run_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("parameters", JSON_DOCUMENT, nullable=False),
        sa.Column("summary", JSON_DOCUMENT, nullable=False),
        sa.Column("report_path", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
    )
    op.create_index(
        op.f("ix_backtest_runs_created_at"), "backtest_runs", ["created_at"], unique=False
    )
    op.create_table(
        "pools",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("target_api_version", sa.String(length=253), nullable=False),
        sa.Column("target_kind", sa.String(length=253), nullable=False),
        sa.Column("target_name", sa.String(length=253), nullable=False),
        sa.Column("spec", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
        sa.UniqueConstraint("namespace", "name", name=op.f("uq_pools_namespace_name")),
    )
    op.create_table(
        "backtest_results",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("run_id", BIG_ID, nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("knob_name", sa.String(length=64), nullable=False),
        sa.Column("knob_value", sa.Float(), nullable=True),
        sa.Column("replica_hours", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("shortfall_rate", sa.Float(), nullable=False),
        sa.Column("shortfall_unit_hours", sa.Float(), nullable=False),
        sa.Column("actions_per_day", sa.Float(), nullable=False),
        sa.Column("mean_utilization", sa.Float(), nullable=False),
        sa.Column("details", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
            name=op.f("fk_backtest_results_run_id_backtest_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_results")),
    )
    op.create_index(
        op.f("ix_backtest_results_run_id_policy"),
        "backtest_results",
        ["run_id", "policy"],
        unique=False,
    )
    op.create_table(
        "calibration_posteriors",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("pool_id", BIG_ID, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posterior", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["pools.id"],
            name=op.f("fk_calibration_posteriors_pool_id_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibration_posteriors")),
    )
    op.create_index(
        op.f("ix_calibration_posteriors_pool_id_updated_at"),
        "calibration_posteriors",
        ["pool_id", "updated_at"],
        unique=False,
    )
    op.create_table(
        "decisions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("pool_id", BIG_ID, nullable=False),
        sa.Column("cycle_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("replicas_now", sa.Integer(), nullable=False),
        sa.Column("replicas_wanted", sa.Integer(), nullable=False),
        sa.Column("shortfall_probability", sa.Float(), nullable=True),
        sa.Column("shortfall_bound", sa.Float(), nullable=True),
        sa.Column("expected_cost", sa.Float(), nullable=True),
        sa.Column("expected_utilization", sa.Float(), nullable=True),
        sa.Column("binding_constraint", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("inputs", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pools.id"], name=op.f("fk_decisions_pool_id_pools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(
        op.f("ix_decisions_pool_id_cycle_at"), "decisions", ["pool_id", "cycle_at"], unique=False
    )
    op.create_table(
        "model_versions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("pool_id", BIG_ID, nullable=True),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("indicators", JSON_DOCUMENT, nullable=False),
        sa.Column("config", JSON_DOCUMENT, nullable=False),
        sa.Column("metrics", JSON_DOCUMENT, nullable=False),
        sa.Column("data_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["pools.id"],
            name=op.f("fk_model_versions_pool_id_pools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
    )
    op.create_index(
        op.f("ix_model_versions_pool_id_created_at"),
        "model_versions",
        ["pool_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "actions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("pool_id", BIG_ID, nullable=False),
        sa.Column("decision_id", BIG_ID, nullable=True),
        sa.Column("idempotency_key", sa.String(length=253), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_replicas", sa.Integer(), nullable=False),
        sa.Column("to_replicas", sa.Integer(), nullable=False),
        sa.Column(
            "result",
            sa.Enum(
                "succeeded", "failed", "skipped", name="action_result", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_actions_decision_id_decisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pools.id"], name=op.f("fk_actions_pool_id_pools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sa.UniqueConstraint(
            "pool_id", "idempotency_key", name=op.f("uq_actions_pool_id_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_actions_pool_id_created_at"), "actions", ["pool_id", "created_at"], unique=False
    )
    op.create_table(
        "forecasts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("pool_id", BIG_ID, nullable=False),
        sa.Column("model_version_id", BIG_ID, nullable=True),
        sa.Column("cycle_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_seconds", sa.Float(), nullable=False),
        sa.Column("indicator", sa.String(length=253), nullable=False),
        sa.Column("quantiles", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_forecasts_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pools.id"], name=op.f("fk_forecasts_pool_id_pools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
    )
    op.create_index(
        op.f("ix_forecasts_pool_id_cycle_at"), "forecasts", ["pool_id", "cycle_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_forecasts_pool_id_cycle_at"), table_name="forecasts")
    op.drop_table("forecasts")
    op.drop_index(op.f("ix_actions_pool_id_created_at"), table_name="actions")
    op.drop_table("actions")
    op.drop_index(op.f("ix_model_versions_pool_id_created_at"), table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index(op.f("ix_decisions_pool_id_cycle_at"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(
        op.f("ix_calibration_posteriors_pool_id_updated_at"), table_name="calibration_posteriors"
    )
    op.drop_table("calibration_posteriors")
    op.drop_index(op.f("ix_backtest_results_run_id_policy"), table_name="backtest_results")
    op.drop_table("backtest_results")
    op.drop_table("pools")
    op.drop_index(op.f("ix_backtest_runs_created_at"), table_name="backtest_runs")
    op.drop_table("backtest_runs")
