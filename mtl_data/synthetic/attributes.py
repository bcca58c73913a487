"""The attributes a synthetic face is drawn from: the labels, plus its look and its nuisances.

Every face has every attribute (age, gender, smile, emotion), as real faces do; each output
format then writes only the labels its dataset carries. Drawing is deterministic: one
`numpy.random.Generator` per face, seeded from (seed, dataset, split, index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtl_core.tasks import EMOTIONS

HAPPY = EMOTIONS.index("happy")
SURPRISE = EMOTIONS.index("surprise")
NEUTRAL = EMOTIONS.index("neutral")
NOT_HAPPY = tuple(i for i in range(len(EMOTIONS)) if i != HAPPY)

# Skin tones (RGB), light to dark, and natural hair colours before greying.
SKIN_TONES = np.array(
    [(241, 204, 178), (224, 172, 138), (198, 140, 104), (160, 105, 72), (112, 72, 48)], float
)
HAIR_COLOURS = np.array(
    [(30, 24, 22), (60, 40, 28), (100, 70, 45), (190, 150, 90), (140, 70, 40)], float
)


@dataclass(frozen=True)
class FaceLabels:
    """What the face shows: the labels every format draws from."""

    age: float  # years, 0..100, rounded to 0.01
    gender: int  # 1 male, 0 female
    smile: int  # 1 smiling, 0 not
    emotion: int  # index into mtl_core.tasks.EMOTIONS (FER2013 order)


@dataclass(frozen=True)
class FaceLook:
    """Who the face is (identity) and how it was photographed (nuisances)."""

    skin: tuple[float, float, float]  # RGB 0..255
    hair: tuple[float, float, float]  # RGB 0..255, natural colour before greying
    long_hair: bool
    beard: float  # 0 none .. 1 full (adult men only)
    lipstick: bool
    bald: float  # 0 full hairline .. 1 receded (older men)
    grey_onset: float  # years; greying starts around here
    width: float  # face-width multiplier (individual variation)
    clothes: tuple[float, float, float]
    # Nuisances, scaled by the source's `nuisance` knob.
    roll: float  # degrees
    yaw: float  # -1..1, turns the features sideways
    pitch: float  # -1..1, moves the features up and down
    scale: float  # face size multiplier
    shift: tuple[float, float]  # fraction of the canvas
    gain: float  # overall brightness multiplier
    light: tuple[float, float, float]  # directional light: (angle rad, strength, unused)
    cast: tuple[float, float, float]  # per-channel colour gains
    noise: float  # Gaussian pixel noise, std on 0..255
    blur: float  # Gaussian blur radius, output pixels
    background: tuple[float, float, float]
    clutter: int  # random shapes behind the face


def draw_labels(rng: np.random.Generator, prior: str = "photo") -> FaceLabels:
    """Draw a face's labels; age is uniform on 0..100 years and gender is fair.

    The emotion/smile prior depends on the dataset, as it does for real data:
    - "photo" (ChaLearn, CelebA, IMDB-WIKI twins): half the faces smile; a smiling face is
      happy (80%), surprised or neutral; the others show one of the six other emotions.
    - "fer" (the FER2013 twin): the seven emotions are equally likely; happy faces smile,
      surprised and neutral ones sometimes (15%), the others never.
    """
    age = round(float(rng.uniform(0.0, 100.0)), 2)
    gender = int(rng.random() < 0.5)
    if prior == "photo":
        smile = int(rng.random() < 0.5)
        if smile:
            emotion = int(rng.choice([HAPPY, SURPRISE, NEUTRAL], p=[0.8, 0.1, 0.1]))
        else:
            emotion = int(rng.choice(NOT_HAPPY))
    elif prior == "fer":
        emotion = int(rng.integers(len(EMOTIONS)))
        p_smile = {HAPPY: 1.0, SURPRISE: 0.15, NEUTRAL: 0.15}.get(emotion, 0.0)
        smile = int(rng.random() < p_smile)
    else:
        raise ValueError(f"unknown label prior {prior!r}; known: photo, fer")
    return FaceLabels(age=age, gender=gender, smile=smile, emotion=emotion)


def draw_look(rng: np.random.Generator, labels: FaceLabels, nuisance: float) -> FaceLook:
    """Identity traits that depend on age and gender, plus nuisances scaled by `nuisance`."""
    nu = float(nuisance)
    adult = labels.age >= 18
    male = labels.gender == 1
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] + rng.normal(0, 6, 3)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] + rng.normal(0, 6, 3)
    # Hair length is the main gender cue, but not a perfect one.
    long_hair = bool(rng.random() < (0.06 if male else 0.92))
    beard = float(rng.uniform(0.6, 1.0)) if male and adult and rng.random() < 0.7 else 0.0
    lipstick = bool(not male and adult and rng.random() < 0.6)
    bald = 0.0
    if male and labels.age > 35 and rng.random() < 0.6:
        bald = float(np.clip((labels.age - 35) / 45 + rng.normal(0, 0.1), 0, 1))
    return FaceLook(
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(np.clip(hair, 0, 255)),
        long_hair=long_hair,
        beard=beard,
        lipstick=lipstick,
        bald=bald,
        grey_onset=float(rng.normal(35, 4)),
        width=float(rng.normal(1.0, 0.03)),
        clothes=tuple(rng.uniform(20, 235, 3)),
        roll=float(np.clip(rng.normal(0, 7 * nu), -20, 20)),
        yaw=float(rng.uniform(-0.5, 0.5) * min(nu, 2.0)),
        pitch=float(rng.uniform(-0.3, 0.3) * min(nu, 2.0)),
        scale=float(1.0 + rng.uniform(-0.12, 0.05) * min(nu, 2.0)),
        shift=(float(rng.uniform(-0.05, 0.05) * nu), float(rng.uniform(-0.05, 0.05) * nu)),
        gain=float(np.clip(1.0 + rng.uniform(-0.25, 0.2) * nu, 0.3, 1.6)),
        light=(float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 0.25) * nu), 0.0),
        cast=tuple(1.0 + rng.uniform(-0.06, 0.06, 3) * nu),
        noise=float(rng.uniform(0, 6) * nu),
        blur=float(rng.uniform(0, 0.5) * nu),
        background=tuple(rng.uniform(0, 255, 3)),
        clutter=int(rng.integers(0, round(4 * nu) + 1)),
    )
