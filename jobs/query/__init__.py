"""Questions over a scanned OUT, never the scan itself: read-only SQL in a sandbox (`query`, `sandbox`),
anomalous events (`events`), and the HTML report with plots and mask overlays (`report`,
`report_html`, `report_plots`)."""
