"""Layer 3: compressed hidden-state knowledge: the compression math, stores, extraction, a run's HSK targets."""
