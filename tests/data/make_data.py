"""Writes fruit.csv and houses.csv, the test data of `gpubp train --data` (run: python make_data.py).

Both are generated here from the formulas below with a fixed seed: no third-party data, so they
are covered by the project's MIT licence.

fruit.csv (classification, target `fruit`): 60 apples, 60 bananas, 60 oranges;
  weight_g ~ N(150, 20) / N(120, 15) / N(180, 25), length_cm ~ N(7.5, 0.6) / N(18, 2) / N(8, 0.6),
  width_cm ~ N(7.5, 0.6) / N(3.5, 0.4) / N(8, 0.6), sweetness (0-10) ~ N(6, 1) / N(7, 1) / N(5, 1).
houses.csv (regression, target `price_k`): 120 houses with area_m2 ~ U(40, 200), rooms ~ 1 + area/30
  rounded, age_years ~ U(0, 80);
  price_k = 50 + 2.5 area_m2 + 10 rooms - 0.8 age_years + N(0, 10).
"""
import csv

import numpy as np

rng = np.random.default_rng(2024)
with open("fruit.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["weight_g", "length_cm", "width_cm", "sweetness", "fruit"])
    spec = {"apple": (150, 20, 7.5, 0.6, 7.5, 0.6, 6), "banana": (120, 15, 18, 2, 3.5, 0.4, 7),
            "orange": (180, 25, 8, 0.6, 8, 0.6, 5)}
    rows = []
    for name, (wm, ws, lm, ls, dm, ds, sm) in spec.items():
        for _ in range(60):
            rows.append([f"{rng.normal(wm, ws):.1f}", f"{rng.normal(lm, ls):.2f}", f"{rng.normal(dm, ds):.2f}",
                         f"{np.clip(rng.normal(sm, 1), 0, 10):.1f}", name])
    for i in rng.permutation(len(rows)):
        w.writerow(rows[i])
with open("houses.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["area_m2", "rooms", "age_years", "price_k"])
    for _ in range(120):
        area, age = rng.uniform(40, 200), rng.uniform(0, 80)
        rooms = int(round(1 + area / 30))
        price = 50 + 2.5 * area + 10 * rooms - 0.8 * age + rng.normal(0, 10)
        w.writerow([f"{area:.0f}", rooms, f"{age:.0f}", f"{price:.1f}"])
