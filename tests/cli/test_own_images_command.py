"""Your own images through the command line, as an image user brings them: each case here once
trained or predicted silently on the wrong pixels or the wrong scale, or said something that
did not name what was wrong; now it is one line naming the file, the shapes or the values."""
import re
import shlex

import numpy as np
import pytest

from gpubp.cli import main
from gpubp.datasets import load_digits
from helpers import ROOT, run_cli as run

CPU = ["--device", "cpu"]


def _images(n=60, shape=(1, 12, 12), seed=0):
    """(X, y): ``n`` images of ``shape`` in [0, 1], labelled by which half is brighter."""
    X = np.random.default_rng(seed).random((n, *shape))
    half = shape[-1] // 2
    return X, (X[..., :half].mean(axis=(1, 2, 3)) > X[..., half:].mean(axis=(1, 2, 3))).astype(int)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A CNN and an MLP trained one epoch on 1x12x12 images in [0, 1], an MLP on 3x8x6 images, and the files."""
    d = tmp_path_factory.mktemp("images")
    X, y = _images()
    np.savez(d / "images.npz", X=X, y=y)
    X3, y3 = _images(shape=(3, 8, 6))
    np.savez(d / "colour.npz", X=X3, y=y3)
    for model, data in (("cnn", "images"), ("mlp", "images"), ("mlp", "colour")):
        assert main(["train", "--model", model, "--data", str(d / f"{data}.npz"), "--epochs", "1", "--quiet",
                     *CPU, "--save", str(d / f"{model}_{data}.npz")]) == 0
    return d


@pytest.mark.parametrize("layout", [lambda X: X.transpose(0, 2, 3, 1), lambda X: X.reshape(len(X), 3, 6, 8)],
                         ids=["channels-last", "height-and-width-swapped"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_mlp_trained_on_images_refuses_images_of_another_layout(saved, tmp_path, capsys, layout, command):
    """Was: an MLP trained on (3, 8, 6) images read (8, 6, 3) or (3, 6, 8) ones as the same 144 values,
    the pixels in other places: predictions (or a score) of the wrong pixels, silently."""
    X, y = _images(shape=(3, 8, 6))
    np.savez(tmp_path / "other.npz", X=layout(X), y=y)
    code, out, last = run([command, str(saved / "mlp_colour.npz"), str(tmp_path / "other.npz"), *CPU], capsys)
    assert code == 1 and re.search(r"reads images of \(3, 8, 6\) per sample, the file holds images of "
                                   r"\((8, 6, 3|3, 6, 8)\)", last), last
    np.savez(tmp_path / "same.npz", X=X, y=y)  # the layout it was trained on is read
    assert run([command, str(saved / "mlp_colour.npz"), str(tmp_path / "same.npz"), *CPU], capsys)[0] == 0


def test_images_channels_last_given_to_a_cnn_are_named_so(saved, tmp_path, capsys):
    X, y = _images(shape=(3, 8, 6))
    assert main(["train", "--model", "cnn", "--data", str(saved / "colour.npz"), "--epochs", "1", "--quiet", *CPU,
                 "--save", str(tmp_path / "cnn.npz")]) == 0
    np.savez(tmp_path / "nhwc.npz", X=X.transpose(0, 2, 3, 1), y=y)
    code, _, last = run(["predict", str(tmp_path / "cnn.npz"), str(tmp_path / "nhwc.npz"), *CPU], capsys)
    assert code == 1 and "channels last" in last and "X.transpose(0, 3, 1, 2)" in last, last


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_pixels_of_another_scale_than_training_are_refused(saved, tmp_path, capsys, command):
    """Was: 0..255 uint8 images given to a model trained on images in [0, 1] were standardised with the
    training statistics into values near 900 and answered with certainty (p = 1e-12 or 1), silently."""
    X, y = _images()
    np.savez(tmp_path / "u8.npz", X=(X * 255).astype(np.uint8), y=y)
    for model in ("cnn_images", "mlp_images"):
        code, out, last = run([command, str(saved / f"{model}.npz"), str(tmp_path / "u8.npz"), *CPU], capsys)
        assert code == 1 and "u8.npz" in last and "0..255" in last and "0..1" in last and "X / 255" in last, last
        assert "prediction" not in out


def test_a_resumed_run_or_test_file_at_another_pixel_scale_is_refused_before_training(saved, tmp_path, capsys):
    """Was: --resume on the same images saved as uint8 trained the model into a loss of 70 (and --save
    would have replaced the good checkpoint with it); --test of them scored a loss of 270, silently."""
    X, y = _images()
    np.savez(tmp_path / "u8.npz", X=(X * 255).astype(np.uint8), y=y)
    ck = tmp_path / "run.npz"
    ck.write_bytes((saved / "cnn_images.npz").read_bytes())
    before = ck.read_bytes()
    code, out, last = run(["train", "--model", "cnn", "--data", str(tmp_path / "u8.npz"), "--resume", str(ck),
                           "--save", str(ck), "--epochs", "2", "--quiet", *CPU], capsys)
    assert code == 1 and "--data" in last and "0..255" in last and "epochs:" not in out, last
    assert ck.read_bytes() == before
    code, out, last = run(["train", "--model", "cnn", "--data", str(saved / "images.npz"), "--test",
                           str(tmp_path / "u8.npz"), "--epochs", "1", "--quiet", *CPU], capsys)
    assert code == 1 and "--test" in last and "0..255" in last and "epochs:" not in out, last


def test_pixels_scaled_down_for_a_model_trained_on_0_to_255_are_warned_of(saved, tmp_path, capsys):
    X, y = _images()
    np.savez(tmp_path / "u8.npz", X=(X * 255).astype(np.uint8), y=y)
    assert main(["train", "--model", "cnn", "--data", str(tmp_path / "u8.npz"), "--epochs", "1", "--quiet", *CPU,
                 "--save", str(tmp_path / "u8_model.npz")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "u8_model.npz"), str(saved / "images.npz"), *CPU]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "X * 255" in err, err


def test_images_without_a_channel_axis_train_and_predict_as_one_channel(saved, tmp_path, capsys):
    """Was: an .npz of (N, H, W) images (MNIST as most loaders give it) was refused, '(samples, C, H, W)'."""
    X, y = _images()
    np.savez(tmp_path / "nhw.npz", X=X[:, 0], y=y)
    for model in ("cnn", "mlp"):
        code, out, last = run(["train", "--model", model, "--data", str(tmp_path / "nhw.npz"), "--epochs", "1",
                               "--quiet", *CPU, "--save", str(tmp_path / f"{model}.npz")], capsys)
        assert code == 0 and "54 training / 6 validation" in out, last
    code, out, _ = run(["predict", str(saved / "cnn_images.npz"), str(tmp_path / "nhw.npz"), *CPU], capsys)
    assert code == 0 and len(out.splitlines()) == 61
    want = run(["predict", str(saved / "cnn_images.npz"), str(saved / "images.npz"), *CPU], capsys)[1]
    assert out == want  # the same pixels, the same answers


def test_one_image_without_its_sample_axis_is_named_so(saved, tmp_path, capsys):
    """Was: one (12, 12) image was read as 12 samples of 12 features: 'the model expects 144'."""
    X, _ = _images()
    np.savez(tmp_path / "one.npz", X=X[0, 0])
    code, _, last = run(["predict", str(saved / "cnn_images.npz"), str(tmp_path / "one.npz"), *CPU], capsys)
    assert code == 1 and "12 values per sample" in last and "one sample" in last and "X[None]" in last, last
    np.savez(tmp_path / "one.npz", X=X[:1])
    assert run(["predict", str(saved / "cnn_images.npz"), str(tmp_path / "one.npz"), *CPU], capsys)[0] == 0


@pytest.mark.parametrize("command", ["predict", "evaluate", "test"])
def test_images_of_another_size_are_named_as_images(saved, tmp_path, capsys, command):
    """Was: 'X has 256 features per sample, the model expects 144' for 16x16 images given to a 12x12 model."""
    X, y = _images(shape=(1, 16, 16))
    np.savez(tmp_path / "big.npz", X=X, y=y)
    argv = ["train", "--model", "cnn", "--data", str(saved / "images.npz"), "--test", str(tmp_path / "big.npz"),
            "--quiet"] if command == "test" else [command, str(saved / "cnn_images.npz"), str(tmp_path / "big.npz")]
    code, _, last = run([*argv, *CPU], capsys)
    assert code == 1 and re.search(r"reads images of \(1, 12, 12\) per sample, the file holds images of "
                                   r"\(1, 16, 16\)", last), last


def test_a_csv_given_to_a_model_of_npz_images_is_named_in_a_short_line(saved, tmp_path, capsys):
    """Was: a 3,000-character line listing all 144 column names x0..x143 the CSV lacked, and its header."""
    X, y = _images()
    header = ",".join([*(f"p{i}" for i in range(144)), "label"])
    rows = [",".join([*(f"{v:.4f}" for v in r), str(t)]) for r, t in zip(X.reshape(60, -1), y)]
    (tmp_path / "pixels.csv").write_text("\n".join([header, *rows]) + "\n")
    code, _, last = run(["predict", str(saved / "cnn_images.npz"), str(tmp_path / "pixels.csv"), *CPU], capsys)
    assert code == 1 and len(last) < 600 and "x0" in last and "x143" in last and "144" in last, last
    assert ".npz" in last


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n" + bytes(300), "a PNG image"),
    (b"\xff\xd8\xff\xe0" + bytes(300), "a JPEG image"),
    (b"\x93NUMPY\x01\x00" + bytes(300), "a single .npy array"),
], ids=["png", "jpeg", "npy"])
def test_an_image_file_or_npy_given_as_data_is_named_for_what_it_is(saved, tmp_path, capsys, content, words):
    """Was: 'byte 0x89 is not utf-8 text ...; save it as CSV in UTF-8' for a PNG given to predict."""
    path = tmp_path / "picture.bin"
    path.write_bytes(content)
    for argv in (["predict", str(saved / "cnn_images.npz"), str(path)], ["train", "--model", "cnn", "--data", str(path)]):
        code, _, last = run([*argv, *CPU], capsys)
        assert code == 1 and words in last and "np.savez" in last, last


def test_a_folder_given_as_data_is_named_a_folder(saved, tmp_path, capsys):
    (tmp_path / "pictures").mkdir()
    code, _, last = run(["predict", str(saved / "cnn_images.npz"), str(tmp_path / "pictures"), *CPU], capsys)
    assert code == 1 and "is a folder" in last and "np.savez" in last, last


def test_one_hot_labels_in_an_npz_are_named_with_the_way_to_labels(tmp_path, capsys):
    X, y = _images()
    np.savez(tmp_path / "onehot.npz", X=X, y=np.eye(2)[y])
    code, _, last = run(["train", "--model", "cnn", "--data", str(tmp_path / "onehot.npz"), "--quiet", *CPU], capsys)
    assert code == 1 and "one-hot" in last and "y.argmax(axis=1)" in last, last


def test_boolean_images_train(tmp_path, capsys):
    """Was: an .npz of bool (black and white) images refused as not numbers."""
    X, y = _images()
    np.savez(tmp_path / "bw.npz", X=X > 0.5, y=y)
    code, out, last = run(["train", "--model", "cnn", "--data", str(tmp_path / "bw.npz"), "--epochs", "1",
                           "--quiet", *CPU], capsys)
    assert code == 0 and "epochs: 1" in out, last


def test_the_cuda_graph_help_does_not_say_mlp_only(capsys):
    """Every gpubp layer is capturable now; the help said '(MLP models)'."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--cuda-graph" in text and "(MLP models)" not in text


def test_the_readme_own_images_block_runs_and_0_to_255_pixels_train_as_0_to_1_ones(tmp_path, capsys, monkeypatch):
    """The README's own-images commands as written (a few epochs), on the digits saved as (N, H, W)
    uint8 images of 0..255, and again as floats in [0, 1]: each pixel standardised, the same scores."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Your own images from the command line:.*?```bash\n(.*?)```", readme, re.S)[1]
    lines = [shlex.split(line.split("  #")[0]) for line in block.strip().splitlines()]
    assert [line[:2] for line in lines] == [["gpubp", "train"], ["gpubp", "predict"], ["gpubp", "evaluate"]]
    X, y, X_test, y_test = load_digits()
    monkeypatch.chdir(tmp_path)
    scores = []
    for scale, dtype in ((255, np.uint8), (1, np.float64)):
        images = lambda A: (A.reshape(-1, 8, 8) * scale).round(6).astype(dtype)  # noqa: E731
        np.savez("images.npz", X=images(X), y=y)
        np.savez("test.npz", X=images(X_test), y=y_test)
        np.savez("new.npz", X=images(X_test[:5]))
        train, predict, evaluate = (line[1:] + CPU for line in lines)
        assert main([*train, "--epochs", "3", "--quiet", "--overwrite"]) == 0
        assert main([*predict, "--overwrite"]) == 0
        assert len((tmp_path / "preds.csv").read_text().splitlines()) == 6
        capsys.readouterr()
        assert main(evaluate) == 0
        scores.append(float(capsys.readouterr().out.split("accuracy:")[1].split()[0]))
    assert scores[0] >= 0.9 and abs(scores[0] - scores[1]) <= 0.02, scores
    assert "`uint8` pixels of 0..255 and floats in [0, 1] train alike" in " ".join(readme.split())
