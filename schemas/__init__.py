"""Arrow schemas of the OUT tables and DuckDB view definitions (versioned). Imports nothing of ours."""
