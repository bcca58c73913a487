"""How each emotion (FER2013's seven) and a smile move a synthetic face."""

from __future__ import annotations

from dataclasses import dataclass

from mtl_core.tasks import EMOTIONS


@dataclass(frozen=True)
class Expression:
    """How an emotion moves the face (units are face units unless said otherwise)."""

    brow_up: float = 0.0  # brows raised (+) or lowered (-)
    brow_tilt: float = 0.0  # inner ends lowered (+, angry V) or raised (-, sad / fearful)
    brow_arch: float = 0.0  # middle of the brow raised (surprise)
    eye_open: float = 1.0  # eye height multiplier
    mouth_open: float = 0.0  # 0 closed .. 1 wide open
    mouth_width: float = 1.0  # multiplier of the mouth half-width
    mouth_curve: float = 0.0  # corners up (+) or down (-)
    mouth_round: float = 0.0  # upper lip arched up (an 'O')
    mouth_asym: float = 0.0  # one corner raised (disgust)
    furrow: float = 0.0  # vertical lines between the brows (anger)
    nose_wrinkle: float = 0.0  # lines across the nose bridge (disgust)
    cheeks: float = 0.0  # raised, rosy cheeks (happiness)
    pale: float = 0.0  # blanched skin (fear)


EXPRESSIONS: dict[str, Expression] = {
    "angry": Expression(
        brow_up=-0.1,
        brow_tilt=0.24,
        eye_open=0.45,
        mouth_width=0.75,
        mouth_curve=-0.6,
        furrow=1.0,
    ),
    "disgust": Expression(
        brow_up=-0.06,
        brow_tilt=0.08,
        eye_open=0.4,
        mouth_open=0.35,
        mouth_width=0.9,
        mouth_curve=-0.5,
        mouth_asym=0.2,
        nose_wrinkle=1.0,
    ),
    "fear": Expression(
        brow_up=0.12,
        brow_tilt=-0.16,
        eye_open=1.75,
        mouth_open=0.5,
        mouth_width=1.3,
        mouth_curve=-0.2,
        pale=1.0,
    ),
    "happy": Expression(eye_open=0.6, mouth_open=0.35, mouth_width=1.15, cheeks=1.0),
    "sad": Expression(
        brow_up=0.02, brow_tilt=-0.22, eye_open=0.45, mouth_width=0.8, mouth_curve=-1.2
    ),
    "surprise": Expression(
        brow_up=0.2,
        brow_arch=0.08,
        eye_open=1.8,
        mouth_open=1.1,
        mouth_width=0.5,
        mouth_round=1.0,
    ),
    "neutral": Expression(mouth_width=0.9),
}
assert tuple(EXPRESSIONS) == EMOTIONS  # FER2013 order


def with_smile(ex: Expression) -> Expression:
    """A smile turns the mouth corners up, widens it and shows the teeth if it is open."""
    return Expression(
        **{
            **ex.__dict__,
            "mouth_curve": 1.0,
            "mouth_width": max(ex.mouth_width, 1.0) * 1.25,
            "mouth_open": max(ex.mouth_open, 0.6),
            "eye_open": ex.eye_open * 0.75,
            "cheeks": 1.0,
            "mouth_round": 0.0,
            "mouth_asym": 0.0,
        }
    )
