"""Offline training end to end: layouts, grouped CV, regression, artifact safety, bad data."""
import csv
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from audioclf.artifact import ArtifactError, load_model, save_model
from features import FeatureConfig
from train.dataset import DataError, load_dataset, load_datasets
from train.fit import TrainOptions, cv_splits, train_model
from train.synthetic import generate_dataset, synth_clip
from features.audio import write_wav

FAST = TrainOptions(n_iter=2, cv=3, n_jobs=2, cache_dir=None, progress=False,
                    families=("et",))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, n_per_class=12, seed=3, seconds=1.2)
    return root


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "audioclf", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_folder_layout_trains_and_evaluates(synth, tmp_path):
    # the folder tree (no manifest used): every subfolder is a class
    ds = load_dataset(synth)
    assert ds.task == "classify" and len(ds.labels) == 8 and not ds.has_groups
    res = train_model(ds, FeatureConfig(), FAST)
    assert res.artifact.labels == sorted(ds.labels)
    assert res.artifact.metrics["validation"]["accuracy"] > 0.6
    assert set(res.search[0]) >= {"family", "n_estimators", "max_depth", "max_features",
                                  "min_samples_leaf", "score"}


def test_a_dataset_unzipped_on_a_mac_has_no_extra_class_or_files(two_class, tmp_path):
    """A zip made on macOS carries __MACOSX/ (with ._x.wav AppleDouble files: not audio,
    despite the name) and .DS_Store; each ._ file was an unreadable-file line, __MACOSX a class."""
    for folder in (two_class / "__MACOSX" / "tone", two_class / "tone" / ".hidden"):
        folder.mkdir(parents=True)
        (folder / "0.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (two_class / "tone" / "._0.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (two_class / ".DS_Store").write_bytes(b"Bud1")
    ds = load_dataset(two_class)
    assert ds.labels == ["noise", "tone"] and len(ds.items) == 12
    assert not [it.path for it in ds.items if "._" in it.path or "MACOSX" in it.path
                or ".hidden" in it.path]
    out = run_cli("info", two_class)
    assert out.returncode == 0 and out.stderr == "" and "12 files (0 unreadable)" in out.stdout


def test_evaluate_lists_the_top_confusions_when_the_matrix_does_not_fit():
    """A 24-class matrix in 80 columns was a wall of empty, truncated cells; then the most
    frequent confusions are listed instead (the matrix stays in the PNG and --json)."""
    from rich.console import Console

    from audioclf.cli import _confusion_table

    labels = [f"class_{i:02d}_name" for i in range(24)]
    cm = np.diag(np.full(24, 9))
    cm[3, 7], cm[5, 2], cm[20, 21] = 2, 5, 1
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(_confusion_table(labels, cm.tolist(), 80))
    text = console.export_text()
    assert "most frequent confusions (24 classes" in text and "class_00_name" not in text
    order = [line.replace("│", " ").split() for line in text.splitlines() if "class_" in line]
    assert order == [["class_05_name", "class_02_name", "5"],
                     ["class_03_name", "class_07_name", "2"],
                     ["class_20_name", "class_21_name", "1"]]
    small = _confusion_table(["a", "b"], [[3, 1], [0, 4]], 80)
    assert small.title.startswith("confusion (rows true") and len(small.columns) == 3


def test_info_describes_a_model_artifact(two_class, tmp_path):
    """The artifact is self-describing: `info MODEL.joblib` says what it holds (after checking
    its digest); before, info took it for an unreadable audio file."""
    model = tmp_path / "m.joblib"
    save_model(small_artifact(tmp_path), model)
    out = run_cli("info", model, "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["labels"] == ["noise", "tone"] and d["task"] == "classify"
    assert d["training_files"] == 12 and d["features"]["n_features"] == 428
    assert d["digest"] == (tmp_path / "m.joblib.sha256").read_text().split()[0]
    assert set(d["validation"]) == {"n", "accuracy", "balanced_accuracy", "macro_f1"}
    text = run_cli("info", model, two_class / "tone" / "0.wav", tmp_path / "gone.joblib")
    assert text.returncode == 1  # the missing model; the others are still described
    assert "model 'model', classify, 2 classes: noise, tone" in text.stdout
    assert "0.wav: WAV/PCM_16, 16000 Hz" in text.stdout
    assert text.stderr.strip() == f"audioclf: error: {tmp_path / 'gone.joblib'}: no such model file"
    (tmp_path / "m.joblib.sha256").write_text("0" * 64 + "  m.joblib\n")
    tampered = run_cli("info", model)
    assert tampered.returncode == 1 and "mismatch" in tampered.stderr and tampered.stdout == ""


def test_train_on_a_terminal_shows_features_and_search_progress(synth, tmp_path):
    """On a terminal (a pty here) `train` draws a progress bar for the features and for each
    search round, counted in trees, and a status line for the final fit and the drift
    baseline; piped, it draws none."""
    import pty
    import select

    cmd = [sys.executable, "-m", "audioclf", "train", str(synth), "--out",
           str(tmp_path / "m.joblib"), "--n-iter", "4", "--cv", "3", "--no-cache"]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, env={**os.environ, "COLUMNS": "120"})
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=120) == 0, seen[-2000:]
    os.close(leader)
    text = seen.decode(errors="replace")
    assert "features" in text
    assert "search 1/2: 4 setting(s) x 3 folds" in text, text[-2000:]
    assert "validating the best setting on 3 folds" in text
    assert "fitting the final model" in text and "drift baseline" in text
    piped = run_cli("train", synth, "--out", tmp_path / "p.joblib", "--n-iter", 4, "--cv", 3,
                    "--no-cache")
    assert piped.returncode == 0
    assert "search 1/2" not in piped.stderr + piped.stdout
    assert "fitting the final model" not in piped.stderr + piped.stdout


def test_the_model_and_its_drift_baseline_do_not_depend_on_the_number_of_jobs(synth):
    """One job or three give the same artifact: the search, the trees and the drift baseline,
    whose stream windows run beside the search (in the background with several jobs, after
    the refit with one). The baseline's stream was once cut into one recording per job."""
    from dataclasses import replace

    one, three = (train_model(load_dataset(synth), FeatureConfig(), replace(FAST, n_jobs=n))
                  for n in (1, 3))
    assert one.search == three.search
    a, b = one.artifact.baseline, three.artifact.baseline
    assert a.keys() == b.keys() and a["n_windows"] > one.artifact.metrics["n_train_windows"]
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    X = np.random.default_rng(0).normal(size=(50, len(a["names"]))).astype(np.float32)
    np.testing.assert_array_equal(one.artifact.score(X), three.artifact.score(X))


def test_a_background_step_returns_its_result_or_raises_its_error_in_the_caller():
    from train.fit import _in_background

    assert _in_background(sorted, [3, 1, 2])() == [1, 2, 3]
    failed = _in_background(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        failed()


def test_csv_layout_cli_train_evaluate_predict(synth, tmp_path):
    model = tmp_path / "m.joblib"
    out = run_cli("train", synth / "manifest.csv", "--out", model, "--n-iter", 2, "--cv", 3,
                  "--families", "et", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["metrics"]["test"]["accuracy"] > 0.6
    assert os.path.exists(str(model) + ".sha256")
    search = json.loads((tmp_path / "m.search.json").read_text())
    assert len(search) == 2 and search[0]["score"] >= search[1]["score"]

    ev = run_cli("evaluate", model, synth / "manifest.csv", "--json", "--png", tmp_path / "c.png")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert {"accuracy", "balanced_accuracy", "macro_f1"} <= set(m)
    assert m["n"] == 8 * 3  # the test split: items 0, 5, 10 of each class
    assert m["accuracy"] == pytest.approx(summary["metrics"]["test"]["accuracy"])
    assert os.path.getsize(tmp_path / "c.png") > 1000

    wav = synth / "siren" / "siren_000.wav"
    pr = run_cli("predict", model, wav, "--json")
    assert pr.returncode == 0, pr.stderr
    res = json.loads(pr.stdout)
    assert res["windows"] and res["summary"]["label"] in summary_labels(model)
    for w in res["windows"]:  # probabilities are named by class, as on the Kafka topic
        assert list(w["probs"]) == summary_labels(model)
        assert w["label"] == max(w["probs"], key=w["probs"].get)
        assert w["probability"] == w["probs"][w["label"]]
    csv_out = run_cli("predict", model, wav, "--csv")
    assert csv_out.stdout.splitlines()[0] == "file,start,end,label,probability,value"


def summary_labels(model):
    return load_model(model).labels


def test_grouped_cv_never_splits_a_group():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"spk{i}" for i in range(6)], 20)
    y = np.tile(np.arange(4), 30)
    for tr, va in cv_splits("classify", y, groups, None, 4, 0):
        assert not set(groups[tr]) & set(groups[va])
    folds = rng.integers(0, 3, len(y))
    for tr, va in cv_splits("classify", y, groups, folds, 4, 0):
        assert len(set(folds[va])) == 1 and folds[va][0] not in set(folds[tr])


def test_training_groups_are_files_or_speakers(tmp_path):
    """Long recordings yield many windows; all windows of one file (or speaker) stay together."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(8):
        for kind in ("tone", "noise"):
            p = tmp_path / f"{kind}{i}.wav"
            write_wav(p, synth_clip(kind, rng, seconds=3.0), 16000)
            rows.append({"path": p.name, "label": kind, "group": f"rec{i % 4}"})
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "group"])
        w.writeheader()
        w.writerows(rows)
    ds = load_dataset(manifest)
    assert ds.has_groups
    res = train_model(ds, FeatureConfig(), FAST)
    assert res.artifact.metrics["n_train_windows"] == 16 * 9  # 3 s -> 9 windows of 1 s / 0.25 s


def test_regression_path_snr(tmp_path):
    rng = np.random.default_rng(7)
    rows = []
    for i in range(40):
        snr = float(rng.uniform(-5, 30))
        clean = synth_clip("speech_like", rng, seconds=1.0)
        noise = rng.standard_normal(len(clean)) * np.std(clean) * 10 ** (-snr / 20)
        p = tmp_path / f"c{i}.wav"
        write_wav(p, np.clip(clean + noise, -1, 1), 16000, subtype="FLOAT")
        rows.append({"path": p.name, "target": f"{snr:.2f}", "split": "test" if i % 5 == 0 else "train"})
    manifest = tmp_path / "snr.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "target", "split"])
        w.writeheader()
        w.writerows(rows)
    ds = load_dataset(manifest)
    assert ds.task == "regress"
    res = train_model(ds, FeatureConfig(), FAST)
    assert res.artifact.task == "regress" and res.artifact.labels is None
    assert res.artifact.metrics["test"]["r2"] > 0.5
    path = tmp_path / "snr.joblib"
    save_model(res.artifact, path)
    again = load_model(path)
    np.testing.assert_allclose(again.score(np.zeros((1, len(again.feature_names)))),
                               res.artifact.score(np.zeros((1, len(again.feature_names)))))
    # R² is undefined when the truth does not vary (scikit-learn reports 0 or 1 there): it is
    # null in --json, which must stay strict JSON (json.dumps wrote NaN for one file)
    for i, targets in enumerate((["7"], ["7", "7.0"])):
        one = _manifest(tmp_path / f"same{i}.csv", [{"path": rows[k]["path"], "target": t}
                                                    for k, t in enumerate(targets)])
        out = run_cli("evaluate", path, one, "--json", "--no-cache", "--png", tmp_path / "r.png")
        assert out.returncode == 0, out.stderr

        def refuse(const):
            raise ValueError(f"not JSON: {const}")
        m = json.loads(out.stdout, parse_constant=refuse)
        assert m["r2"] is None and m["windows"]["r2"] is None and m["mae"] > 0
        text = run_cli("evaluate", path, one, "--no-cache", "--png", tmp_path / "r.png").stdout
        assert "R² n/a (the truth does not vary)" in text


def test_group_by_takes_speakers_from_file_names(tmp_path):
    """A class-folder tree names its speakers only in file names: --group-by takes them from
    there, the folds keep each speaker on one side, and the summary says what was grouped."""
    rng = np.random.default_rng(6)
    for kind in ("tone", "noise"):
        (tmp_path / "data" / kind / "sub").mkdir(parents=True)
        for spk in ("ann", "bob", "cy"):
            for i in range(3):
                folder = tmp_path / "data" / kind / ("sub" if i == 2 else "")
                write_wav(folder / f"{spk}_{i}.wav", synth_clip(kind, rng, seconds=1.0), 16000)
    pattern = r"([a-z]+)_\d+\.wav$"
    ds = load_dataset(tmp_path / "data", group_by=pattern)
    assert ds.has_groups and sorted({it.group for it in ds.items}) == ["ann", "bob", "cy"]
    groups = np.array([it.group for it in ds.items])
    y = np.array([it.label for it in ds.items])
    for tr, va in cv_splits("classify", y, groups, None, 3, 0):
        assert not set(groups[tr]) & set(groups[va])
    # a CSV's own group column is replaced; paths are matched relative to the CSV's folder
    manifest = _manifest(tmp_path / "data" / "m.csv",
                         [{"path": f"{it.label}/{os.path.basename(it.path)}",
                           "label": it.label, "group": "one"}
                          for it in ds.items if "sub" not in it.path])
    assert {it.group for it in load_dataset(manifest, group_by=r"^\w+/([a-z]+)_")
            .items} == {"ann", "bob", "cy"}
    # beside a source with its own groups (a capture folder's manifest: capture runs, file
    # names the pattern was not written for), --group-by groups only the others
    (tmp_path / "cap").mkdir()
    for i, kind in enumerate(("tone", "noise")):
        write_wav(tmp_path / "cap" / f"live_{i}.wav", synth_clip(kind, rng, seconds=1.0), 16000)
    capture = _manifest(tmp_path / "cap" / "manifest.csv",
                        [{"path": f"live_{i}.wav", "label": kind, "group": "run1"}
                         for i, kind in enumerate(("tone", "noise"))])
    both = load_datasets([tmp_path / "data", capture], group_by=pattern)
    assert sorted(it.group for it in both.items if "live_" in it.path) == ["run1", "run1"]
    assert sorted({it.group for it in both.items}) == ["ann", "bob", "cy", "run1"]
    # the whole match when the pattern has no (...) group
    assert {it.group for it in load_dataset(tmp_path / "data", group_by="ann|bob|cy")
            .items} == {"ann", "bob", "cy"}
    with pytest.raises(DataError, match=r"--group-by 'bob' finds no group in 12 of 18 file "
                                        r"paths \(e\.g\. noise/ann_0\.wav\)"):
        load_dataset(tmp_path / "data", group_by="bob")
    with pytest.raises(DataError, match="is not a regular expression"):
        load_datasets([tmp_path / "data"], group_by="([a-z]")
    out = run_cli("train", tmp_path / "data", "--out", tmp_path / "m.joblib", "--n-iter", "2",
                  "--cv", "3", "--families", "et", "--no-cache", "--json", "--group-by", pattern)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["cv_groups"] == "3 groups in 3 folds"
    out = run_cli("train", tmp_path / "data", "--out", tmp_path / "m.joblib", "--n-iter", "2",
                  "--cv", "3", "--families", "et", "--no-cache", "--json")
    assert json.loads(out.stdout)["cv_groups"].startswith("one per file (18) in 3 folds")


def small_artifact(tmp_path):
    ds = load_dataset(tmp_path / "two")
    return train_model(ds, FeatureConfig(), FAST).artifact


@pytest.fixture
def two_class(tmp_path):
    rng = np.random.default_rng(1)
    for kind in ("tone", "noise"):
        (tmp_path / "two" / kind).mkdir(parents=True)
        for i in range(6):
            write_wav(tmp_path / "two" / kind / f"{i}.wav", synth_clip(kind, rng, seconds=1.0),
                      16000)
    return tmp_path / "two"


def test_artifact_roundtrip_and_contents(two_class, tmp_path):
    art = train_model(load_dataset(two_class), FeatureConfig(), FAST).artifact
    path = tmp_path / "a.joblib"
    digest = save_model(art, path)
    again = load_model(path)
    assert again.digest == digest and again.labels == ["noise", "tone"]
    assert again.feature_config == FeatureConfig()
    for key in ("edges", "shares", "quantiles", "mean", "std", "class_freq"):
        assert key in again.baseline
    assert {"sklearn", "numpy", "audioclf"} <= set(again.versions)
    assert again.data_fingerprint and again.created and again.metrics["validation"]


def test_digest_mismatch_is_refused(two_class, tmp_path):
    art = train_model(load_dataset(two_class), FeatureConfig(), FAST).artifact
    path = tmp_path / "a.joblib"
    save_model(art, path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="mismatch"):
        load_model(path)
    os.remove(str(path) + ".sha256")
    with pytest.raises(ArtifactError, match="no digest file"):
        load_model(path)


def test_hmac_key(two_class, tmp_path, monkeypatch):
    art = train_model(load_dataset(two_class), FeatureConfig(), FAST).artifact
    path = tmp_path / "k.joblib"
    monkeypatch.setenv("AUDIOCLF_MODEL_KEY", "s3cret")
    save_model(art, path)
    assert os.path.exists(str(path) + ".hmac") and not os.path.exists(str(path) + ".sha256")
    load_model(path)
    monkeypatch.setenv("AUDIOCLF_MODEL_KEY", "other")
    with pytest.raises(ArtifactError, match="HMAC mismatch"):
        load_model(path)
    monkeypatch.delenv("AUDIOCLF_MODEL_KEY")
    with pytest.raises(ArtifactError, match="set AUDIOCLF_MODEL_KEY"):
        load_model(path)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {EVIDENCE}",))


EVIDENCE = "/tmp/audioclf-pwned-evidence"


def test_malicious_pickle_is_never_executed(tmp_path):
    if os.path.exists(EVIDENCE):
        os.remove(EVIDENCE)
    path = tmp_path / "evil.joblib"
    path.write_bytes(pickle.dumps({"format": "audioclf-model", "x": _Evil()}))
    # a digest file from someone else (not matching) and none at all: both refused unread
    (tmp_path / "evil.joblib.sha256").write_text("0" * 64 + "  evil.joblib\n")
    out = run_cli("predict", path, __file__)
    assert out.returncode == 1 and "mismatch" in out.stderr and "Traceback" not in out.stderr
    os.remove(tmp_path / "evil.joblib.sha256")
    with pytest.raises(ArtifactError):
        load_model(path)
    assert not os.path.exists(EVIDENCE)


def test_corrupt_file_is_skipped_and_counted(two_class, tmp_path):
    """A corrupt file, and audio libsndfile cannot decode (an .m4a among the WAVs, which a
    listing by extension used to leave out without a word), are reported and skipped."""
    (two_class / "tone" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (two_class / "noise" / "phone.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    out = run_cli("train", two_class, "--out", tmp_path / "m.joblib", "--n-iter", 1, "--cv", 2,
                  "--families", "et", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    broken, m4a = sorted(res["skipped"], key=lambda line: "phone.m4a" in line)
    assert len(res["skipped"]) == 2 and "broken.wav" in broken
    assert "phone.m4a: .m4a is not a format libsndfile decodes; convert the file first, e.g. " \
           "ffmpeg -i IN.m4a OUT.flac" in m4a


def test_empty_class_and_single_class_errors(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "b").mkdir(parents=True)
    write_wav(tmp_path / "d" / "a" / "x.wav", synth_clip("tone", rng, seconds=1.0), 16000)
    with pytest.raises(DataError, match="no audio files: b"):
        load_dataset(tmp_path / "d")
    os.rmdir(tmp_path / "d" / "b")
    with pytest.raises(DataError, match="only one class"):
        load_dataset(tmp_path / "d")
    out = run_cli("train", tmp_path / "d", "--out", tmp_path / "m.joblib")
    assert out.returncode == 1 and "only one class" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    # the regression analogue: a target that never varies (R² would be 1.0 of a constant)
    write_wav(tmp_path / "d" / "a" / "y.wav", synth_clip("noise", rng, seconds=1.0), 16000)
    (tmp_path / "d" / "a" / "bad.wav").write_bytes(b"RIFF....WAVE")
    same = _manifest(tmp_path / "d" / "r.csv", [{"path": "a/x.wav", "target": "3"},
                                                  {"path": "a/y.wav", "target": "3.0"}])
    with pytest.raises(DataError, match="every training target is 3; a regression needs"):
        load_dataset(same)
    one_readable = _manifest(tmp_path / "d" / "r2.csv", [{"path": "a/x.wav", "target": "3"},
                                                          {"path": "a/bad.wav", "target": "4"}])
    out = run_cli("train", one_readable, "--out", tmp_path / "m.joblib", "--no-cache")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith(
        "after skipping unreadable files, every training target is 3; a regression needs "
        "targets that vary")
    all_test = _manifest(tmp_path / "d" / "t.csv", [{"path": "a/x.wav", "label": "a",
                                                       "split": "test"}])
    with pytest.raises(DataError, match="no training data: all 1 files are in the test split"):
        load_dataset(all_test)


def _manifest(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_several_sources_train_and_evaluate_together(two_class, tmp_path):
    """The retraining path: the original folder plus a CSV of newly labelled audio (a capture
    folder's manifest) in one `train`; groups keep their meaning, and `evaluate` takes both."""
    rng = np.random.default_rng(8)
    (tmp_path / "new").mkdir()
    rows = []
    for i in range(6):
        for kind in ("siren", "noise"):
            write_wav(tmp_path / "new" / f"{kind}{i}.wav", synth_clip(kind, rng, seconds=1.0),
                      16000)
            rows.append({"path": f"{kind}{i}.wav", "label": kind, "group": f"run{i % 3}"})
    new = _manifest(tmp_path / "new" / "manifest.csv", rows)
    ds = load_datasets([two_class, new])
    assert ds.labels == ["noise", "siren", "tone"] and len(ds.items) == 12 + 12
    assert ds.has_groups and {it.group for it in ds.items} == {None, "run0", "run1", "run2"}
    assert load_datasets([two_class]).source == str(two_class)

    model = tmp_path / "m.joblib"
    out = run_cli("train", two_class, new, "--out", model, "--n-iter", 2, "--cv", 3,
                  "--families", "et", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    assert load_model(model).labels == ["noise", "siren", "tone"]
    ev = run_cli("evaluate", model, two_class, new, "--json", "--png", tmp_path / "c.png")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["n"] == 24 and m["per_class"]["siren"]["support"] == 6


def test_evaluate_leaves_out_classes_the_model_does_not_know_and_says_so(two_class, tmp_path):
    """New recordings often bring a class the model never learned: the known ones are scored,
    the others are counted by label (not scored: the model cannot predict them)."""
    model = tmp_path / "m.joblib"
    save_model(small_artifact(tmp_path), model)
    rng = np.random.default_rng(9)
    for kind, n in (("tone", 3), ("noise", 2), ("siren", 2), ("chord", 1)):
        (tmp_path / "new" / kind).mkdir(parents=True)
        for i in range(n):
            write_wav(tmp_path / "new" / kind / f"{i}.wav", synth_clip(kind, rng, seconds=1.0),
                      16000)
    ev = run_cli("evaluate", model, tmp_path / "new", "--json", "--png", tmp_path / "c.png")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["n"] == 5 and m["unknown_labels"] == {"siren": 2, "chord": 1}
    assert {c: m["per_class"][c]["support"] for c in ("noise", "tone")} == {"noise": 2, "tone": 3}
    ev = run_cli("evaluate", model, tmp_path / "new", "--png", tmp_path / "c.png")
    assert ev.returncode == 0, ev.stderr
    assert "not scored 2 file(s) labelled siren: a class the model does not know (its " \
           "classes: noise, tone)" in " ".join(ev.stdout.split())
    for kind in ("tone", "noise"):
        for f in (tmp_path / "new" / kind).iterdir():
            f.unlink()
        (tmp_path / "new" / kind).rmdir()
    ev = run_cli("evaluate", model, tmp_path / "new")
    assert ev.returncode != 0 and ev.stderr.count("\n") == 1, ev.stderr
    assert "no file has a label the model knows (its classes: noise, tone; the data's: chord, " \
           "siren)" in ev.stderr


def test_evaluating_training_files_is_flagged_by_their_content(two_class, tmp_path):
    """`train DATA` then `evaluate DATA` (a folder has no test split) scores the files the model
    was fitted on; evaluate says so, by file content (a renamed copy counts), and says nothing
    for audio it never saw. A test file identical to a training file is warned about in train."""
    model = tmp_path / "m.joblib"
    out = run_cli("train", two_class, "--out", model, "--n-iter", 1, "--cv", 3,
                  "--families", "et", "--no-cache")
    assert out.returncode == 0, out.stderr
    assert "same content" not in out.stdout + out.stderr
    ev = run_cli("evaluate", model, two_class, "--png", tmp_path / "c0.png")  # not in the cwd
    assert ev.returncode == 0, ev.stderr
    assert "12 of 12 files were in this model's training data" in ev.stdout

    rng = np.random.default_rng(21)
    (tmp_path / "new").mkdir()
    rows = []
    for i in range(3):
        write_wav(tmp_path / "new" / f"t{i}.wav", synth_clip("tone", rng, seconds=1.0), 16000)
        rows.append({"path": f"t{i}.wav", "label": "tone"})
    (tmp_path / "new" / "copy.wav").write_bytes((two_class / "noise" / "2.wav").read_bytes())
    rows.append({"path": "copy.wav", "label": "noise"})
    new = _manifest(tmp_path / "new" / "manifest.csv", rows)
    ev = run_cli("evaluate", model, new, "--json", "--png", tmp_path / "c.png")
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["seen_in_training"] == 1  # the copy; the new tones are not
    ev = run_cli("evaluate", model, new, "--png", tmp_path / "c.png")
    assert "1 of 4 files were in this model's training data" in ev.stdout

    # the same copy as a test file beside its original in training
    both = _manifest(tmp_path / "both.csv", [
        *({"path": f"two/{k}/{i}.wav", "label": k, "split": "train"}
          for k in ("tone", "noise") for i in range(6)),
        {"path": "new/copy.wav", "label": "noise", "split": "test"},
        {"path": "new/t0.wav", "label": "tone", "split": "test"}])
    res = train_model(load_dataset(both), FeatureConfig(), FAST)
    leak = [w for w in res.warnings if "same content" in w]
    assert leak and leak[0].startswith("1 test file(s)") and "copy.wav" in leak[0], res.warnings
    assert len(res.artifact.training_files) == 12
    assert res.artifact.trained_on(res.artifact.training_files).all()


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "abc", ""])
def test_a_regression_target_must_be_a_finite_number(tmp_path, bad):
    """float() reads 'nan' and 'inf': those had reached the forest and an internal error."""
    manifest = _manifest(tmp_path / "snr.csv", [{"path": "a.wav", "target": "3.5"},
                                                {"path": "b.wav", "target": bad}])
    with pytest.raises(DataError, match=f"snr.csv:3: target '{bad}' is not a finite number"):
        load_dataset(manifest)


def test_a_class_from_one_group_only_is_warned_about(two_class, tmp_path):
    """All of a class in one group (one speaker, one capture run): grouped CV must validate it
    with a model that never saw it -- honest, but the score needs saying why."""
    assert train_model(load_dataset(two_class), FeatureConfig(), FAST).warnings == []
    rows = [{"path": f"two/{kind}/{i}.wav", "label": kind,
             "group": "one-run" if kind == "noise" else f"file{i}"}
            for kind in ("tone", "noise") for i in range(6)]
    res = train_model(load_dataset(_manifest(tmp_path / "m.csv", rows)), FeatureConfig(), FAST)
    assert len(res.warnings) == 1 and res.warnings[0].startswith("class(es) noise: ")
    assert res.artifact.metrics["validation"]["per_class"]["noise"]["recall"] == 0.0


@pytest.mark.parametrize("column,values,says", [
    ("group", ["spk"] * 12, r"m\.csv: all training files are in one group \(spk\)"),
    ("fold", [1] * 12, r"m\.csv: every training file is in fold 1, which leaves nothing"),
])
def test_training_data_that_cannot_be_cross_validated_is_named(two_class, tmp_path, column,
                                                               values, says):
    rows = [{"path": f"two/{kind}/{i}.wav", "label": kind}
            for kind in ("tone", "noise") for i in range(6)]
    for row, value in zip(rows, values):
        row[column] = value
    manifest = _manifest(tmp_path / "m.csv", rows)
    with pytest.raises(DataError, match=says):
        train_model(load_dataset(manifest), FeatureConfig(), FAST)
    out = run_cli("train", manifest, "--out", tmp_path / "m.joblib")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "internal error" not in out.stderr


def test_one_file_per_class_trains_with_a_warning_and_no_library_noise(two_class, tmp_path):
    """Fewer windows per class than folds: grouped (not stratified) folds, the unseen-class
    warning, and no raw scikit-learn warning (it used to end in an internal error)."""
    manifest = _manifest(tmp_path / "m.csv", [
        {"path": "two/tone/0.wav", "label": "tone", "split": "train"},
        {"path": "two/noise/0.wav", "label": "noise", "split": "train"},
        {"path": "two/tone/1.wav", "label": "tone", "split": "test"}])
    out = run_cli("train", manifest, "--out", tmp_path / "m.joblib", "--n-iter", "2")
    assert out.returncode == 0, out.stderr
    assert "a cross-validation fold holds all of their training data" in out.stdout + out.stderr
    assert "Warning" not in out.stderr and "site-packages" not in out.stderr, out.stderr


def test_several_sources_must_agree(two_class, tmp_path):
    (tmp_path / "r").mkdir()
    write_wav(tmp_path / "r" / "a.wav", synth_clip("tone", np.random.default_rng(0), 1.0), 16000)
    regress = _manifest(tmp_path / "r" / "snr.csv", [{"path": "a.wav", "target": "3.5"}])
    with pytest.raises(DataError,
                       match=r"two is labelled \(classification\) but .*snr.csv is regression"):
        load_datasets([regress, two_class])
    folded = _manifest(tmp_path / "r" / "folded.csv",
                       [{"path": "a.wav", "label": "tone", "fold": "0"}])
    with pytest.raises(DataError, match="folded.csv has a 'fold' column but .* has none"):
        load_datasets([two_class, folded])
    again = _manifest(tmp_path / "again.csv",
                      [{"path": "two/tone/0.wav", "label": "tone"}])
    with pytest.raises(DataError, match=r"0\.wav is listed twice"):
        load_datasets([two_class, again])
    out = run_cli("train", two_class, again, "--out", tmp_path / "m.joblib")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "listed twice" in out.stderr


def test_feature_cache_is_used(two_class, tmp_path):
    opts = TrainOptions(n_iter=1, cv=2, n_jobs=1, cache_dir=str(tmp_path / "cache"),
                        progress=False, families=("et",))
    first = train_model(load_dataset(two_class), FeatureConfig(), opts)
    second = train_model(load_dataset(two_class), FeatureConfig(), opts)
    assert first.cache_hits == 0 and second.cache_hits == 12
    np.testing.assert_array_equal(first.artifact.baseline["mean"], second.artifact.baseline["mean"])


def test_long_recordings_among_clips_extract_like_one_file_each(tmp_path):
    """A recording longer than WINDOW_CHUNK windows is analysed as soon as it is read (so a chunk
    of long files is never held at once); its windows, the clips' around it and the cached
    copies all equal signal_windows of each file."""
    from features import read_audio, signal_windows
    from features.extract import WINDOW_CHUNK
    from train.extract import extract_windows

    cfg = FeatureConfig()
    rng = np.random.default_rng(5)
    seconds = [0.7, (WINDOW_CHUNK + 8) * cfg.window_hop_seconds, 1.6, 0.3]  # second: long
    paths = []
    for k, sec in enumerate(seconds):
        t = np.arange(int(sec * 16000)) / 16000
        y = 0.3 * np.sin(2 * np.pi * (200 + 300 * k) * t) * (np.sin(2 * np.pi * 1.7 * t) > 0)
        paths.append(str(tmp_path / f"f{k}.wav"))
        write_wav(paths[-1], (y + 0.001 * rng.standard_normal(len(t))).astype(np.float32), 16000)
    for run in range(2):
        win = extract_windows(paths, cfg, n_jobs=1, cache_dir=str(tmp_path / "cache"),
                              progress=False)
        assert win.cache_hits == len(paths) * run and not win.skipped
        for k, path in enumerate(paths):
            starts, X = signal_windows(read_audio(path, sr=cfg.sr)[0], cfg)
            np.testing.assert_array_equal(win.starts[win.owner == k], starts)
            np.testing.assert_array_equal(win.X[win.owner == k], X)
    assert (win.owner == 1).sum() > WINDOW_CHUNK


def test_default_model_is_rebuilt_for_another_sklearn(tmp_path, monkeypatch):
    """A shipped model from another scikit-learn minor version is refused; the CLI then
    retrains the seeded default recipe once into the user cache instead of failing."""
    import sklearn

    import audioclf.cli as cli
    from audioclf.artifact import ArtifactError, load_model as real_load

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sklearn, "__version__", "0.0.0")  # pretend: an older/newer library
    with pytest.raises(ArtifactError, match="scikit-learn"):
        real_load(cli.default_model_path())
    art = cli.load_default_model()
    cached = tmp_path / ".cache" / "audioclf" / "models" / "default-sklearn0.0.0.joblib"
    assert art.path == str(cached) and os.path.exists(str(cached) + ".sha256")
    assert art.labels == sorted(__import__("train.synthetic", fromlist=["x"]).CLASSES)
    assert cli.load_default_model().digest == art.digest  # built once, then reused


def test_the_shipped_model_is_checked_against_the_digest_the_code_holds(two_class, tmp_path,
                                                                        monkeypatch):
    """A digest file beside a model only proves the two were written together. The shipped
    model is checked against models.DEFAULT_SHA256 instead: it loads with AUDIOCLF_MODEL_KEY
    set (the key signs the team's own models; the default was refused for lack of an .hmac),
    and a replaced default.joblib with a matching .sha256 beside it is refused."""
    import hashlib

    import audioclf.cli as cli
    import models
    from audioclf.artifact import ArtifactError, save_model

    with open(models.default_model_path(), "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == models.DEFAULT_SHA256
    monkeypatch.setenv("AUDIOCLF_MODEL_KEY", "team-secret")
    assert cli.load_default_model().digest == models.DEFAULT_SHA256
    monkeypatch.delenv("AUDIOCLF_MODEL_KEY")
    swapped = tmp_path / "default.joblib"
    save_model(small_artifact(tmp_path), swapped)  # a valid model with its .sha256
    monkeypatch.setattr(models, "default_model_path", lambda: str(swapped))
    with pytest.raises(ArtifactError, match="differs from the digest this audioclf holds"):
        cli.load_default_model()


def test_the_documented_recipe_reproduces_the_shipped_default_model(tmp_path):
    """models/__init__.py's command retrains models/default.joblib exactly (same library
    versions): a change that moves features or the search must ship a retrained default.
    It had gone stale -- the recipe's model differed by up to 0.087 in probability."""
    import shlex

    import models
    from audioclf.artifact import library_versions
    from features import signal_windows
    from train.synthetic import random_soundtrack

    shipped = load_model(models.default_model_path())
    libs = ("numpy", "scipy", "sklearn")
    if any(shipped.versions.get(k) != library_versions()[k] for k in libs):
        pytest.skip(f"the shipped model was built with {[shipped.versions.get(k) for k in libs]}")
    recipe = next(line.split() for line in models.__doc__.splitlines()
                  if line.strip().startswith("audioclf train --synthetic"))
    args = recipe[1:]
    args[args.index("--out") + 1] = str(tmp_path / "default.joblib")
    args.insert(args.index("--synthetic") + 1, str(tmp_path / "synthetic"))
    out = run_cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"] == str(tmp_path / "default.joblib"), shlex.join(args)
    again = load_model(tmp_path / "default.joblib")
    assert again.data_fingerprint == shipped.data_fingerprint
    X = signal_windows(random_soundtrack(5, 30.0, 16000), shipped.feature_config)[1]
    np.testing.assert_array_equal(again.score(X), shipped.score(X))


def test_an_os_error_naming_a_file_is_that_file_and_the_reason(monkeypatch, capsys):
    """FileNotFoundError is also a user error type, and was printed as Python's
    "[Errno 2] No such file or directory: '...'" rather than "path: reason"."""
    import audioclf.cli as cli

    def fails(args):
        open("/nonexistent-audioclf/plot.png", "w")
    monkeypatch.setattr(cli, "cmd_info", fails)
    assert cli.main(["info", "x.wav"]) == 1
    assert capsys.readouterr().err == (
        "audioclf: error: /nonexistent-audioclf/plot.png: No such file or directory\n")


def test_usage_errors_are_one_line(two_class, tmp_path):
    out = run_cli("consume", "--bootstrap", "127.0.0.1:1", "--out-topic", "p")
    assert out.returncode == 1 and "--topic" in out.stderr and "internal" not in out.stderr
    out = run_cli("consume", "--bootstrap", "127.0.0.1:1", "--topic", "a", "--topic", "b",
                  "--out-topic", "p", "--dlq-topic", "b")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "--dlq-topic b is also an input --topic" in out.stderr, out.stderr
    out = run_cli("listen", "--demo", "--window", "2.0", "--seconds", "1")
    assert out.returncode == 1 and "trained with --window 1.0" in out.stderr
    assert "internal" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("flags, says", [
    (["--cv", "1"], "cv (--cv) = 1"), (["--n-iter", "0"], "n_iter (--n-iter) = 0"),
    (["--jobs", "0"], "--jobs: 0: need a number of workers"), (["--families", "rf,gbm"], "families (--families)"),
    (["--max-model-mb", "-1"], "max_model_mb (--max-model-mb) = -1.0")])
def test_training_options_are_checked_before_any_work(two_class, tmp_path, flags, says):
    """Options that cannot work are one line naming the flag, not an internal error from deep
    in the search after the features were extracted."""
    out = run_cli("train", two_class, "--out", tmp_path / "m.joblib", "--no-cache", *flags)
    assert out.returncode in (1, 2) and says in out.stderr and "internal" not in out.stderr
    assert not (tmp_path / "m.joblib").exists()


def test_outputs_that_cannot_be_written_are_refused_before_any_work(two_class, tmp_path):
    """An --out that is a folder, or sits under a file, used to fail after training finished
    (an internal error, the model lost, a .tmp left behind); now it is one line up front."""
    a_file = two_class / "tone" / "0.wav"
    cases = [(["train", two_class, "--out", two_class, "--no-cache"], "is a folder"),
             (["train", two_class, "--out", a_file / "m.joblib", "--no-cache"],
              "is a file, not a folder"),
             (["train", two_class, "--out", tmp_path / "m.joblib", "--search-json", tmp_path,
               "--no-cache"], "--search-json"),
             (["plot", a_file, "-o", tmp_path], "--output")]
    for args, says in cases:
        out = run_cli(*args)
        assert out.returncode == 1 and "internal" not in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and says in out.stderr, out.stderr
    assert not list(tmp_path.glob("*.joblib*")) and not list(two_class.glob("*.tmp"))
    model = tmp_path / "ok.joblib"
    save_model(small_artifact(tmp_path), model)
    out = run_cli("evaluate", model, two_class, "--png", a_file / "c.png")
    assert out.returncode == 1 and "--png" in out.stderr and "is a file, not a folder" in out.stderr


@pytest.mark.parametrize("args, says", [
    (["predict", "M", "x.wav", "--smooth", "0"], "--smooth: 0: need a whole number >= 1"),
    (["listen", "--demo", "--ema", "2"], "--ema: 2: need 0 < alpha <= 1"),
    (["listen", "--demo", "--seconds", "-1"], "--seconds: -1: need a number > 0"),
    (["listen", "--demo", "--metrics-port", "99999"], "--metrics-port: 99999: need a TCP port"),
    # --chunk-ms 0 had sent one message per sample
    (["produce", "x.wav", "--stream-id", "s", "--chunk-ms", "0"], "--chunk-ms: 0: need a number"),
    # a consumer sends chunks over 30 s to the dead-letter topic: refused before sending any
    (["produce", "x.wav", "--stream-id", "s", "--chunk-ms", "40000"],
     "--chunk-ms: 40000: need a number of milliseconds > 0 and <= 30000"),
    (["consume", "--idle-timeout", "-1"], "--idle-timeout: -1: need a number > 0"),
    (["consume", "--commit-interval", "-1"], "--commit-interval: -1: need a number >= 0"),
    (["drift-report", "M", "x.wav", "--top", "0"], "--top: 0: need a whole number >= 1")])
def test_bad_numbers_are_refused_by_the_parser(args, says):
    out = run_cli(*args)
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr


def test_produce_refuses_exactly_the_chunks_consumers_refuse():
    """The CLI (kept free of numpy imports) repeats the consumers' chunk limit."""
    import argparse

    from audioclf.cli import _chunk_ms
    from stream.wire import MAX_CHUNK_SECONDS
    limit_ms = MAX_CHUNK_SECONDS * 1000
    assert _chunk_ms(str(limit_ms)) == limit_ms
    with pytest.raises(argparse.ArgumentTypeError):
        _chunk_ms(str(limit_ms + 1))


def test_bad_environment_numbers_name_the_option_and_spare_other_commands(tmp_path):
    """AUDIOCLF_* numbers were converted while the parser was built: a bad one crashed every
    command, `info` included, with a traceback."""
    wav = tmp_path / "a.wav"
    write_wav(wav, np.zeros(1600, np.float32), 16000)
    env = {"AUDIOCLF_SMOOTH": "x", "AUDIOCLF_METRICS_PORT": "abc"}
    assert run_cli("info", wav, env=env).returncode == 0
    out = run_cli("consume", "--topic", "a", env=env)
    assert out.returncode == 2 and "--smooth: 'x' is not a whole number >= 1" in out.stderr
    assert "Traceback" not in out.stderr


def test_train_model_names_every_bad_option(two_class):
    from train.fit import TrainOptionsError
    with pytest.raises(TrainOptionsError, match="n_iter .* cv .* families"):
        train_model(load_dataset(two_class), FeatureConfig(),
                    TrainOptions(n_iter=0, cv=1, families=()))


def test_drift_report_names_what_it_could_not_read(tmp_path):
    from models import default_model_path
    out = run_cli("drift-report", default_model_path(), tmp_path / "nope.wav")
    assert out.returncode == 1 and "nope.wav: no such file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_model_size_budget_caps_leaves(tmp_path):
    """Fully grown trees grow with the data; with ``max_model_mb`` the search and the final fit
    cap leaves so the forest's nodes fit the budget, and the search table shows the cap."""
    from dataclasses import replace

    from train.fit import NODE_BYTES, leaf_cap

    root = generate_dataset(tmp_path / "long", n_per_class=5, seed=4, seconds=4.0)
    ds = load_dataset(root)

    def node_bytes(res):
        model = res.artifact.estimator
        per_node = NODE_BYTES + 8 * len(model.classes_)
        return sum(e.tree_.node_count for e in model.estimators_) * per_node

    opts = replace(FAST, max_model_mb=None)
    free = train_model(ds, FeatureConfig(), opts)
    budget_mb = node_bytes(free) / 1e6 / 4  # a quarter of what the uncapped forest takes
    capped = train_model(ds, FeatureConfig(), replace(opts, max_model_mb=budget_mb))
    assert node_bytes(capped) <= budget_mb * 1e6 < node_bytes(free)
    best = capped.search[0]
    assert capped.artifact.estimator.max_leaf_nodes == best["max_leaf_nodes"] > 1
    assert free.search[0]["max_leaf_nodes"] is None
    accuracy = [r.artifact.metrics["validation"]["accuracy"] for r in (free, capped)]
    assert accuracy[1] >= accuracy[0] - 0.15  # a quarter of the nodes, not a broken model
    out = run_cli("train", root, "--out", tmp_path / "cli.joblib", "--n-iter", 2, "--cv", 3,
                  "--families", "et", "--no-cache", "--json", "--max-model-mb", budget_mb)
    assert out.returncode == 0, out.stderr
    cli_model = load_model(tmp_path / "cli.joblib").estimator
    per_node = NODE_BYTES + 8 * len(cli_model.classes_)
    assert sum(e.tree_.node_count for e in cli_model.estimators_) * per_node <= budget_mb * 1e6
    # a cap no tree could reach is not set (depth-first growth, as without a budget)
    setting = {"n_estimators": 100, "min_samples_leaf": 2}
    assert leaf_cap(setting, 500, 500, 10, 1000.0) is None
    assert leaf_cap(setting, 500, 500, 10, 0.5) == 17  # 0.5 MB / (100 * 144 B) = 34 nodes
    assert leaf_cap(setting, 250, 500, 10, 0.5) == 8  # half the rows: half the leaves


def test_search_halves_rows_and_trees_down_to_one_finalist():
    from train.fit import MIN_SEARCH_TREES, candidate_settings, search

    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 60)
    X = rng.standard_normal((180, 6)).astype(np.float32)
    X[:, 0] += np.repeat([0.0, 6.0, 12.0], 60)  # one informative feature
    groups = np.tile(np.arange(12), 15)
    splits = cv_splits("classify", y, groups, None, 3, 0)
    settings = candidate_settings(TrainOptions(n_iter=12))
    rows = search("classify", X, y, splits, settings, 1, 0)
    assert len(rows) == 12
    by_round = {r: [row for row in rows if row["round"] == r] for r in (0, 1, 2)}
    assert [len(by_round[r]) for r in (0, 1, 2)] == [8, 3, 1]  # 12 -> 4 -> 1 survivors
    final = rows[0]
    assert final["round"] == 2 and final["trees"] == final["n_estimators"]
    full_rows = int(np.mean([len(tr) for tr, _ in splits]))
    assert final["train_rows"] == full_rows
    for row in by_round[0]:
        assert MIN_SEARCH_TREES <= row["trees"] <= row["n_estimators"]
        assert row["train_rows"] < full_rows / 2
    assert final["score"] > 0.9


@pytest.mark.parametrize("task", ["classify", "regress"])
@pytest.mark.parametrize("family", ["rf", "et"])
def test_the_search_grows_the_trees_scikit_learn_grows(task, family):
    """train.treefit calls scikit-learn's private tree builder: every tree it grows predicts
    exactly what the same tree of scikit-learn's forest predicts (same random states, bootstrap
    and settings), depth-first and with a leaf cap."""
    from train.treefit import (builder_matches_sklearn, forest_classes, grow_and_predict,
                               tree_seeds)

    assert builder_matches_sklearn()  # else the search falls back to the forests' own fit
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 40)).astype(np.float32)
    y = (np.array(["x", "y", "z"])[(X[:, 0] > 0).astype(int) + (X[:, 1] * X[:, 2] > 0.3)]
         if task == "classify" else X[:, 0] * 3 + X[:, 1] * X[:, 2])
    new = rng.standard_normal((120, 40)).astype(np.float32)
    cls = forest_classes()[(task, family)]
    for setting in ({"max_features": "sqrt", "min_samples_leaf": 1, "max_depth": None,
                     "max_leaf_nodes": None},
                    {"max_features": 0.05, "min_samples_leaf": 4, "max_depth": 16,
                     "max_leaf_nodes": 12}):
        forest = cls(n_estimators=12, random_state=5, n_jobs=1, **setting).fit(X, y)
        for tree, seed in zip(forest.estimators_, tree_seeds(5, 12)):
            want = tree.predict_proba(new) if task == "classify" else tree.predict(new)
            classes, got = grow_and_predict(task, family, setting, X, y, new, [seed])
            np.testing.assert_array_equal(got, want)
        if task == "classify":
            assert classes == list(forest.classes_)


def test_the_builder_check_fails_on_trees_that_differ(monkeypatch):
    """builder_matches_sklearn is a real check: other random states give other trees."""
    import train.treefit as treefit

    treefit.builder_matches_sklearn.cache_clear()
    monkeypatch.setattr(treefit, "tree_seeds", lambda seed, n: np.arange(n) + seed + 1)
    try:
        assert not treefit.builder_matches_sklearn()
    finally:
        monkeypatch.undo()
        treefit.builder_matches_sklearn.cache_clear()
    assert treefit.builder_matches_sklearn()


@pytest.mark.parametrize("task", ["classify", "regress"])
@pytest.mark.parametrize("family", ["rf", "et"])
def test_the_final_fit_is_the_forest_fit_gives_to_the_byte(task, family):
    """train.treefit.fit_forest grows all trees but the first with the private builder, on two
    threads in chunks, and puts them in copies of the first tree's estimator: the pickled
    forest must be the bytes scikit-learn's own fit pickles to (more trees than a chunk, with
    and without a leaf cap), and so must its predictions."""
    import pickle

    from train.treefit import CHUNK_TREES, assembly_matches_sklearn, fit_forest, forest_classes

    assert assembly_matches_sklearn()  # else the final fit is the forest's own fit
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400, 30)).astype(np.float32)
    y = (np.array(["p", "q", "r", "s"])[(X[:, 0] > 0).astype(int) + 2 * (X[:, 3] > 0.2)]
         if task == "classify" else X[:, 0] - X[:, 1] * X[:, 2])
    cls = forest_classes()[(task, family)]
    for setting in ({"max_features": "sqrt", "min_samples_leaf": 2, "max_depth": None},
                    {"max_features": 0.05, "min_samples_leaf": 1, "max_depth": 16,
                     "max_leaf_nodes": 20}):
        want = cls(n_estimators=CHUNK_TREES + 11, random_state=9, n_jobs=2, **setting).fit(X, y)
        got = fit_forest(cls(n_estimators=CHUNK_TREES + 11, random_state=9, n_jobs=2, **setting),
                         X, y, n_jobs=2)
        assert len(got.estimators_) == CHUNK_TREES + 11
        assert pickle.dumps(got) == pickle.dumps(want)
        new = rng.standard_normal((50, 30)).astype(np.float32)
        for forest in (got, want):  # two threads would add the trees up in either order
            forest.set_params(n_jobs=1)
        np.testing.assert_array_equal(
            got.predict_proba(new) if task == "classify" else got.predict(new),
            want.predict_proba(new) if task == "classify" else want.predict(new))


def test_the_final_fit_spreads_few_trees_over_the_threads(monkeypatch):
    """A forest of few trees (expensive ones: a regressor trying every feature took 0.5 s a
    tree) is grown in up to four jobs a thread, not in one chunk on one thread (which made
    the final fit 2x slower than scikit-learn's)."""
    import pickle

    from sklearn.ensemble import RandomForestRegressor

    import train.treefit as treefit

    rng = np.random.default_rng(8)
    X = rng.standard_normal((150, 6)).astype(np.float32)
    y = X[:, 0] + rng.standard_normal(150) * 0.1
    assert treefit.assembly_matches_sklearn()
    jobs = []
    real = treefit.grow_trees
    monkeypatch.setattr(treefit, "grow_trees", lambda *a: jobs.append(len(a[-1])) or real(*a))
    got = treefit.fit_forest(RandomForestRegressor(n_estimators=10, random_state=2, n_jobs=2),
                             X, y, n_jobs=2)
    assert sorted(jobs) == [1] * 7 + [2]  # 9 trees in 8 jobs: one holds two
    want = RandomForestRegressor(n_estimators=10, random_state=2, n_jobs=2).fit(X, y)
    assert pickle.dumps(got) == pickle.dumps(want)


def test_the_final_fit_is_scikit_learns_where_assembly_is_not_known_to_match(monkeypatch):
    """fit_forest falls back to the forest's own fit when its check fails (here made to fail
    by growing other trees than the forest would: the check is real), when a parameter it does
    not reproduce is set, and when X is not finite; each time the result is fit's."""
    import pickle

    from sklearn.ensemble import RandomForestClassifier

    import train.treefit as treefit

    rng = np.random.default_rng(6)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    assembled = []
    real = treefit._assemble
    monkeypatch.setattr(treefit, "_assemble", lambda *a, **k: assembled.append(1) or real(*a, **k))

    def same_as_fit(**params):
        want = RandomForestClassifier(n_estimators=6, random_state=1, **params).fit(X, y)
        got = treefit.fit_forest(RandomForestClassifier(n_estimators=6, random_state=1,
                                                        **params), X, y, n_jobs=2)
        return pickle.dumps(got) == pickle.dumps(want)

    assert same_as_fit() and assembled  # the builder's path, when nothing stops it
    assembled.clear()
    assert same_as_fit(class_weight="balanced") and not assembled
    assert same_as_fit(criterion="entropy") and not assembled
    assert same_as_fit(monotonic_cst=np.array([1] + [0] * 7)) and not assembled  # an array
    X[3, 2] = np.nan  # scikit-learn's forests route missing values; the builder call does not
    assert same_as_fit() and not assembled
    X[3, 2] = 0.0
    treefit.assembly_matches_sklearn.cache_clear()
    seeds = treefit.tree_seeds
    monkeypatch.setattr(treefit, "tree_seeds", lambda seed, n: seeds(seed + 1, n))
    try:
        assert not treefit.assembly_matches_sklearn()
        assembled.clear()
        # the failed check (cached) is obeyed: with the seeds moved, an assembled forest would
        # differ from fit's, and fit's is what comes back
        assert same_as_fit() and not assembled
    finally:
        monkeypatch.undo()
        treefit.assembly_matches_sklearn.cache_clear()
    assert treefit.assembly_matches_sklearn()


@pytest.mark.parametrize("task", ["classify", "regress"])
def test_the_search_scores_the_same_with_either_builder(task, monkeypatch):
    """The search's own tree growing (chunks of trees on threads) and scikit-learn's forests
    (the fallback where the private builder has moved) give the same table and out-of-fold
    predictions, with more trees than a chunk holds."""
    import train.fit as fit
    import train.treefit as treefit
    from train.fit import CHUNK_TREES, candidate_settings, search

    rng = np.random.default_rng(1)
    X = rng.standard_normal((240, 10)).astype(np.float32)
    if task == "classify":
        y = np.repeat(["a", "b", "c"], 80)
        X[:, 0] += np.repeat([0.0, 1.5, 3.0], 80)
    else:
        y = X[:, 0] * 2 + X[:, 1] + rng.standard_normal(240) * 0.3
    splits = cv_splits(task, y, np.tile(np.arange(12), 20), None, 3, 0)
    settings = candidate_settings(TrainOptions(n_iter=5, seed=3))
    assert max(s["n_estimators"] for s in settings) > CHUNK_TREES
    own = search(task, X, y, splits, settings, 2, 0, max_model_mb=0.2)
    monkeypatch.setattr(treefit, "builder_matches_sklearn", lambda: False)
    called = []
    real = fit._fit_score
    monkeypatch.setattr(fit, "_fit_score", lambda *a, **k: called.append(1) or real(*a, **k))
    theirs = search(task, X, y, splits, settings, 2, 0, max_model_mb=0.2)
    assert called  # the fallback ran
    assert [r["max_leaf_nodes"] for r in own] == [r["max_leaf_nodes"] for r in theirs]
    for a, b in zip(own, theirs):
        oof_a, oof_b = a.pop("_oof", None), b.pop("_oof", None)
        numbers = [k for k, v in a.items() if isinstance(v, float)]  # scores and their std
        assert {k: v for k, v in a.items() if k not in numbers} == \
            {k: v for k, v in b.items() if k not in numbers}
        assert [a[k] for k in numbers] == pytest.approx([b[k] for k in numbers], rel=1e-12,
                                                        abs=1e-12)
        if oof_a is not None:
            for (ca, pa), (cb, pb) in zip(oof_a, oof_b):
                assert ca == cb
                np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["rf_classifier", "et_classifier", "rf_regressor"])
def test_flat_forest_equals_scikit_learn_on_both_paths(kind):
    from sklearn.ensemble import (ExtraTreesClassifier, RandomForestClassifier,
                                  RandomForestRegressor)

    from audioclf.forest import FlatForest

    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)  # 3 classes
    cls = {"rf_classifier": RandomForestClassifier, "et_classifier": ExtraTreesClassifier,
           "rf_regressor": RandomForestRegressor}[kind]
    forest = cls(n_estimators=40, min_samples_leaf=2, random_state=0).fit(X, y)
    flat = FlatForest(forest)
    new = rng.standard_normal((200, 12)).astype(np.float64)  # cast like scikit-learn does
    want = forest.predict_proba(new) if kind.endswith("classifier") else forest.predict(new)
    for n in (1, flat.WALK_MAX_ROWS, flat.WALK_MAX_ROWS + 1, 200):  # numpy walk, per-tree apply
        np.testing.assert_allclose(flat.predict(new[:n]), want[:n], rtol=0, atol=1e-12)


def test_other_analysis_rates_keep_the_frame_durations_and_stream_like_offline(two_class,
                                                                               tmp_path):
    """`train --sr` at a rate other than 16 (or 48) kHz used to stop at "window hop must be a
    multiple of hop_length=160": the STFT was set in samples for 16 kHz. Now the frames keep
    their 25 ms / 10 ms at any rate, 16 kHz stays exactly the default, and a model trained at
    22.05 kHz streams (at its rate and resampled from 48 kHz) as it predicts offline."""
    from features import read_audio, signal_windows
    from stream.engine import Engine

    assert FeatureConfig.at_rate(16000) == FeatureConfig()
    for sr in (8000, 11025, 22050, 32000, 44100, 48000):
        cfg = FeatureConfig.at_rate(sr)
        assert abs(cfg.hop_length / sr - 0.010) < 0.0005, sr
        assert abs(cfg.win_length / sr - 0.025) < 0.0001 and cfg.win_length <= cfg.n_fft
        assert cfg.window_hop_samples % cfg.hop_length == 0
    model = tmp_path / "m22.joblib"
    out = run_cli("train", two_class, "--out", model, "--sr", "22050", "--n-iter", 2, "--cv", 3,
                  "--families", "et", "--no-cache")
    assert out.returncode == 0, out.stderr
    art = load_model(model)
    cfg = art.feature_config
    assert cfg.sr == 22050 and cfg.hop_length == 212
    y = np.concatenate([read_audio(two_class / kind / f"{i}.wav", sr=cfg.sr)[0]
                        for kind in ("tone", "noise") for i in range(2)])
    for rate in (cfg.sr, 48000):
        x = y if rate == cfg.sr else read_audio_at(y, cfg.sr, rate)
        # offline: the recording read at the model's rate, as `predict` reads a 48 kHz file
        want = art.score(signal_windows(read_audio_at(x, rate, cfg.sr), cfg)[1])
        chunk = rate // 10
        engine = Engine(art)
        preds = engine.push_many([("s", x[i:i + chunk], rate) for i in range(0, len(x), chunk)])
        preds += engine.flush("s")
        got = np.array([[p.probs[c] for c in art.labels] for p in preds])
        assert got.shape == want.shape, rate
        np.testing.assert_allclose(got, want, atol=1e-4)
    plot = run_cli("plot", two_class / "tone" / "0.wav", "--sr", "8000", "-o", tmp_path / "p.png")
    assert plot.returncode == 0, plot.stderr


def read_audio_at(y, sr, rate):
    from features.audio import resample
    return y if rate == sr else resample(y, sr, rate).astype(np.float32)


def test_predicting_a_long_recording_holds_its_scores_not_its_audio(tmp_path):
    """predict decodes and scores a file block by block: from a 4- to a 24-minute recording
    (15 and 92 MB of decoded audio) the peak traced memory grows by what the longer
    timeline holds, not by the audio (read whole, 16 minutes peaked at 78 MB); and the
    timeline is the one the whole decoded signal gives."""
    import tracemalloc

    import models
    from features import read_audio, signal_windows
    from train.predict import predict_file

    art = load_model(models.default_model_path())
    art.score(np.zeros((1, len(art.feature_names)), np.float32))  # its one-off set-up
    rng = np.random.default_rng(0)
    peaks, outs = {}, {}
    for minutes in (4, 24):
        path = tmp_path / f"long{minutes}.wav"
        y = np.repeat(0.1 * rng.standard_normal(minutes * 60 * 160), 100)  # 100 Hz steps
        write_wav(path, y, 16000)
        del y
        tracemalloc.start()
        outs[minutes] = predict_file(art, path)
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    audio = {m: m * 60 * 16000 * 4 for m in peaks}  # bytes of decoded float32 audio
    assert peaks[24] - peaks[4] < 0.2 * (audio[24] - audio[4]), peaks  # measured: 12%
    assert peaks[24] < 0.5 * audio[24], peaks
    out = outs[4]
    assert abs(out["duration"] - 4 * 60) < 1e-9 and len(out["windows"]) == 4 * 240 - 3
    y, _ = read_audio(tmp_path / "long4.wav")
    starts, X = signal_windows(y, art.feature_config)
    assert [w.start for w in out["windows"]] == list(starts / 16000)
    np.testing.assert_array_equal([w.probability for w in out["windows"]],
                                  art.score(X).max(axis=1))


def test_long_training_files_are_analysed_block_by_block(tmp_path, monkeypatch):
    """Files over LONG_FILE_BYTES are decoded a block at a time; their windows are those of
    the whole file (the same at the model's rate, to float32 rounding when resampled), and
    are cached like the others."""
    import train.extract as tx

    rng = np.random.default_rng(3)
    paths = []
    for sr in (16000, 44100):
        paths.append(str(tmp_path / f"r{sr}.wav"))
        write_wav(paths[-1], 0.2 * rng.standard_normal(int(sr * 7.3)), sr)
    cfg = FeatureConfig()
    whole = tx.extract_windows(paths, cfg, n_jobs=1, cache_dir=None, progress=False)
    monkeypatch.setattr(tx, "LONG_FILE_BYTES", 1000)
    monkeypatch.setattr(tx, "read_audio", None)  # the long path must not decode files whole
    cache = tmp_path / "cache"
    for hits in (0, 2):
        blocks = tx.extract_windows(paths, cfg, n_jobs=1, cache_dir=str(cache), progress=False)
        assert blocks.cache_hits == hits and not blocks.skipped
        np.testing.assert_array_equal(blocks.owner, whole.owner)
        np.testing.assert_array_equal(blocks.starts, whole.starts)
        at_rate = whole.owner == 0
        np.testing.assert_array_equal(blocks.X[at_rate], whole.X[at_rate])
        np.testing.assert_allclose(blocks.X[~at_rate], whole.X[~at_rate], atol=5e-3)


def test_silent_padding_is_no_evidence_of_a_label():
    """Windows of digital silence in a file with sound (a clip dataset's zero padding) are
    left out; a quiet file (a silence class, a room's noise floor) keeps all of its windows."""
    from train.evaluate import SILENT_DBFS, SOUND_DBFS, sound_windows

    levels = np.array([-20, -100, -100,  # a sound, then zeros: the zeros go
                       -100, -100,  # a file of digital silence keeps them
                       -60, -100,  # a faint file (below SOUND_DBFS) keeps them too
                       SOUND_DBFS, SILENT_DBFS, SILENT_DBFS + 1])  # the bounds
    owner = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    assert sound_windows(levels, owner).tolist() == [True, False, False, True, True, True,
                                                     True, True, False, True]


def test_padded_clips_train_and_score_on_their_sound(tmp_path):
    """Clips padded to 4 s with zeros (as ESC-50's are): train leaves the padding out and
    says how much, evaluate scores files on their sound, and predict's summary is the mean
    of the windows with sound while its timeline still shows every window."""
    rng = np.random.default_rng(11)
    for kind in ("siren", "noise"):
        (tmp_path / "pad" / kind).mkdir(parents=True)
        for i in range(6):
            y = np.zeros(4 * 16000)
            y[:16000] = synth_clip(kind, rng, seconds=1.0)
            write_wav(tmp_path / "pad" / kind / f"{i}.wav", y, 16000)
    model = tmp_path / "pad.joblib"
    out = run_cli("train", tmp_path / "pad", "--out", model, "--n-iter", 1, "--cv", 2,
                  "--families", "et", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    # of each file's 13 windows, those starting at 1.0 s and later hold only zeros
    assert res["padding_windows"] == 12 * 9
    assert res["metrics"]["n_train_windows"] == 12 * 4
    out = run_cli("evaluate", model, tmp_path / "pad", "--json", "--no-cache",
                  "--png", tmp_path / "pad.png")
    m = json.loads(out.stdout)
    assert m["padding_windows"] == 12 * 9 and m["windows"]["n"] == 12 * 4
    wav = tmp_path / "pad" / "siren" / "0.wav"
    res = json.loads(run_cli("predict", model, wav, "--json").stdout)
    assert len(res["windows"]) == 13
    sound = [w["probs"] for w in res["windows"][:4]]
    assert res["summary"]["probability"] == pytest.approx(
        max(np.mean([[p[c] for c in sorted(p)] for p in sound], axis=0)))


def test_captured_windows_not_labelled_yet_are_left_out_and_said(two_class, tmp_path):
    """Retraining on the data plus a capture folder whose labels are filled in a few at a
    time: the windows without a label are left out, with a warning, instead of refusing."""
    from stream.capture import COLUMNS

    rng = np.random.default_rng(12)
    rows = []
    for i in range(4):
        name = f"live_{i:07.3f}.wav"
        write_wav(tmp_path / name, synth_clip("noise", rng, seconds=1.0), 16000)
        rows.append({c: "" for c in COLUMNS} | {"path": name, "group": f"run{i}",
                                                "predicted": "tone", "drift_state": "DRIFT",
                                                "label": "noise" if i < 1 else ""})
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    out = run_cli("train", two_class, tmp_path / "manifest.csv", "--out", tmp_path / "m.joblib",
                  "--n-iter", 1, "--cv", 2, "--families", "et", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["warnings"][0] == ("3 captured windows with no label yet left out (label them "
                                  "to train on them)")
    assert load_model(tmp_path / "m.joblib").metrics["validation"]["n"] == 12 + 1


def test_a_manifest_written_on_windows_finds_its_files(two_class, tmp_path):
    """Backslash-separated paths (CRLF lines too) are read as folders when no file has that
    very name; a manifest none of whose files can be read says why, naming one."""
    lines = [f"{kind}\\{i}.wav,{kind}" for kind in ("tone", "noise") for i in range(6)]
    manifest = two_class / "windows.csv"
    manifest.write_bytes(("path,label\r\n" + "\r\n".join(lines) + "\r\n").encode())
    ds = load_dataset(manifest)
    assert [it.path for it in ds.items] == [str(two_class / k / f"{i}.wav")
                                            for k in ("tone", "noise") for i in range(6)]
    odd = two_class / "tone" / "odd\\name.wav"  # a file that is named with a backslash
    odd.write_bytes((two_class / "tone" / "0.wav").read_bytes())
    (two_class / "odd.csv").write_text("path,label\ntone/odd\\name.wav,tone\n")
    assert load_dataset(two_class / "odd.csv", require_labels=False).items[0].path == str(odd)
    (tmp_path / "none.csv").write_text("path,label\nx.wav,a\ny.wav,b\n")
    out = run_cli("train", tmp_path / "none.csv", "--out", tmp_path / "m.joblib", "--no-cache")
    assert out.returncode == 1 and out.stderr.strip() == (
        f"audioclf: error: {tmp_path / 'none.csv'}: no file could be read (2 skipped, e.g. "
        f"{tmp_path / 'x.wav'}: cannot open (No such file or directory))")


def test_a_manifest_labels_parts_of_long_recordings(tmp_path):
    """offset/duration columns label parts of a recording: each row's windows come from its
    part (the samples read whole gives there), the parts of one recording are one
    cross-validation group, evaluate scores them as rows, and bad values are one line."""
    from features import read_audio, signal_windows
    from train.extract import extract_windows

    rng = np.random.default_rng(21)
    rows = []
    for r in range(4):  # each recording: 6 s of siren, 2 s of quiet, 6 s of noise
        y = np.concatenate([synth_clip("siren", rng, seconds=6.0), np.zeros(2 * 16000),
                            synth_clip("noise", rng, seconds=6.0)])
        write_wav(tmp_path / f"rec{r}.flac", y, 16000)
        rows += [{"path": f"rec{r}.flac", "label": "siren", "offset": "0", "duration": "6"},
                 {"path": f"rec{r}.flac", "label": "noise", "offset": "8", "duration": ""}]
    _manifest(tmp_path / "parts.csv", rows)
    ds = load_dataset(tmp_path / "parts.csv")
    assert [it.segment for it in ds.items[:2]] == [(0.0, 6.0), (8.0, None)]
    cfg = FeatureConfig()
    win = extract_windows([it.path for it in ds.items], cfg, n_jobs=1, cache_dir=None,
                          progress=False, segments=[it.segment for it in ds.items])
    whole, _ = read_audio(tmp_path / "rec0.flac")
    np.testing.assert_array_equal(win.X[win.owner == 1],
                                  signal_windows(whole[8 * 16000:], cfg)[1])
    assert (win.owner == 0).sum() == (win.owner == 1).sum() == 21
    model = tmp_path / "parts.joblib"
    out = run_cli("train", tmp_path / "parts.csv", "--out", model, "--n-iter", 1, "--cv", 2,
                  "--families", "et", "--no-cache", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["cv_groups"].startswith("one per file (4)")
    ev = json.loads(run_cli("evaluate", model, tmp_path / "parts.csv", "--json", "--no-cache",
                            "--png", tmp_path / "e.png").stdout)
    assert ev["n"] == 8 and ev["windows"]["n"] == 8 * 21
    for bad, why in (({"offset": "-1"}, "offset must be >= 0 s"),
                     ({"duration": "0"}, "duration > 0 s"),
                     ({"offset": "abc"}, "must be seconds")):
        _manifest(tmp_path / "bad.csv", [{**rows[0], **bad}])
        with pytest.raises(DataError, match=why):
            load_dataset(tmp_path / "bad.csv")
    _manifest(tmp_path / "twice.csv", [rows[0], rows[0]])
    with pytest.raises(DataError, match="listed twice"):
        load_datasets([tmp_path / "twice.csv"])


def test_a_binding_model_size_budget_is_said(two_class, tmp_path):
    """When the --max-model-mb budget, not the data, stops the trees, train says so; with
    the default budget these small trees never reach it."""
    def warnings(*extra):
        out = run_cli("train", two_class, "--out", tmp_path / "m.joblib", "--n-iter", 1,
                      "--cv", 2, "--families", "et", "--no-cache", "--json", *extra)
        assert out.returncode == 0, out.stderr
        return [w for w in json.loads(out.stdout)["warnings"] if "model-size budget" in w]

    assert warnings() == []
    (said,) = warnings("--max-model-mb", "0.01")
    assert said.startswith("the model-size budget (--max-model-mb 0.01) stopped 100% of the "
                           "trees at ")
    assert load_model(tmp_path / "m.joblib").estimator.max_leaf_nodes == int(
        said.split(" at ")[1].split()[0])
