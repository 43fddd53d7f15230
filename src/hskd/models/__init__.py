"""Layer 2: the teacher, the students, tokenized data and one job's runtime (torch)."""
