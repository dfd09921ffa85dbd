"""Public contract analysis: records, robust baselines, anomalies, findings and reports."""
