"""A float32 .npz's feature column constant but for float32 rounding: was standardised by that step
(std 6e-8, a new value 2.0 scaled to 1.7e7: Scaler.fit saw X as the float64 load_table gives); now the
Scaler is fitted on X in the file's float type, and the column is constant (std 1)."""
import numpy as np

import gpubp
from helpers import run_cli as run

CPU = ["--device", "cpu"]


def test_a_float32_column_constant_but_for_rounding_is_not_scaled_up(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = np.stack([rng.normal(size=30), np.where(np.arange(30) % 2, 1.0, 1.0000001)], axis=1).astype(np.float32)
    np.savez(tmp_path / "f32.npz", X=X, y=np.arange(30) % 3)
    ck = tmp_path / "m.npz"
    code, _, last = run(["train", "--data", str(tmp_path / "f32.npz"), "--epochs", "1", "--quiet", "--save", str(ck),
                         *CPU], capsys)
    assert code == 0, last
    scaler = gpubp.checkpoint.read_metadata(ck)["extra"]["data"]["scaler"]
    assert scaler["std"][1] == 1.0 and scaler["std"][0] != 1.0, scaler
