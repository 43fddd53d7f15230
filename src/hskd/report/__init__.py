"""Layer 2, torch-free: runs collected into summaries, tables, the minimum-HSK decision and figures."""
