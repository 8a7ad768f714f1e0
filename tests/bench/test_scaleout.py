"""The scale-out table: each worker count's rate beside one worker's (the drain itself needs the stack)."""

from __future__ import annotations

from bench.scaleout import Point, _machine_jiffies, scale_table


def test_the_table_gives_each_count_its_rate_and_ratio_to_one_worker() -> None:
    points = [Point(1, 1000, 10.0, 10.0, 0.5, 0.4), Point(2, 1000, 5.0, 20.0, 1.0, 0.8)]
    one, two = scale_table(points)[2:]
    assert one.startswith("| 1 | 100 | 1.00x | 1,000 in 10.0 s | 10.0 |")
    assert two.startswith("| 2 | 200 | 2.00x | 1,000 in 5.0 s | 20.0 |") and two.endswith("| 80 % |")
    busy, total = _machine_jiffies()
    assert 0 <= busy <= total
