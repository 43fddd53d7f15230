"""Loading a student folder written by `Student.save`, whichever its family."""

from __future__ import annotations

import json
from pathlib import Path

from hskd.models.pretrained import PretrainedStudent
from hskd.models.pruned import PrunedStudent
from hskd.models.student import PROJECTION_FILE, STUDENT_FILE, Student

FAMILIES: dict[str, type[Student]] = {family.family: family for family in (PretrainedStudent, PrunedStudent)}


def load_student(path) -> Student:
    """Load a student saved by `Student.save`, dispatching on the family in its metadata."""
    path = Path(path)
    metadata = json.loads((path / STUDENT_FILE).read_text())
    student = FAMILIES[metadata["family"]].load_backbone(path, metadata)
    student.load_projection(path / PROJECTION_FILE)
    return student
