"""The metric columns of the deployable table (report.html and the CLI's table)."""

COLUMNS = (
    ("replica_hours", "replica-hours", "{:,.1f}"),
    ("cost", "cost", "{:,.1f}"),
    ("shortfall_rate", "shortfall rate", "{:.4f}"),
    ("shortfall_unit_hours", "shortfall unit-h", "{:,.2f}"),
    ("actions_per_day", "actions/day", "{:.1f}"),
    ("mean_utilization", "mean utilisation", "{:.3f}"),
)
