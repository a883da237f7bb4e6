"""``aerotune.records``: records nest (parts, lists and dicts of parts, optional parts) and check their field types."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from aerotune.errors import RunError
from aerotune.records import Part, Record


@dataclass(frozen=True)
class Point(Part):
    x: float
    label: str = ""


@dataclass(frozen=True)
class Shape(Record):
    FILE = "shape.json"
    OMIT_NONE = ("centre",)

    name: str
    points: list[Point]
    named: dict[str, Point] = field(default_factory=dict)
    centre: Point | None = None
    sides: int = 0
    tags: list[str] = field(default_factory=list)


def test_nested_parts_round_trip():
    shape = Shape("tri", [Point(1.0, "a"), Point(2)], {"top": Point(3.5)}, Point(0.5), sides=3)
    data = json.loads(json.dumps(shape.to_json()))
    assert data["points"] == [{"x": 1.0, "label": "a"}, {"x": 2, "label": ""}] and data["version"] == 1
    assert data["centre"] == {"x": 0.5, "label": ""} and "version" not in data["centre"]
    again = Shape.from_json(data)
    assert again == shape and isinstance(again.named["top"], Point) and isinstance(again.centre, Point)
    assert "centre" not in Shape("line", []).to_json()  # left out while None


def test_old_files_read_and_wrong_types_are_refused():
    old = Shape.from_json({"name": "old", "points": [{"x": 1, "unknown": 2}], "extra": True})
    assert old.points == [Point(1)] and old.centre is None and old.sides == 0
    assert Shape.from_json({"name": "nan", "points": [{"x": None}]}).points[0].x is None  # NaN written as null
    for bad, where in (
        ({"name": 3, "points": []}, "field 'name'"),
        ({"name": "s", "points": {"x": 1}}, "field 'points'"),
        ({"name": "s", "points": [{"x": "1"}]}, "field 'points' item 0: field 'x'"),
        ({"name": "s", "points": [{"label": "no x"}]}, "field 'x' is missing"),
        ({"name": "s", "points": [], "sides": 2.5}, "field 'sides'"),
        ({"name": "s", "points": [], "sides": True}, "field 'sides'"),
        ({"name": "s", "points": [], "tags": [1]}, "field 'tags' item 0"),
        ({"name": "s", "points": [], "centre": 1}, "field 'centre'"),
        ({"name": "s", "points": [], "centre": {"x": "far"}}, "field 'centre': field 'x' is a str"),
    ):
        with pytest.raises(RunError, match=where):
            Shape.from_json(bad)
    with pytest.raises(RunError, match="newer aerotune"):
        Shape.from_json({"name": "s", "points": [], "version": 2})
