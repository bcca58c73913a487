"""Why a sample can be dropped. Loaders and the cache count drops under these names."""

from __future__ import annotations

MISSING_FILE = "missing_file"  # the image file does not exist
CORRUPT_IMAGE = "corrupt_image"  # the image file exists but does not decode
BAD_PIXELS = "bad_pixels"  # FER2013: `pixels` is not 48x48 integers in 0..255
BAD_LABEL = "bad_label"  # a label that does not parse or is outside its range
BAD_SPLIT = "bad_split"  # an unknown or missing split / Usage / partition value
NO_LABELS = "no_labels"  # a row with no label for any task (CSV)
# Hostile input: counted, never read.
UNSAFE_PATH = "unsafe_path"  # the image path leaves its folder (../, absolute, symlink)
NOT_A_FILE = "not_a_file"  # the image path is a FIFO, device, socket or folder
TOO_LARGE = "too_large"  # the image header says more than decode.MAX_PIXELS pixels
LONG_FIELD = "long_field"  # a CSV row with a field over the csv module's field limit
BAD_PATH = "bad_path"  # IMDB-WIKI: a full_path cell that is not one string
BAD_BOX = "bad_box"  # IMDB-WIKI: a face_location cell that is not four numbers
# IMDB-WIKI's usual cleaning, applied in this order (a sample counts under the first).
FACE_SCORE = "face_score"  # non-finite face_score (no face found) or below min_face_score
SECOND_FACE = "second_face"  # a finite second_face_score > 0: another face in the crop
AGE_RANGE = "age_range"  # photo year minus birth year outside 0..100
GENDER_NAN = "gender_nan"  # unknown gender
OVER_MAX_IMAGES = "over_max_images"  # beyond the source's max_images cap

REASONS: dict[str, str] = {
    MISSING_FILE: "image file does not exist",
    CORRUPT_IMAGE: "image file does not decode",
    BAD_PIXELS: "pixels are not 48x48 integers in 0..255",
    BAD_LABEL: "label does not parse or is out of range",
    BAD_SPLIT: "unknown or missing split",
    NO_LABELS: "no label for any task",
    UNSAFE_PATH: "image path leaves its folder",
    NOT_A_FILE: "image path is not a regular file",
    TOO_LARGE: "image larger than the pixel limit",
    LONG_FIELD: "a field longer than the CSV field limit",
    BAD_PATH: "image path is empty or not text",
    BAD_BOX: "face_location is not four numbers",
    FACE_SCORE: "face_score non-finite or below min_face_score",
    SECOND_FACE: "a second face (finite second_face_score > 0)",
    AGE_RANGE: "age outside 0..100",
    GENDER_NAN: "gender is NaN",
    OVER_MAX_IMAGES: "beyond max_images",
}
