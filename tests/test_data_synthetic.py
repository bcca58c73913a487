"""The synthetic generator: the loaders read back exactly the labels it drew, its output is
deterministic, and a spec's synthetic source resolves to its real-format twins."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mtl_core.sources import SyntheticSource
from mtl_core.tasks import EMOTIONS
from mtl_data.cache import load_split
from mtl_data.parallel import default_workers
from mtl_data.source import resolve_source
from mtl_data.synthetic.attributes import HAPPY, draw_labels, draw_look
from mtl_data.synthetic.expressions import EXPRESSIONS
from mtl_data.synthetic.render import render_face
from mtl_data.synthetic.write import CELEBA_ATTRIBUTES, write_synthetic

SPLITS = ("train", "val", "test")
SMALL = SyntheticSource(train=6, val=3, test=4, pretrain=160, seed=3)
TASKS_OF = {"chalearn": ("age",), "celeba": ("gender", "smile"), "fer2013": ("emotion",)}


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def written(tmp_path: Path):
    return write_synthetic(tmp_path / "synth", SMALL), tmp_path / "synth"


def test_round_trip_labels_read_back_equal_labels_drawn(written, tmp_path: Path) -> None:
    records, root = written
    cache = tmp_path / "cache"
    for fmt, tasks in TASKS_OF.items():
        src = resolve_source({"kind": fmt, "root": str(root / fmt)}, tasks[0], cache)
        for split in SPLITS:
            got = load_split(src, split, 16, cache, progress=False)
            want = [r for r in records.records[fmt] if r.split == split]
            assert got.stats == {"usable": len(want), "dropped": {}}
            if fmt != "fer2013":  # FER rows have no file name
                assert got.names() == [r.name for r in want]
            for task in tasks:
                drawn = np.array([r.labels[task] for r in want], np.float32)
                np.testing.assert_array_equal(got.labels[task], drawn)
            if fmt == "chalearn":
                std = np.array([r.age_std for r in want], np.float32)
                np.testing.assert_array_equal(got.age_std, std)


def test_round_trip_imdb_wiki_cleaning_drops_exactly_the_traps(written, tmp_path: Path) -> None:
    records, root = written
    cache = tmp_path / "cache"
    src = resolve_source({"kind": "imdb_wiki", "root": str(root / "imdb_wiki")}, "pretrain", cache)
    splits = [load_split(src, s, 16, cache, progress=False) for s in SPLITS]
    imdb = records.records["imdb_wiki"]
    traps = Counter(r.drop for r in imdb if r.drop)
    assert set(traps) == {"face_score", "second_face", "age_range", "gender_nan"}
    dropped: Counter = Counter()
    for s in splits:
        dropped.update(s.stats["dropped"])
    assert dropped == traps
    kept = {r.name: r.labels for r in imdb if r.drop is None}
    got = {
        n: {"age": float(a), "gender": float(g)}
        for s in splits
        for n, a, g in zip(s.names(), s.labels["age"], s.labels["gender"], strict=True)
    }
    assert got == kept
    # The labels are noisy integer ages, as IMDB-WIKI's dob / photo-year ages are.
    assert all(float(v["age"]).is_integer() for v in kept.values())


def test_same_knobs_same_bytes_and_another_seed_differs(written, tmp_path: Path) -> None:
    _, root = written
    again = tmp_path / "again"
    write_synthetic(again, SMALL)
    assert digest(root) == digest(again)
    other = tmp_path / "other"
    write_synthetic(other, SMALL.model_copy(update={"seed": 4}))
    assert digest(other)["chalearn/train_gt.csv"] != digest(root)["chalearn/train_gt.csv"]


def test_formats_look_like_the_real_ones(written) -> None:
    _, root = written
    lines = (root / "celeba" / "list_attr_celeba.txt").read_text().splitlines()
    header = lines[1].split()
    assert int(lines[0]) == len(lines) - 2 == 13
    assert len(header) == 40 and header.index("Male") == 20 and header.index("Smiling") == 31
    assert header == list(CELEBA_ATTRIBUTES)
    fer = (root / "fer2013" / "fer2013.csv").read_text().splitlines()
    assert fer[0] == "emotion,pixels,Usage"
    assert len(fer[1].split(",")[1].split()) == 48 * 48
    assert (root / "chalearn" / "valid_gt.csv").read_text().startswith("image,mean,stdv\n")


def test_a_synthetic_source_resolves_to_its_real_format_twins(tmp_path: Path) -> None:
    source = SyntheticSource(train=4, val=2, test=2, pretrain=12).model_dump()
    resolved = {
        r: resolve_source(source, r, tmp_path, progress=False)
        for r in ("age", "gender", "emotion", "smile", "pretrain")
    }
    assert resolved["gender"] == resolved["smile"]
    assert hash(resolved["gender"]) == hash(resolved["smile"])
    assert {r: s.kind for r, s in resolved.items()} == {
        "age": "chalearn",
        "gender": "celeba",
        "emotion": "fer2013",
        "smile": "celeba",
        "pretrain": "imdb_wiki",
    }
    generated = list((tmp_path / "synthetic").iterdir())
    assert len([p for p in generated if p.is_dir()]) == 1  # generated once, under a lock
    assert all(Path(s.root).is_relative_to(tmp_path / "synthetic") for s in resolved.values())


def test_label_priors() -> None:
    rng = np.random.default_rng(0)
    photo = [draw_labels(rng, "photo") for _ in range(4000)]
    assert abs(np.mean([f.smile for f in photo]) - 0.5) < 0.03
    assert abs(np.mean([f.gender for f in photo]) - 0.5) < 0.03
    assert all(f.smile for f in photo if f.emotion == HAPPY)
    ages = np.array([f.age for f in photo])
    assert ages.min() >= 0 and ages.max() <= 100 and abs(ages.mean() - 50) < 2
    fer = Counter(draw_labels(rng, "fer").emotion for _ in range(7000))
    assert set(fer) == set(range(len(EMOTIONS))) and min(fer.values()) > 850
    with pytest.raises(ValueError, match="unknown label prior"):
        draw_labels(rng, "celeba")


def test_render_shapes_and_nuisance() -> None:
    assert tuple(EXPRESSIONS) == EMOTIONS
    rng = np.random.default_rng(1)
    labels = draw_labels(rng)
    clean = render_face(labels, draw_look(np.random.default_rng(2), labels, 0.0), rng, (40, 52))
    assert clean.shape == (52, 40, 3) and clean.dtype == np.uint8
    noisy = render_face(labels, draw_look(np.random.default_rng(2), labels, 1.0), rng, (40, 52))
    assert np.abs(clean.astype(int) - noisy.astype(int)).mean() > 2
    look = draw_look(np.random.default_rng(2), labels, 0.0)
    assert look.noise == 0 and look.roll == 0 and look.clutter == 0 and look.gain == 1


def test_smiles_show_teeth_in_the_lower_face() -> None:
    """The smile cue is a large, bright region (teeth), so that it survives 32x32."""

    def white_pixels(smile: int) -> float:
        out = []
        for i in range(30):
            rng = np.random.default_rng(i)
            lab = draw_labels(rng)
            lab = type(lab)(
                age=lab.age, gender=lab.gender, smile=smile, emotion=EMOTIONS.index("neutral")
            )
            img = render_face(lab, draw_look(rng, lab, 0.0), rng, (32, 32), 0.95)
            out.append((img[18:28, 6:26].min(axis=-1) > 215).sum())  # the lower face
        return float(np.mean(out))

    assert white_pixels(1) > white_pixels(0) + 10


# The rendered pixels of GENERATOR_VERSION 1 (Pillow 13, numpy 2.4 here). The cache is keyed
# by the knobs and the version alone, so a change to the drawing that moves a pixel must
# bump GENERATOR_VERSION (and this digest); a Pillow or numpy upgrade that moves one would
# leave stale caches under the same key, which this test also catches.
PINNED_PIXELS = "c2b4572fd43eae9491b4e8716c8d18047ec2e825bce556d3d1fb7f6cd17fb222"


def test_rendered_pixels_are_pinned_to_the_generator_version() -> None:
    from mtl_data.synthetic.write import GENERATOR_VERSION

    h = hashlib.sha256()
    for i in range(12):
        rng = np.random.default_rng([7, i])
        labels = draw_labels(rng, "fer" if i % 3 == 0 else "photo")
        look = draw_look(rng, labels, 1.0)
        h.update(render_face(labels, look, rng, (64, 78) if i % 2 else (48, 48)).tobytes())
    assert GENERATOR_VERSION == 1
    assert h.hexdigest() == PINNED_PIXELS, "the drawing changed: bump GENERATOR_VERSION"


UNGUARDED_SCRIPT = """
import sys
from pathlib import Path
from mtl_core.sources import SyntheticSource
from mtl_data.synthetic.write import ensure_synthetic

# No `if __name__ == "__main__":`: each spawned renderer runs this line again.
source = SyntheticSource(train=512, val=4, test=4, pretrain=4, seed=0)
ensure_synthetic(source, Path(sys.argv[1]), progress=False)
"""


@pytest.mark.skipif(default_workers() < 2, reason="faces render in this process on one core")
def test_a_script_without_a_main_guard_gets_an_error_instead_of_a_hang(tmp_path: Path) -> None:
    # Before: each spawned worker re-ran the script and waited on the cache lock its
    # parent held, while the parent waited for the workers.
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr
    assert "synthetic-face worker process died" in proc.stderr.splitlines()[-1]
    assert not list((tmp_path / "cache" / "synthetic").glob("*/done"))  # nothing half built
