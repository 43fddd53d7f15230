"""Layer 4: training loops, a student run, teacher fine-tuning, student initialisation, resuming."""
